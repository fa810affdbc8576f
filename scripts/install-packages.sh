#!/usr/bin/env bash
# Install, from Debian's archive, the programs the tests need and this machine lacks:
#
#   postgresql  a PostgreSQL server (initdb, pg_ctl): postgresql-15 if the archive has it
#               (docker-compose runs 15), else the current `postgresql`; installed without
#               the package's own "main" cluster, so nothing is left running
#   java        Java 17 or newer, for the Apache Kafka broker
#   maven       Maven, which fetches Apache Kafka from Maven Central
#   kcat        a librdkafka client, the outside consumer of the end-to-end test
#   compose     docker-compose, which validates docker-compose.yml (no engine needed)
#   chromium    headless Chromium and its chromedriver, for tests/ui
#
# `install-packages.sh` checks all of them; `install-packages.sh java maven` only those.
# Installing needs root and apt-get (CI runs as root on Debian); otherwise the script
# names what is missing and fails.
set -euo pipefail

wanted=("$@")
if [ ${#wanted[@]} -eq 0 ]; then
  wanted=(postgresql java maven kcat compose chromium)
fi

have_postgresql() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

have_java() {
  local java=${JAVA_HOME:+$JAVA_HOME/bin/}java major
  command -v "$java" >/dev/null 2>&1 || return 1
  major=$("$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  [ -n "$major" ] && [ "$major" -ge 17 ]
}

updated=
apt_update() {
  if [ -z "$updated" ]; then
    apt-get update -qq >/dev/null
    updated=1
  fi
}

in_archive() {
  apt_update
  apt-cache show "$1" >/dev/null 2>&1
}

packages=()
postgres=
for need in "${wanted[@]}"; do
  case $need in
    postgresql) have_postgresql || postgres=1 ;;
    java) have_java || packages+=(java) ;;
    maven) command -v mvn >/dev/null 2>&1 || packages+=(maven) ;;
    kcat) command -v kcat >/dev/null 2>&1 || packages+=(kcat) ;;
    compose) command -v docker-compose >/dev/null 2>&1 || packages+=(docker-compose) ;;
    chromium)
      if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        packages+=(chromium chromium-driver fonts-liberation)
      fi
      ;;
    *)
      echo "install-packages: unknown need '$need'" >&2
      exit 2
      ;;
  esac
done

if [ ${#packages[@]} -eq 0 ] && [ -z "$postgres" ]; then
  exit 0
fi
missing="${packages[*]}${postgres:+ postgresql}"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-packages: missing: ${missing# }; install them (Debian: apt-get install)" >&2
  exit 1
fi

for i in "${!packages[@]}"; do
  if [ "${packages[$i]}" = java ]; then
    if in_archive openjdk-17-jre-headless; then
      packages[i]=openjdk-17-jre-headless
    else
      packages[i]=default-jre-headless
    fi
  fi
done
if [ -n "$postgres" ]; then
  # The package would create and start a "main" cluster on 5432; the tests start
  # throwaway clusters of their own instead.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/coachlog-tests.conf
  if in_archive postgresql-15; then
    packages+=(postgresql-15)
  else
    packages+=(postgresql)
  fi
fi

apt_update
echo "install-packages: installing ${packages[*]} (Debian)"
DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq --no-install-recommends \
  "${packages[@]}" >/dev/null
