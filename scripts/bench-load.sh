#!/usr/bin/env bash
# Server load benchmark (prints ratios against in-process libvips measured in the same run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p imago
cargo bench --locked -p imago --bench load
