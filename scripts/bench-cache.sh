#!/usr/bin/env bash
# Cache-hit throughput: requests/s for a cached variant from imago, as a ratio to nginx serving the
# same bytes as a static file (target >= 0.8) and to actix-web serving them from memory with no
# per-request work (the floor imago is built on), all measured in the same run with the same wrk
# settings, for a large and a small variant.
set -euo pipefail
cd "$(dirname "$0")/.."
for t in wrk nginx; do command -v "$t" >/dev/null || { echo "bench-cache: $t missing (scripts/deps.sh test installs it)"; exit 1; }; done
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p imago -q
# The framework floor: actix-web serving the same bytes from memory with no per-request work.
floor_bin=$(cargo build --release --locked --bench actix_floor --message-format=json -q 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*actix_floor[^"]*\)".*/\1/p' | tail -1)
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/images" "$tmp/static"
cp tests/fixtures/nasa_large.jpg "$tmp/images/photo.jpg"
KEY=$(printf 'ab%.0s' $(seq 32)); SALT=$(printf 'cd%.0s' $(seq 32))
IMAGO_BIND=127.0.0.1:18180 IMAGO_KEY=$KEY IMAGO_SALT=$SALT IMAGO_LOCAL_ROOT="$tmp/images" IMAGO_DEBUG_HEADERS=false \
  IMAGO_LOG_FORMAT=json RUST_LOG=warn IMAGO_ANALYTICS=${IMAGO_ANALYTICS:-true} IMAGO_ANALYTICS_DIR="$tmp/analytics" \
  ./target/release/imago serve 2>"$tmp/imago.log" &
for _ in $(seq 100); do curl -sf http://127.0.0.1:18180/healthz >/dev/null && break; sleep 0.05; done
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
dur=${BENCH_SECONDS:-5}; conns=${BENCH_CONNECTIONS:-32}
rps() { wrk -t1 -c"$conns" -d"${dur}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
# Two variants: a 800 px photo (~70 KB, where copying the body dominates) and a 64 px thumbnail
# (~1 KB, where per-request work dominates).
for width in 800 64; do
  path=$(IMAGO_KEY=$KEY IMAGO_SALT=$SALT ./target/release/imago sign --width $width --quality 80 --format webp local:///photo.jpg)
  curl -sf -o "$tmp/static/v$width.webp" "http://127.0.0.1:18180$path"
  size=$(stat -c %s "$tmp/static/v$width.webp")
  if [ -n "$floor_bin" ]; then "$floor_bin" "$tmp/static/v$width.webp" 127.0.0.1:18182 2 & fpid=$!; sleep 0.3; fi
  rps "http://127.0.0.1:18180$path" >/dev/null   # warm-up
  rps "http://127.0.0.1:18181/v$width.webp" >/dev/null
  imago=$(rps "http://127.0.0.1:18180$path")
  nginx=$(rps "http://127.0.0.1:18181/v$width.webp")
  floor=0
  if [ -n "$floor_bin" ]; then floor=$(rps "http://127.0.0.1:18182/"); kill "$fpid"; wait "$fpid" 2>/dev/null || true; fi
  awk -v i="$imago" -v n="$nginx" -v f="$floor" -v s="$size" -v w="$width" 'BEGIN {
    printf "cache-hit throughput, w:%d WebP (%d bytes), wrk -t1 -c'"$conns"' -d'"$dur"'s: imago %.0f req/s, nginx static (sendfile) %.0f req/s, actix-web floor %.0f req/s\n", w, s, i, n, f
    printf "  ratio to nginx %.2f (target >= 0.8); ratio to the actix-web floor %.2f; floor to nginx %.2f\n", i/n, (f > 0 ? i/f : 0), f/n }'
done
