#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`, starting one by hand if needed.
#
#   bash scripts/docker_engine.sh      (what `make docker-engine` and `make test` run)
#
# These machines have the docker client but no running daemon and no service manager, so:
# install Debian's docker.io (and debootstrap, for the local base image) when missing, start
# `dockerd --bridge=none --iptables=false` in the background (no bridge: containers run with
# --network host and every connection stays on loopback), then wait until `docker info` answers.
# Idempotent: a running engine is left alone. Exits non-zero with a message when no engine can run.
set -euo pipefail

LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
WAIT_S=${DOCKERD_WAIT_S:-60}

die() { echo "docker_engine: $*" >&2; exit 1; }
engine_up() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

if engine_up; then
  echo "docker_engine: engine already running"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  sudo -n true 2>/dev/null || die "no engine is running and starting one needs root (or sudo without a password)"
  SUDO="sudo -n"
fi

# dockerd and debootstrap come from Debian; the client alone (often preinstalled) is not enough.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "dockerd is missing and there is no apt-get to install ${missing[*]}"
  echo "docker_engine: installing ${missing[*]} with apt-get"
  $SUDO apt-get update -qq || die "apt-get update failed"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get could not install ${missing[*]}"
fi

# A live (not zombie) process with this exact name?
alive() {
  local pid
  for pid in $(pgrep -x "$1" 2>/dev/null); do
    case "$(ps -o stat= -p "$pid" 2>/dev/null)" in Z*|"") ;; *) return 0 ;; esac
  done
  return 1
}

# Another caller may have started the daemon while we installed; start one only if none is alive.
if ! alive dockerd; then
  # A daemon killed earlier (e.g. when the session that started it ended) leaves pid files that
  # make the next one refuse to start or wait on a dead containerd.
  alive containerd || $SUDO rm -f /var/run/docker/containerd/containerd.pid
  $SUDO rm -f /var/run/docker.pid
  echo "docker_engine: starting dockerd (log: $LOG)"
  # setsid + nohup: the daemon outlives this script and the make/pytest that called it.
  $SUDO setsid nohup dockerd --bridge=none --iptables=false >"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq "$WAIT_S"); do
  if engine_up; then
    echo "docker_engine: engine ready"
    exit 0
  fi
  sleep 1
done
tail -n 20 "$LOG" >&2 2>/dev/null || true
die "dockerd did not answer 'docker info' within ${WAIT_S}s (log above, full log in $LOG)"
