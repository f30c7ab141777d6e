#!/usr/bin/env bash
# Every test: Rust (unit + integration), the SDKs, deployment lint. Services the tests use are
# started by the tests themselves on 127.0.0.1 (or by the scripts below).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings
echo "== cargo deny (licences, bans, sources)"
# The advisories check needs the RustSec database from GitHub; run `cargo deny check advisories`
# where it is reachable (see docs/security.md).
command -v cargo-deny >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/cargo-deny" ] || cargo install cargo-deny --version 0.20.2 --locked
cargo deny --offline check licenses bans sources
# Advisories need the RustSec database (a git clone from GitHub). Where it can be fetched they are
# checked and any finding is printed loudly; the gate that fails on them is `make audit` (a
# separate CI job: an advisory published today must not block an unrelated change, but it must be
# seen). Where the database cannot be fetched (registry-only build machines), say so.
if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
  echo "== cargo deny check advisories"
  cargo deny --offline check advisories || echo "!! cargo deny: ADVISORIES FOUND (above): fix or justify them in deny.toml; make audit fails until then"
else
  echo "!! cargo deny: the RustSec advisory database is unreachable from here: advisories NOT checked"
fi
if [ -x signing/test.sh ]; then
  # npm packages, js/dist and the Python venv: used by tests/imgproxy_interop.rs and tests/sdk_crosscheck.rs.
  echo "== SDK install/build"
  signing/test.sh --prepare
fi
# A throwaway Garage for the S3 upload tests (they read IMAGO_TEST_S3_*), stopped on exit.
echo "== Garage (S3 upload tests)"
if garage_env="$(scripts/garage.sh start)"; then
  eval "$garage_env"
  trap 'scripts/garage.sh stop' EXIT
elif [ "${CI:-}" = "true" ]; then
  echo "Garage did not start (scripts/deps.sh test installs it)" >&2
  exit 1
else
  echo "warning: Garage did not start: the S3 upload tests will be skipped" >&2
fi
# npm packages of the browser upload test (tests/uploads_browser.rs), when missing.
if [ ! -d tests/browser/node_modules ]; then
  echo "== npm ci (tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
# DuckDB and prometheus_client (independent readers for tests/analytics.rs, tests/observability.rs).
tests/report/prepare.sh
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
