#!/usr/bin/env bash
# Install what the tests need, make sure PostgreSQL answers, then run lint, types and
# the whole test suite. This is README command 2 and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# docker-compose validates docker-compose.yml in the tests (no Docker engine needed).
if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing Debian's docker-compose (to validate docker-compose.yml)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  else
    echo "test.sh: docker-compose is missing; install it (apt-get install docker-compose)" >&2
    exit 1
  fi
fi

# The browser tests (tests/ui) drive Debian's headless Chromium through its chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing Debian's chromium and chromium-driver (for tests/ui)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver fonts-liberation >/dev/null
  else
    echo "test.sh: chromium is missing; install it (apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
fi

scripts/ensure-postgres.sh
export COACHLOG_TEST_POSTGRES_URL=${COACHLOG_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
scripts/ensure-kafka.sh
export COACHLOG_TEST_KAFKA_BOOTSTRAP=${COACHLOG_TEST_KAFKA_BOOTSTRAP:-${COACHLOG_KAFKA_HOST:-127.0.0.1}:${COACHLOG_KAFKA_PORT:-9092}}

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
