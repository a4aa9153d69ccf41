#!/bin/sh
# Start nginx with one upstream `server` line per replica (deploy/nginx/nginx.conf includes them).
#
#   entrypoint.sh            (the balancer image's CMD; UPSTREAM_HOST, UPSTREAM_PORT: app, 8000)
#
# Docker's DNS answers the compose service's name with one address per running replica. Each
# address gets its own line because nginx's consistent hash places a server on its ring by the name
# written in that line: one `server app:8000` line would put every replica on the same points, and
# nginx's workers would then disagree about which replica a client id belongs to. Read once, at
# start: after scaling the replicas, restart the balancer.
set -eu
HOST=${UPSTREAM_HOST:-app}
PORT=${UPSTREAM_PORT:-8000}
OUT=/tmp/nginx-upstreams.conf

addresses=$(getent ahostsv4 "$HOST" | awk '{ print $1 }' | sort -u -t. -k1,1n -k2,2n -k3,3n -k4,4n)
[ -n "$addresses" ] || { echo "entrypoint: no address for $HOST" >&2; exit 1; }
: >"$OUT"
for address in $addresses; do
  # Passive health checks: a replica that refuses connections, times out or answers 502/503
  # (draining) counts a failure; after max_fails within fail_timeout it gets no requests for
  # fail_timeout, then one request tries it again.
  echo "server $address:$PORT max_fails=2 fail_timeout=10s;" >>"$OUT"
done
echo "entrypoint: replicas of $HOST: $(echo $addresses | tr '\n' ' ')" >&2
exec nginx -e stderr -c /etc/nginx/charlstm.conf -g "daemon off;"
