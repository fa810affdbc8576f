#!/usr/bin/env bash
# Make sure an Apache Kafka broker answers at $COACHLOG_KAFKA_HOST:$COACHLOG_KAFKA_PORT
# (default 127.0.0.1:9092).
#
#   scripts/ensure-kafka.sh [start]   if nothing answers there: fetch Apache Kafka with
#                                     Maven (once, into .cache/kafka), format a throwaway
#                                     KRaft storage directory and start a single-node
#                                     broker+controller in the background (tests/broker.py)
#   scripts/ensure-kafka.sh stop      stop the broker this script started on that port
#                                     and remove its directory
#
# The broker lives in $COACHLOG_KAFKA_DIR (default .cache/run/kafka-<port>); its log is
# broker.log there. It needs Java 17+ and Maven (scripts/test.sh installs them) and the
# test extras in .venv (kafka-python). When it starts a broker and $COACHLOG_STARTED_FILE
# is set, it appends "kafka" to that file (scripts/test.sh stops what it started).
set -euo pipefail
cd "$(dirname "$0")/.."

host=${COACHLOG_KAFKA_HOST:-127.0.0.1}
port=${COACHLOG_KAFKA_PORT:-9092}
python=${PYTHON_BIN:-.venv/bin/python}
directory=${COACHLOG_KAFKA_DIR:-.cache/run/kafka-$port}

answers() {
  python3 - "$host" "$port" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}

case "${1:-start}" in
  start)
    if answers; then
      exit 0
    fi
    echo "ensure-kafka: nothing answers on $host:$port; starting Apache Kafka there"
    if [ -n "${COACHLOG_STARTED_FILE:-}" ]; then
      echo kafka >>"$COACHLOG_STARTED_FILE" # before: an interrupted start is stopped too
    fi
    "$python" -m tests.broker start --host "$host" --port "$port" --directory "$directory"
    ;;
  stop)
    "$python" -m tests.broker stop --directory "$directory"
    ;;
  *)
    echo "usage: $0 [start|stop]" >&2
    exit 2
    ;;
esac
