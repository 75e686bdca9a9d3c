#!/usr/bin/env bash
# Install the Debian packages Moulin needs, only those missing. Usage: system-deps.sh demo|test|bench
# (bench: what the demo needs, plus motion for bench/stream.py's comparison)
set -euo pipefail
want=(python3 python3-venv python3-dev gcc make swig libpcsclite-dev pcscd vsmartcard-vpcd)
if [ "${1:-test}" = test ]; then
  want+=(chromium postgresql fonts-dejavu-core mount util-linux)  # mount, unshare: a pcscd per test process
fi
if [ "${1:-test}" = bench ]; then
  want+=(motion)
fi
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts pcscd, postgresql and motion on install; tests and benchmarks start their
# own, on their own sockets.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now postgresql pcscd.socket pcscd 2>/dev/null || true
  [ "${1:-test}" != bench ] || $sudo systemctl disable --now motion 2>/dev/null || true
fi
