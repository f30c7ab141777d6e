#!/usr/bin/env bash
# Installs what imago needs, skipping what is present. Usage:
#   scripts/deps.sh build      libvips-dev and pkg-config (for `make run`)
#   scripts/deps.sh test       + what the test suite uses (varnish, redis-server or valkey-server, nginx, wrk, chromium, node,
#                              python venv; garage 2.5.0 and cargo-deny 0.20.2 built with cargo)
#
# Tools built with cargo go to $IMAGO_TOOLS_DIR (default ~/.cache/imago-tools), not to
# $CARGO_HOME: a CI run with a new cargo home, or a second clone, finds them there and never
# rebuilds them while the right version is present (garage alone takes ~12 min to build).
# Each install step prints how long it took.
set -euo pipefail
what="${1:-build}"
tools="${IMAGO_TOOLS_DIR:-$HOME/.cache/imago-tools}"
timed() { # timed LABEL CMD...: runs CMD, prints "deps: LABEL took N s"
  local label="$1" t0=$SECONDS
  shift
  "$@"
  echo "deps: $label took $((SECONDS - t0)) s"
}
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in libvips-dev pkg-config; do have_pkg "$p" || need+=("$p"); done
if [ "$what" = "test" ]; then
  for p in varnish nginx wrk chromium python3-venv openssl; do have_pkg "$p" || need+=("$p"); done
  # The shared quota store of tests/quota.rs (Valkey where the distribution has it, else Redis;
  # bookworm ships redis-server 7.0). The test starts its own on a free loopback port; the
  # package's service is not used.
  if ! command -v valkey-server >/dev/null 2>&1 && ! command -v redis-server >/dev/null 2>&1; then
    if apt-cache show valkey-server >/dev/null 2>&1; then need+=(valkey-server); else need+=(redis-server); fi
  fi
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
fi
apt_install() {
  local SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  timed "apt (${need[*]})" apt_install "${need[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust from your distribution or rustup" >&2
  exit 1
fi
if [ "$what" = "test" ]; then
  mkdir -p "$tools/bin"
  # Garage (S3 API) for the upload tests: scripts/garage.sh runs it.
  garage_bin="$("$(dirname "$0")"/garage.sh which 2>/dev/null || true)"
  if [ -z "$garage_bin" ] || ! "$garage_bin" --version 2>/dev/null | grep -q "2\.5\.0"; then
    echo "installing: garage 2.5.0 into $tools (cargo install, takes a while)"
    timed "garage 2.5.0 (cargo install)" cargo install -q --root "$tools" garage --version 2.5.0 --locked \
      --no-default-features --features bundled-libs,lmdb
  fi
  # cargo-deny (licences, bans, sources; advisories where the RustSec DB is reachable).
  if ! "$tools/bin/cargo-deny" --version 2>/dev/null | grep -q "0\.20\.2"; then
    echo "installing: cargo-deny 0.20.2 into $tools (cargo install)"
    timed "cargo-deny 0.20.2 (cargo install)" cargo install -q --root "$tools" cargo-deny --version 0.20.2 --locked
  fi
fi
