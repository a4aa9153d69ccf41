#!/usr/bin/env bash
# Provide the `python:3.11-slim` base image the Dockerfile starts FROM.
#
#   bash scripts/docker_base_image.sh      (run by scripts/docker_image.sh; needs a running engine)
#   BASE_ARCH=arm64 BASE_TAG=charlstm-base:arm64 bash scripts/docker_base_image.sh
#                                          (another architecture's stand-in, never pulled: the
#                                           second stage runs under QEMU, scripts/arm64_check.sh)
#
# Where the tag exists or can be pulled, nothing else happens: the official image is used. Where
# no registry is reachable, a local stand-in is built once and tagged `python:3.11-slim`: a minimal
# Debian bookworm (the distribution the official image is built on) debootstrapped from the Debian
# mirror apt already uses on this host, plus Debian's Python 3.11 with venv and pip, `python` and
# `pip` on PATH as in the official image, and the host's CA certificates (so pip inside a build
# trusts the same authorities as pip on the host). Needs root and debootstrap.
set -euo pipefail

TAG=${BASE_TAG:-python:3.11-slim}
ARCH=${BASE_ARCH:-}  # empty: this machine's
SUITE=bookworm

die() { echo "docker_base_image: $*" >&2; exit 1; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "docker_base_image: $TAG present"
  exit 0
fi
if [ -z "$ARCH" ] && timeout 120 docker pull -q "$TAG" >/dev/null 2>&1; then
  echo "docker_base_image: pulled the official $TAG"
  exit 0
fi
echo "docker_base_image: $TAG cannot be pulled; building a local stand-in from Debian $SUITE"

[ "$(id -u)" = 0 ] || die "building the stand-in needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing (bash scripts/docker_engine.sh installs it)"

# The mirror apt uses here for the plain suite (not -updates or -security), read from apt itself so
# both one-line .list and deb822 .sources files are understood. apt lists only the indexes it has
# downloaded, so update once if it knows none.
mirror() {
  apt-get indextargets --format '$(SITE) $(RELEASE)' 'Created-By: Packages' 2>/dev/null \
    | awk -v suite="$SUITE" '$2 == suite { print $1; exit }'
}
MIRROR=$(mirror)
[ -n "$MIRROR" ] || { apt-get update -qq >/dev/null 2>&1 || true; MIRROR=$(mirror); }
[ -n "$MIRROR" ] || die "no apt source for Debian $SUITE found in /etc/apt/sources.list{,.d}"
echo "docker_base_image: mirror from apt's sources: $MIRROR"

ROOTFS=$(mktemp -d "${TMPDIR:-/var/tmp}/python-slim-rootfs.XXXXXX")
[ -d "$ROOTFS" ] && [ "$ROOTFS" != / ] || die "could not make a temporary directory"
cleanup() {
  # debootstrap mounts /proc and /sys inside; never delete through a mount point.
  { grep -o " $ROOTFS/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$ROOTFS"
}
trap cleanup EXIT

# minbase + only what the official slim image has in the way of Python: no compilers, no docs.
debootstrap ${ARCH:+--arch="$ARCH"} --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 \
  || { tail -n 30 "$ROOTFS.log" >&2; die "debootstrap failed (log: $ROOTFS.log)"; }
rm -f "$ROOTFS.log"

# `python` and `pip` on PATH as in the official image; pip may install outside a venv there too.
ln -sf /usr/bin/python3 "$ROOTFS/usr/local/bin/python"
ln -sf /usr/bin/python3 "$ROOTFS/usr/local/bin/python3"
ln -sf /usr/bin/pip3 "$ROOTFS/usr/local/bin/pip"
ln -sf /usr/bin/pip3 "$ROOTFS/usr/local/bin/pip3"
rm -f "$ROOTFS"/usr/lib/python3*/EXTERNALLY-MANAGED

# The host's authorities, so TLS from inside a build verifies exactly as it does on the host.
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
if [ -d /usr/local/share/ca-certificates ]; then
  cp -a /usr/local/share/ca-certificates/. "$ROOTFS/usr/local/share/ca-certificates/"
fi

# Slim as Debian's slim images are: no package caches or lists, no man pages, translations or docs
# beyond copyright notices, and dpkg told to keep it so for packages installed later.
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
  'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
  'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
  >"$ROOTFS/etc/dpkg/dpkg.cfg.d/slim"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/man/* \
  "$ROOTFS"/usr/share/info/*
find "$ROOTFS/usr/share/doc" -type f ! -name copyright -delete
find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

tar --numeric-owner -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "local stand-in for $TAG: Debian $SUITE minbase + python3, python3-venv, python3-pip" \
  - "$TAG" >/dev/null
echo "docker_base_image: built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
