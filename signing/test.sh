#!/usr/bin/env bash
# Runs the TypeScript and Python SDK test suites over signing/test-vectors.json.
# Installs what is missing (npm ci; a venv at python/.venv with `pip install -e .[test]`)
# and is fast when everything is already installed. Exits non-zero if either suite fails.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
status=0

echo "== @imago/signing (TypeScript) =="
(
  set -e
  cd "$here/js"
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
  npm test
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
    .venv/bin/python -m pip install --disable-pip-version-check -q -e '.[test]'
    touch "$stamp"
  fi
  .venv/bin/python -m pytest -q -p no:cacheprovider
) || status=1

if [ "$status" -ne 0 ]; then
  echo "signing/test.sh: FAILED" >&2
fi
exit "$status"
