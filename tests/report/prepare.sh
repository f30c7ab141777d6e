#!/usr/bin/env bash
# Creates .tools/analytics-venv with tests/report/requirements.txt (DuckDB, prometheus_client)
# for the analytics and metrics tests. Idempotent: does nothing when the venv is up to date.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.tools/analytics-venv"
req="$root/tests/report/requirements.txt"
stamp="$venv/.requirements-installed"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
echo "== analytics test venv ($venv)"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
cp "$req" "$stamp"
