#!/usr/bin/env bash
# Cache-hit throughput: requests/s for a cached variant from imago, as a ratio to nginx serving the
# same bytes as a static file, measured in the same run with the same wrk settings. Target >= 0.8.
set -euo pipefail
cd "$(dirname "$0")/.."
for t in wrk nginx; do command -v "$t" >/dev/null || { echo "bench-cache: $t missing (scripts/deps.sh test installs it)"; exit 1; }; done
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p imago -q
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/images" "$tmp/static"
cp tests/fixtures/nasa_large.jpg "$tmp/images/photo.jpg"
KEY=$(printf 'ab%.0s' $(seq 32)); SALT=$(printf 'cd%.0s' $(seq 32))
IMAGO_BIND=127.0.0.1:18180 IMAGO_KEY=$KEY IMAGO_SALT=$SALT IMAGO_LOCAL_ROOT="$tmp/images" IMAGO_DEBUG_HEADERS=false \
  IMAGO_LOG_FORMAT=json RUST_LOG=warn IMAGO_ANALYTICS=${IMAGO_ANALYTICS:-true} IMAGO_ANALYTICS_DIR="$tmp/analytics" \
  ./target/release/imago serve 2>"$tmp/imago.log" &
for _ in $(seq 100); do curl -sf http://127.0.0.1:18180/healthz >/dev/null && break; sleep 0.05; done
path=$(IMAGO_KEY=$KEY IMAGO_SALT=$SALT ./target/release/imago sign --width 800 --quality 80 --format webp local:///photo.jpg)
curl -sf -o "$tmp/static/variant.webp" "http://127.0.0.1:18180$path"
cat > "$tmp/nginx.conf" <<NGX
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on;
  types { image/webp webp; }
  server { listen 127.0.0.1:18181; root $tmp/static; etag on; }
}
NGX
nginx -c "$tmp/nginx.conf"
sleep 0.3
dur=${BENCH_SECONDS:-5}; conns=${BENCH_CONNECTIONS:-32}
rps() { wrk -t1 -c"$conns" -d"${dur}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
rps "http://127.0.0.1:18180$path" >/dev/null   # warm-up
imago=$(rps "http://127.0.0.1:18180$path")
nginx=$(rps "http://127.0.0.1:18181/variant.webp")
size=$(stat -c %s "$tmp/static/variant.webp")
awk -v i="$imago" -v n="$nginx" -v s="$size" 'BEGIN { printf "cache-hit throughput (%d-byte WebP variant, wrk -t1 -c'"$conns"' -d'"$dur"'s): imago %.0f req/s, nginx static %.0f req/s, ratio %.2f (target >= 0.8)\n", s, i, n, i/n }'
