#!/usr/bin/env bash
# Build and run the server image for linux/arm64 on an x86_64 machine, under QEMU user emulation.
#
#   bash scripts/arm64_check.sh [IMAGE]      (root; IMAGE defaults to char-lstm:arm64-emulated;
#                                             40-60 min on 2 cores; not part of `make test`)
#
# What it shows without ARM hardware, and without buildx (which `make docker-image-arm64` needs):
#   1. QEMU's aarch64 handler (Debian's qemu-user-static) registered with the kernel's binfmt_misc,
#      with the F flag, so arm64 programs run here and inside containers;
#   2. an arm64 stand-in for python:3.11-slim (scripts/docker_base_image.sh, BASE_ARCH=arm64);
#   3. the Dockerfile built from the committed tree with its FROM lines naming that stand-in: pip
#      resolves requirements.txt on aarch64 (tensorflow, no tbb) and the build compiles the numba
#      kernels there (the Dockerfile's cache-warming RUN);
#   4. that image started as tests/test_docker.py starts it (read-only, tmpfs /tmp): /readyz, one
#      stream of 200 chars (seed 7, the text printed so it can be compared with an x86 run), and the
#      threading layer numba picks without TBB.
# Timings under emulation say nothing about ARM hardware; docs/scaling.md records what was run.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
IMAGE=${1:-char-lstm:arm64-emulated}
BASE=charlstm-base:arm64
PORT=${ARM64_CHECK_PORT:-18964}

die() { echo "arm64_check: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (binfmt_misc, debootstrap)"

bash "$HERE/docker_engine.sh"
if [ ! -x /usr/bin/qemu-aarch64-static ]; then
  echo "arm64_check: installing qemu-user-static with apt-get"
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    qemu-user-static >/dev/null
fi
B=/proc/sys/fs/binfmt_misc
mountpoint -q "$B" || mount -t binfmt_misc binfmt_misc "$B" || die "cannot mount binfmt_misc"
if [ ! -e "$B/qemu-aarch64" ]; then
  # The ELF header of an aarch64 executable, and the mask of the bytes that must match.
  magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
  mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  printf '%s' ":qemu-aarch64:M::$magic:$mask:/usr/bin/qemu-aarch64-static:FP" >"$B/register"
fi
machine=$(docker run --rm "$BASE" uname -m 2>/dev/null || true)
if [ "$machine" != aarch64 ]; then
  BASE_ARCH=arm64 BASE_TAG=$BASE bash "$HERE/docker_base_image.sh"
  machine=$(docker run --rm "$BASE" uname -m)
fi
[ "$machine" = aarch64 ] || die "the arm64 base image runs as $machine"
echo "arm64_check: $BASE runs as $machine"

CONTEXT=$(mktemp -d "${TMPDIR:-/var/tmp}/arm64-context.XXXXXX")
trap 'rm -rf "$CONTEXT"; docker rm -f arm64-check >/dev/null 2>&1 || true' EXIT
git -C "$HERE/.." archive HEAD | tar -x -C "$CONTEXT"
sed -i "s|^FROM python:3.11-slim|FROM $BASE|" "$CONTEXT/Dockerfile"
start=$(date +%s)
docker build --network host -t "$IMAGE" "$CONTEXT"
echo "arm64_check: built $IMAGE in $(( $(date +%s) - start )) s"
docker run --rm --entrypoint python "$IMAGE" -c \
  "import platform, importlib.metadata as m; print(platform.machine(), *(f'{d}=={m.version(d)}' for d in ('tensorflow', 'numba', 'llvmlite', 'numpy')))"
docker run --rm --entrypoint python "$IMAGE" -c "import importlib.util as u; print('tbb installed:', u.find_spec('tbb') is not None)"

docker rm -f arm64-check >/dev/null 2>&1 || true
docker run -d --name arm64-check --network host --read-only --tmpfs /tmp -e UVICORN_PORT="$PORT" "$IMAGE" >/dev/null
start=$(date +%s)
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
  [ "$(docker inspect -f '{{.State.Running}}' arm64-check)" = true ] || { docker logs arm64-check | tail -20; die "the server exited"; }
  [ $(( $(date +%s) - start )) -lt 900 ] || die "/readyz did not answer within 900 s"
  sleep 5
done
echo "arm64_check: /readyz 200 after $(( $(date +%s) - start )) s"
curl -sS -N -H 'Content-Type: application/json' -d '{"prompt": "ROMEO:", "max_chars": 200, "seed": 7}' \
  "http://127.0.0.1:$PORT/api/generate/stream" | tee "$CONTEXT/stream.txt" | tail -n 3
python3 -c "
import json, sys
text = ''.join(json.loads(l[5:])['text'] for l in open(sys.argv[1]) if l.startswith('data:') and '\"text\"' in l)
print('arm64_check: text', json.dumps(text))" "$CONTEXT/stream.txt"
docker exec arm64-check python -c "
from model.runtime import configure
configure()
import numba, numpy as np

@numba.njit(parallel=True)
def total(a):
    s = 0.0
    for i in numba.prange(a.shape[0]):
        s += a[i]
    return s

total(np.ones(64))
print('arm64_check: numba threading layer', numba.threading_layer())"
