#!/usr/bin/env bash
# Every test: Rust (unit + integration), the SDKs, deployment lint. Services the tests use are
# started by the tests themselves on 127.0.0.1 (or by the scripts below).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
if [ -x signing/test.sh ]; then
  echo "== SDK tests"
  signing/test.sh
fi
if [ -x .ci/lint-deploy.sh ]; then
  echo "== deployment lint"
  .ci/lint-deploy.sh
fi
