#!/usr/bin/env bash
# Installs every Debian package drctl needs to build, test and run the demo.
# Idempotent: when everything is there it does nothing (and needs no root).
set -euo pipefail

packages=(
    gcc make pkg-config git jq curl util-linux procps python3 lua5.4
    liblua5.4-dev libcjson-dev libcurl4-openssl-dev libssl-dev libpq-dev libgit2-dev libmicrohttpd-dev libexpat1-dev
    postgresql-15 postgresql-client-15
)

# The contract tests run the official Neon CLI, from the npm registry.
command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "drctl needs these Debian packages: ${missing[*]}" >&2
    echo "install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
