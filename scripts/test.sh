#!/usr/bin/env bash
# Every test: Rust (unit + integration), the SDKs, deployment lint. Services the tests use are
# started by the tests themselves on 127.0.0.1 (or by the scripts below).
set -euo pipefail
cd "$(dirname "$0")/.."
# cargo-deny and garage live here (scripts/deps.sh builds them once per machine).
export PATH="${IMAGO_TOOLS_DIR:-$HOME/.cache/imago-tools}/bin:$PATH"
t_all=$SECONDS
t_step=$SECONDS
step() { # prints the time of the step that ended and the name of the next one
  [ -n "${step_name:-}" ] && echo "-- $step_name took $((SECONDS - t_step)) s"
  step_name="$1"
  t_step=$SECONDS
  [ -n "$1" ] && echo "== $1"
  return 0
}
# Every crate of Cargo.lock, for all targets: the `--offline` steps below (cargo deny) read
# metadata of Windows/wasm crates that no Linux build downloads, so an empty registry (a new
# machine, a new CARGO_HOME) must fetch them first.
# The capacity plan's simulator (docs/design.md §9-§11) on a reduced size: a few seconds.
step "capacity simulator (scripts/test_capacity.py, reduced size)"
python3 scripts/test_capacity.py
step "cargo fetch (the whole lockfile, all targets)"
cargo fetch --locked
step "cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings
step "cargo deny (licences, bans, sources)"
# The advisories check needs the RustSec database from GitHub; run `cargo deny check advisories`
# where it is reachable (see docs/security.md).
command -v cargo-deny >/dev/null 2>&1 || { echo "cargo-deny is missing: run scripts/deps.sh test" >&2; exit 1; }
cargo deny --offline check licenses bans sources
# Advisories need the RustSec database (a git clone from GitHub). Where it can be fetched they are
# checked and any finding is printed loudly; the gate that fails on them is `make audit` (a
# separate CI job: an advisory published today must not block an unrelated change, but it must be
# seen). Where the database cannot be fetched (registry-only build machines), say so.
if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
  echo "-- cargo deny check advisories"
  cargo deny --offline check advisories || echo "!! cargo deny: ADVISORIES FOUND (above): fix or justify them in deny.toml; make audit fails until then"
else
  echo "!! cargo deny: the RustSec advisory database is unreachable from here: advisories NOT checked"
fi
if [ -x signing/test.sh ]; then
  # npm packages, js/dist and the Python venv: used by tests/imgproxy_interop.rs and tests/sdk_crosscheck.rs.
  step "SDK install/build"
  signing/test.sh --prepare
fi
# A throwaway Garage for the S3 upload tests (they read IMAGO_TEST_S3_*), stopped on exit.
step "Garage (S3 upload tests)"
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
# (again when package-lock.json changed since the last install).
step "npm ci (tests/browser)"
if [ ! -f tests/browser/node_modules/.package-lock.json ] \
  || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
# DuckDB and prometheus_client (independent readers for tests/analytics.rs, tests/observability.rs).
step "analytics test venv"
tests/report/prepare.sh
step "cargo test"
cargo test --workspace --locked --no-fail-fast
if [ -x signing/test.sh ]; then
  step "SDK tests"
  signing/test.sh
fi
# What npm, PyPI and crates.io would receive: packs each package (the crates verified by a build)
# and fails on a missing LICENSE or a relative link in a packed README (scripts/check_packages.py).
step "packages (npm pack, python -m build, cargo package)"
python3 scripts/check_packages.py
if [ -x .ci/lint-deploy.sh ]; then
  step "deployment lint"
  .ci/lint-deploy.sh
fi
step ""
echo "scripts/test.sh: all steps passed in $((SECONDS - t_all)) s"
