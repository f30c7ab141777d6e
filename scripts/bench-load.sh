#!/usr/bin/env bash
# Server load benchmark: imago's server CPU per image against libvips in-process and sharp (npm,
# installed here into benches/sharp/ from its lock file: bench-only, never needed by make test),
# measured in the same run, then what each encoder/colour choice costs. Cargo builds the server
# binary for the bench (release settings) and honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v npm >/dev/null 2>&1; then
  (cd benches/sharp && npm ci --no-audit --no-fund --silent)
else
  echo "bench-load: npm not found (scripts/deps.sh test installs it): running without sharp" >&2
fi
cargo bench --locked -p imago --bench load
