#!/usr/bin/env bash
# Make sure a PostgreSQL server answers at $PGHOST:$PGPORT (default 127.0.0.1:5432).
#
#   scripts/ensure-postgres.sh [start]  if nothing answers there: install Debian's
#                                       PostgreSQL server when none is installed
#                                       (scripts/install-packages.sh postgresql), then
#                                       initdb a throwaway cluster (trust auth, user
#                                       postgres, fsync off) and start it
#   scripts/ensure-postgres.sh stop     stop the throwaway cluster of that port and
#                                       remove its data directory
#
# The cluster lives in $COACHLOG_PGDATA (default /tmp/coachlog-pgdata-<port>); its log
# is server.log there. When it starts a cluster and $COACHLOG_STARTED_FILE is set, it
# appends "postgres" to that file (scripts/test.sh stops what it started).
set -euo pipefail
cd "$(dirname "$0")/.."

host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}
datadir=${COACHLOG_PGDATA:-/tmp/coachlog-pgdata-$port}

answers() {
  python3 - "$host" "$port" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}

# initdb and pg_ctl refuse to run as root: run the cluster as the postgres system user.
run_as=()
if [ "$(id -u)" = 0 ]; then
  run_as=(runuser -u postgres --)
fi

# PostgreSQL 15 when installed (what docker-compose runs), else the newest there is.
server_bindir() {
  if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
    echo /usr/lib/postgresql/15/bin
    return
  fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -n 1 | xargs -r dirname
}

start() {
  if answers; then
    exit 0
  fi
  scripts/install-packages.sh postgresql
  local bindir
  bindir=$(server_bindir)
  if [ -z "$bindir" ]; then
    echo "ensure-postgres: no PostgreSQL server binaries after installing them" >&2
    exit 1
  fi
  if [ -n "${COACHLOG_STARTED_FILE:-}" ]; then
    echo postgres >>"$COACHLOG_STARTED_FILE"
  fi
  rm -rf "$datadir"
  mkdir -p "$datadir"
  [ "$(id -u)" = 0 ] && chown postgres: "$datadir"
  "${run_as[@]}" "$bindir/initdb" -D "$datadir" -U postgres --auth=trust -E UTF8 >/dev/null
  mkdir -p "$datadir/run"
  [ "$(id -u)" = 0 ] && chown postgres: "$datadir/run"
  echo "ensure-postgres: starting a throwaway PostgreSQL $(basename "$(dirname "$bindir")") in $datadir on $host:$port"
  "${run_as[@]}" "$bindir/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w -t 60 \
    -o "-h $host -p $port -k $datadir/run -c fsync=off -c max_connections=200" start >/dev/null
  answers || {
    echo "ensure-postgres: the server did not come up; see $datadir/server.log" >&2
    exit 1
  }
}

stop() {
  if [ -s "$datadir/postmaster.pid" ] && [ -s "$datadir/PG_VERSION" ]; then
    local bindir
    bindir=/usr/lib/postgresql/$(cat "$datadir/PG_VERSION")/bin
    "${run_as[@]}" "$bindir/pg_ctl" -D "$datadir" -m fast -w -t 60 stop >/dev/null ||
      "${run_as[@]}" "$bindir/pg_ctl" -D "$datadir" -m immediate -w -t 30 stop >/dev/null || true
    echo "ensure-postgres: stopped the throwaway PostgreSQL on $host:$port"
  fi
  rm -rf "$datadir"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 [start|stop]" >&2
    exit 2
    ;;
esac
