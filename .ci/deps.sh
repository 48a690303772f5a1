#!/usr/bin/env bash
# Installs every Debian package drctl needs to build, test and run the demo.
# Idempotent: when everything is there it does nothing (and needs no root).
set -euo pipefail

packages=(
    gcc make pkg-config git jq curl util-linux procps python3 lua5.4 openssh-client
    liblua5.4-dev libcjson-dev libcurl4-openssl-dev libssl-dev libpq-dev libgit2-dev libmicrohttpd-dev libexpat1-dev
    postgresql-15 postgresql-client-15
    valgrind gcovr clang libclang-rt-14-dev
    scdoc man-db groff-base bsdextrautils dpkg-dev lintian fakeroot
)

# The contract tests run the official Neon CLI, from the npm registry.
command -v npm >/dev/null || packages+=(nodejs npm)

# promtool checks the check's Prometheus metrics. It ships in Debian's
# prometheus package, whose installation would start a server: only the
# binary is taken out of the package.
install_promtool() {
    command -v promtool >/dev/null && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "the tests need promtool: as root, run .ci/deps.sh (it extracts it from Debian's prometheus package)" >&2
        return 1
    fi
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; })
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
    install -m 755 "$tmp/x/usr/bin/promtool" /usr/local/bin/promtool
    rm -rf "$tmp"
    echo "promtool extracted from Debian's prometheus package to /usr/local/bin"
}

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    install_promtool
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "drctl needs these Debian packages: ${missing[*]}" >&2
    echo "install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_promtool
