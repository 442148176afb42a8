#!/usr/bin/env bash
# Run every test: Rust unit tests, the type checks, then pytest (unit and, as root, integration).
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$HOME/.cargo/bin:$PATH"

cargo test -q -p pyc-core
.venv/bin/python -m mypy
.venv/bin/python -m pytest "$@"
