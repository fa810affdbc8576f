#!/usr/bin/env bash
# README command 2 and what CI runs (.ci/run): install what the tests need, start
# PostgreSQL and Apache Kafka when nothing answers, run ruff, mypy and the whole test
# suite, and stop whatever this script started when it ends, however it ends.
#
#   PGHOST/PGPORT                              PostgreSQL (127.0.0.1:5432), or
#   COACHLOG_TEST_POSTGRES_URL                 a server of your own (nothing is started)
#   COACHLOG_KAFKA_HOST/COACHLOG_KAFKA_PORT    Apache Kafka (127.0.0.1:9092), or
#   COACHLOG_TEST_KAFKA_BOOTSTRAP              a broker of your own (nothing is started)
#   COACHLOG_TEST_PROCESSES                    pytest processes in parallel (0: one, the default)
set -euo pipefail
cd "$(dirname "$0")/.."

# What the ensure scripts started (one word a line): stopped on the way out.
started=$(mktemp -t coachlog-started.XXXXXX)
export COACHLOG_STARTED_FILE=$started
child=
kafka_start=

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    # Interrupted (Ctrl-C, or TERM from a CI runner): interrupt pytest, so that its
    # fixtures still stop the processes and brokers they started; kill it after 60 s.
    kill -INT "$child" 2>/dev/null || true
    for _ in $(seq 1 600); do
      kill -0 "$child" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$child" 2>/dev/null || true
  fi
  if [ -n "$kafka_start" ]; then
    wait "$kafka_start" 2>/dev/null || true # a broker still starting is stopped once up
  fi
  if grep -qx kafka "$started"; then
    scripts/ensure-kafka.sh stop || status=1
  fi
  if grep -qx postgres "$started"; then
    scripts/ensure-postgres.sh stop || status=1
  fi
  rm -f "$started"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Everything below runs from one function, read whole before it starts: a checkout or a
# rebase while the suite runs cannot change what this run executes.
main() {
  python=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'

  # Debian's PostgreSQL server, Java 17 and Maven (for Apache Kafka), kcat, docker-compose
  # and Chromium, whichever this machine lacks.
  scripts/install-packages.sh

  if [ -z "${COACHLOG_TEST_POSTGRES_URL:-}" ]; then
    scripts/ensure-postgres.sh start
    export COACHLOG_TEST_POSTGRES_URL=postgresql://postgres@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/postgres
  fi
  if [ -z "${COACHLOG_TEST_KAFKA_BOOTSTRAP:-}" ]; then
    # The broker takes a while to start: lint and type-check meanwhile.
    scripts/ensure-kafka.sh start &
    kafka_start=$!
    export COACHLOG_TEST_KAFKA_BOOTSTRAP=${COACHLOG_KAFKA_HOST:-127.0.0.1}:${COACHLOG_KAFKA_PORT:-9092}
  fi

  echo "== ruff"
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  echo "== mypy"
  .venv/bin/mypy
  if [ -n "$kafka_start" ]; then
    wait "$kafka_start"
    kafka_start=
  fi
  echo "== pytest"
  # In the background, so that a signal reaches the traps above at once, and as a job
  # of its own (set -m): a background job would otherwise ignore SIGINT, and a
  # terminal's Ctrl-C reaches it only through the trap, once.
  set -m
  # One pytest process unless COACHLOG_TEST_PROCESSES says more (pytest-xdist): every
  # test has its own database, schemas, topics and ports, but on two cores the
  # PostgreSQL-restart test can time out while another process loads the machine.
  .venv/bin/pytest -n "${COACHLOG_TEST_PROCESSES:-0}" "$@" &
  child=$!
  set +m
  wait "$child"
}

main "$@"
exit
