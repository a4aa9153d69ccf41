#!/usr/bin/env bash
# Build the server image: engine up, base image present (pulled, or the local stand-in), then build.
#
#   bash scripts/docker_image.sh [IMAGE] [CONTEXT]     (make docker-image; IMAGE defaults to
#                                                       char-lstm:latest, CONTEXT to the repo root)
#
# Builds with --network host: the engine runs without a bridge here, so pip inside the build
# reaches the package index the way the host does.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
IMAGE=${1:-char-lstm:latest}
CONTEXT=${2:-$HERE/..}

[ -f "$CONTEXT/Dockerfile" ] || { echo "docker_image: no Dockerfile in $CONTEXT" >&2; exit 1; }
if [ ! -f "$CONTEXT/model/pretrained/shakespeare/model.keras" ]; then
  echo "docker_image: warning: no bundled model at model/pretrained/shakespeare (run 'make train');" \
    "the image will not start without one" >&2
fi

bash "$HERE/docker_engine.sh"
bash "$HERE/docker_base_image.sh"

start=$(date +%s)
docker build --network host -t "$IMAGE" "$CONTEXT"
size=$(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}')
echo "docker_image: built $IMAGE in $(( $(date +%s) - start )) s, size $size"
