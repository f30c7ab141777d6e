#!/usr/bin/env bash
# A throwaway single-node Garage (S3 API) on 127.0.0.1 for the upload tests.
#
#   scripts/garage.sh start   start it (idempotent), wait until the S3 API answers, set the
#                             bucket's CORS rule, print the environment (eval-able)
#   scripts/garage.sh env     print the environment of the running instance
#   scripts/garage.sh stop    stop it and delete its data
#   scripts/garage.sh which   print the garage binary it would run (exit 1: none)
#
# Usage: eval "$(scripts/garage.sh start)". The printed variables are the ones the tests read:
# IMAGO_TEST_S3_ENDPOINT, _REGION, _BUCKET, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY.
# State lives in $IMAGO_GARAGE_DIR (default: ${TMPDIR:-/tmp}/imago-garage-$UID). Needs `garage`
# 2.x (PATH or ~/.cargo/bin; `scripts/deps.sh test` installs it) and python3.
set -euo pipefail
cmd="${1:-start}"
dir="${IMAGO_GARAGE_DIR:-${TMPDIR:-/tmp}/imago-garage-$(id -u)}"
# The binary: $GARAGE, else the one scripts/deps.sh built ($IMAGO_TOOLS_DIR), else PATH, else
# ~/.cargo/bin.
tools="${IMAGO_TOOLS_DIR:-$HOME/.cache/imago-tools}"
find_garage() {
  local c
  for c in "${GARAGE:-}" "$tools/bin/garage" "$(command -v garage 2>/dev/null || true)" "$HOME/.cargo/bin/garage"; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}
garage_bin="$(find_garage || echo garage)"

log() { echo "garage.sh: $*" >&2; }

running() {
  [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

print_env() {
  cat "$dir/env"
}

stop() {
  if running; then
    local pid
    pid="$(cat "$dir/pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped (pid $pid)"
  fi
  rm -rf "$dir"
}

# SigV4-signed S3 request (stdlib only): PutBucketCors, and a probe that the bucket answers.
s3_setup() {
  python3 - "$dir/env" <<'PY'
import base64, datetime, hashlib, hmac, sys, time, urllib.error, urllib.request
env = {}
for line in open(sys.argv[1]):
    k, _, v = line.strip().removeprefix("export ").partition("=")
    env[k] = v.strip("'")
ep, region, bucket = env["IMAGO_TEST_S3_ENDPOINT"], env["IMAGO_TEST_S3_REGION"], env["IMAGO_TEST_S3_BUCKET"]
ak, sk = env["IMAGO_TEST_S3_ACCESS_KEY_ID"], env["IMAGO_TEST_S3_SECRET_ACCESS_KEY"]

def s3(method, path, query="", body=b"", extra=None):
    t = datetime.datetime.now(datetime.timezone.utc)
    amz, day = t.strftime("%Y%m%dT%H%M%SZ"), t.strftime("%Y%m%d")
    host = ep.split("://", 1)[1].rstrip("/")
    ph = hashlib.sha256(body).hexdigest()
    h = {"host": host, "x-amz-content-sha256": ph, "x-amz-date": amz}
    h.update({k.lower(): v for k, v in (extra or {}).items()})
    names = sorted(h)
    creq = "\n".join([method, path, query, "".join(f"{k}:{h[k]}\n" for k in names), ";".join(names), ph])
    scope = f"{day}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + sk).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
    req = urllib.request.Request(ep.rstrip("/") + path + ("?" + query if query else ""), data=body or None,
                                 method=method, headers={k: v for k, v in h.items() if k != "host"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

# The rule browsers need for presigned PUT/POST uploads (docs/uploads.md explains each part).
cors = (b"<CORSConfiguration><CORSRule>"
        b"<AllowedOrigin>*</AllowedOrigin>"
        b"<AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>"
        b"<AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod>"
        b"<AllowedHeader>*</AllowedHeader>"
        b"<ExposeHeader>ETag</ExposeHeader><ExposeHeader>Location</ExposeHeader>"
        b"<MaxAgeSeconds>3600</MaxAgeSeconds>"
        b"</CORSRule></CORSConfiguration>")
md5 = base64.b64encode(hashlib.md5(cors).digest()).decode()
last = None
for _ in range(100):
    try:
        last = s3("PUT", f"/{bucket}", "cors=", cors, {"content-md5": md5, "content-type": "application/xml"})
        if last[0] == 200:
            st, body = s3("GET", f"/{bucket}", "cors=")
            if st == 200 and b"<AllowedMethod>PUT</AllowedMethod>" in body:
                sys.exit(0)
    except OSError as e:
        last = e
    time.sleep(0.1)
print(f"garage.sh: could not set the bucket CORS rule: {last}", file=sys.stderr)
sys.exit(1)
PY
}

start() {
  if running; then
    print_env
    return
  fi
  rm -rf "$dir"
  if ! [ -x "$garage_bin" ]; then
    log "garage not found (run scripts/deps.sh test, or: cargo install garage --version 2.5.0 --locked --no-default-features --features bundled-libs,lmdb)"
    exit 1
  fi
  mkdir -p "$dir/meta" "$dir/data"
  chmod 700 "$dir"
  # Free loopback ports, random secrets (python3: no openssl needed).
  read -r s3_port rpc_port rpc_secret access secret < <(python3 -c '
import secrets, socket
ports = []
socks = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s); ports.append(s.getsockname()[1])
print(ports[0], ports[1], secrets.token_hex(32), "GK" + secrets.token_hex(12), secrets.token_hex(32))
')
  cat > "$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$rpc_secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"
EOF
  cat > "$dir/env" <<EOF
export IMAGO_TEST_S3_ENDPOINT='http://127.0.0.1:$s3_port'
export IMAGO_TEST_S3_REGION='garage'
export IMAGO_TEST_S3_BUCKET='imago-test'
export IMAGO_TEST_S3_ACCESS_KEY_ID='$access'
export IMAGO_TEST_S3_SECRET_ACCESS_KEY='$secret'
EOF
  chmod 600 "$dir/env" "$dir/garage.toml"
  GARAGE_DEFAULT_ACCESS_KEY="$access" GARAGE_DEFAULT_SECRET_KEY="$secret" GARAGE_DEFAULT_BUCKET=imago-test \
    RUST_LOG="${GARAGE_LOG:-warn}" \
    setsid "$garage_bin" -c "$dir/garage.toml" server --single-node --default-bucket \
    >"$dir/garage.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  # Wait until the S3 API answers (any HTTP status), then set CORS (retries until the bucket
  # exists).
  for i in $(seq 150); do
    if python3 -c "import sys, urllib.request, urllib.error
try: urllib.request.urlopen('http://127.0.0.1:$s3_port/', timeout=1)
except urllib.error.HTTPError: sys.exit(0)
except OSError: sys.exit(1)
" 2>/dev/null; then
      break
    fi
    if ! running; then
      log "garage exited; its log:"
      cat "$dir/garage.log" >&2
      exit 1
    fi
    [ "$i" -eq 150 ] && { log "the S3 API did not answer in 15 s"; cat "$dir/garage.log" >&2; stop; exit 1; }
    sleep 0.1
  done
  if ! s3_setup; then
    cat "$dir/garage.log" >&2
    stop
    exit 1
  fi
  log "running (pid $(cat "$dir/pid"), S3 API on 127.0.0.1:$s3_port, bucket imago-test)"
  print_env
}

case "$cmd" in
  start) start ;;
  which) find_garage ;;
  stop) stop ;;
  env)
    if running; then print_env; else log "not running"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|env|which" >&2
    exit 2
    ;;
esac
