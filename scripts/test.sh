#!/usr/bin/env bash
# The whole test suite: installs what it needs (venv, system packages), then lint, types and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
scripts/install-system-deps.sh
scripts/install-browser.sh  # Debian chromium for tests/browser
.venv/bin/ruff check cloudtik_jupyter tests benchmarks
.venv/bin/mypy
exec .venv/bin/pytest -q -p no:cacheprovider --durations=20 "$@"
