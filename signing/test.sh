#!/usr/bin/env bash
# Runs the TypeScript and Python SDK test suites over signing/test-vectors.json.
# Installs what is missing (npm ci; a venv at python/.venv with `pip install -e .[test]`)
# and is fast when everything is already installed. Exits non-zero if either suite fails.
#
# `signing/test.sh --prepare` only installs and builds (npm ci, `npm run build` → js/dist, the
# venv) without running the suites: `cargo test` needs that first (tests/imgproxy_interop.rs uses
# js/node_modules/@imgproxy/imgproxy-node, tests/sdk_crosscheck.rs uses js/dist and the venv).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
status=0
prepare=0
if [ "${1:-}" = "--prepare" ]; then
  prepare=1
fi

echo "== @imago/signing (TypeScript) =="
(
  set -e
  cd "$here/js"
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
  if [ "$prepare" -eq 1 ]; then
    npm run build
  else
    npm test
  fi
) || status=1

echo "== imago-signing (Python) =="
(
  set -e
  cd "$here/python"
  py="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
  fi
  stamp=.venv/.imago-signing-installed
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --disable-pip-version-check -q -e '.[test,encrypt]'
    touch "$stamp"
  fi
  if [ "$prepare" -eq 0 ]; then
    .venv/bin/python -m pytest -q -p no:cacheprovider
  fi
) || status=1

if [ "$status" -ne 0 ]; then
  echo "signing/test.sh: FAILED" >&2
fi
exit "$status"
