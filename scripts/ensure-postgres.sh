#!/usr/bin/env bash
# Make sure a PostgreSQL server answers at $PGHOST:$PGPORT (default 127.0.0.1:5432).
# If nothing answers, start a throwaway cluster there with Debian's initdb and pg_ctl
# (trust auth, user postgres). Prints nothing on success except what it started.
set -euo pipefail

host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}

answers() {
  python3 - "$host" "$port" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}

if answers; then
  exit 0
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "ensure-postgres: nothing answers on $host:$port and no PostgreSQL server package is installed" >&2
  echo "ensure-postgres: install Debian's postgresql package (initdb, pg_ctl) or start a server" >&2
  exit 1
fi

datadir=${COACHLOG_PGDATA:-/tmp/coachlog-pgdata}
run_as=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root: run the cluster as the postgres system user.
  run_as=(runuser -u postgres --)
fi

if [ ! -s "$datadir/PG_VERSION" ]; then
  rm -rf "$datadir"
  mkdir -p "$datadir"
  [ "$(id -u)" = 0 ] && chown postgres: "$datadir"
  "${run_as[@]}" "$bindir/initdb" -D "$datadir" -U postgres --auth=trust -E UTF8 >/dev/null
fi
mkdir -p "$datadir/run"
[ "$(id -u)" = 0 ] && chown postgres: "$datadir/run"
echo "ensure-postgres: starting a throwaway PostgreSQL in $datadir on $host:$port"
"${run_as[@]}" "$bindir/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w -t 60 \
  -o "-h $host -p $port -k $datadir/run -c fsync=off -c max_connections=200" start >/dev/null
answers || { echo "ensure-postgres: the server did not come up; see $datadir/server.log" >&2; exit 1; }
