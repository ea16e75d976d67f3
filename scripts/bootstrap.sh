#!/usr/bin/env bash
# Creates .venv (once) and installs the package with the given extras; re-runs only when pyproject.toml changes.
# Usage: scripts/bootstrap.sh [extras]   e.g. scripts/bootstrap.sh dev
# CLOUDTIK_VENV=/path/to/venv: use that existing virtualenv instead (the README test does, to stay fast).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ -n "${CLOUDTIK_VENV:-}" ]; then
  # An existing virtualenv with cloudtik_jupyter installed, used as is (linked as .venv): nothing is installed.
  if [ ! -x "$CLOUDTIK_VENV/bin/cloudtik" ]; then
    echo "CLOUDTIK_VENV=$CLOUDTIK_VENV: no bin/cloudtik there (pip install -e . in it first)" >&2
    exit 1
  fi
  [ -e .venv ] || ln -s "$CLOUDTIK_VENV" .venv
  exit 0
fi
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "cloudtik_jupyter needs Python >= 3.10 (set PYTHON=/path/to/python3.x)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv || { echo "python3 -m venv failed: on Debian, apt-get install python3-venv" >&2; exit 1; }
fi
stamp=".venv/.installed-${extras:-core}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  .venv/bin/python -m pip install -q -e "$spec"
  touch "$stamp"
fi
