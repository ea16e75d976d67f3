#!/usr/bin/env bash
# Install Debian's chromium for the browser tests (tests/browser), only if it is missing.
# Playwright drives this system browser (executable_path); it never downloads a browser build of its own.
# Exits non-zero with a clear message when chromium cannot be installed.
set -euo pipefail

BROWSER="${CLOUDTIK_BROWSER:-/usr/bin/chromium}"

if [[ -x "$BROWSER" ]]; then
  echo "install-browser: $BROWSER present"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "install-browser: $BROWSER is missing; run this script as root (or with passwordless sudo)," \
      "or install Debian's 'chromium' package yourself; the browser tests are skipped without it" >&2
    exit 1
  fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: $BROWSER is missing and apt-get is not available; install chromium with your" \
    "package manager and set CLOUDTIK_BROWSER to its path" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-browser: installing chromium"
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium; then
  # The package lists may be stale or absent on a fresh machine: refresh once and retry.
  "${SUDO[@]}" apt-get update -q || { echo "install-browser: apt-get update failed" >&2; exit 1; }
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium ||
    { echo "install-browser: apt-get install chromium failed" >&2; exit 1; }
fi

if [[ ! -x "$BROWSER" ]]; then
  echo "install-browser: chromium installed but $BROWSER not found; set CLOUDTIK_BROWSER to its path" >&2
  exit 1
fi
echo "install-browser: done ($("$BROWSER" --version 2>/dev/null || echo chromium))"
