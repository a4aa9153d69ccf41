#!/usr/bin/env bash
# Make sure `docker-compose` (Debian's package) is on PATH, installing it with apt-get if needed.
#
#   bash scripts/docker_compose.sh      (make compose-up, tests/test_deploy_compose.py)
#
# The compose plugin (`docker compose`) reads deploy/docker-compose.yml as well; this script only
# provides the standalone command the Makefile and the test call. Exits non-zero with a message
# when it cannot.
set -euo pipefail

die() { echo "docker_compose: $*" >&2; exit 1; }

if command -v docker-compose >/dev/null 2>&1; then
  echo "docker_compose: $(docker-compose version --short 2>/dev/null || echo present)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  sudo -n true 2>/dev/null || die "docker-compose is missing and installing it needs root (or sudo without a password)"
  SUDO="sudo -n"
fi
command -v apt-get >/dev/null 2>&1 || die "docker-compose is missing and there is no apt-get to install it"
echo "docker_compose: installing docker-compose with apt-get"
# Another apt-get (e.g. scripts/docker_engine.sh in a parallel job) may hold the lock: wait for it.
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq || die "apt-get update failed"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
  docker-compose >/dev/null || die "apt-get could not install docker-compose"
command -v docker-compose >/dev/null 2>&1 || die "docker-compose is still not on PATH"
echo "docker_compose: $(docker-compose version --short 2>/dev/null || echo installed)"
