#!/usr/bin/env bash
# Installs the system packages imago needs, skipping what is present. Usage:
#   scripts/deps.sh build      libvips-dev and pkg-config (for `make run`)
#   scripts/deps.sh test       + what the test suite uses (varnish, nginx, chromium, node, python,
#                              garage 2.5.0 built with cargo for the S3 upload tests)
set -euo pipefail
what="${1:-build}"
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in libvips-dev pkg-config; do have_pkg "$p" || need+=("$p"); done
if [ "$what" = "test" ]; then
  for p in varnish nginx wrk chromium python3-venv; do have_pkg "$p" || need+=("$p"); done
  command -v node >/dev/null 2>&1 || need+=(nodejs npm)
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust from your distribution or rustup" >&2
  exit 1
fi
# Garage (S3 API) for the upload tests: scripts/garage.sh runs it. Built from crates.io once.
if [ "$what" = "test" ]; then
  garage_bin="$(command -v garage || echo "$HOME/.cargo/bin/garage")"
  if ! [ -x "$garage_bin" ] || ! "$garage_bin" --version 2>/dev/null | grep -q "2\.5\.0"; then
    echo "installing: garage 2.5.0 (cargo install, takes a while)"
    cargo install garage --version 2.5.0 --locked --no-default-features --features bundled-libs,lmdb
  fi
fi
