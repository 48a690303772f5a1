#!/usr/bin/env bash
# make deb: drctl_<version>_<arch>.deb in OUT (default: the repository).
#
#   tools/deb.sh VERSION [OUT]
#
# Built for /usr with Debian's hardening flags (dpkg-buildflags) into
# build-deb/ and bin-deb/ (DEB_BUILD, DEB_BIN), installed into a staging root by make install,
# with man pages compressed, the copyright, changelog and examples in
# /usr/share/doc/drctl. Its Depends is what dpkg-shlibdeps finds the two
# binaries link, never typed by hand. lintian must report no error.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$1
out=${2:-$PWD}

# Each tool, and the Debian package it comes in.
need=(dpkg-deb:dpkg dpkg-shlibdeps:dpkg-dev dpkg-buildflags:dpkg-dev lintian:lintian scdoc:scdoc
      fakeroot:fakeroot)
missing=()
for pair in "${need[@]}"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "make deb needs Debian's packaging tools: apt-get install ${missing[*]} (or make deps)" >&2
    exit 2
fi

arch=$(dpkg --print-architecture)
build=${DEB_BUILD:-$PWD/build-deb}
bin=${DEB_BIN:-$PWD/bin-deb}
stage=$build/stage
root=$stage/root
rm -rf "$stage"
mkdir -p "$root"

# Compiled for /usr (the share folder is built in), hardened as Debian's
# own packages are.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
flags=(BUILD="$build" BIN="$bin" PREFIX=/usr
       OPT="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
       LDFLAGS="$(dpkg-buildflags --get LDFLAGS)")
make --no-print-directory "${flags[@]}" -j"$(nproc)" "$bin/drctl" "$bin/neon-local" >/dev/null
make --no-print-directory "${flags[@]}" install DESTDIR="$root" >/dev/null
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/drctl" \
    "$root/usr/bin/neon-local"
gzip -9n "$root"/usr/share/man/man*/*

doc=$root/usr/share/doc/drctl
install -d "$doc/examples"
install -m 0644 packaging/deb/copyright "$doc/copyright"
sed "s/@VERSION@/$version/" packaging/deb/changelog | gzip -9n > "$doc/changelog.gz"
cp -R examples/. "$doc/examples/"
find "$root" -type d -exec chmod 0755 {} +
find "$root/usr/share" -type f -exec chmod 0644 {} +

# What the binaries link, as dpkg-shlibdeps reads it (it wants a
# debian/control beside it).
mkdir -p "$stage/debian"
printf 'Source: drctl\n\nPackage: drctl\nArchitecture: any\n' > "$stage/debian/control"
depends=$(cd "$stage" && dpkg-shlibdeps -O root/usr/bin/drctl root/usr/bin/neon-local 2>/dev/null |
          sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "dpkg-shlibdeps found no library: nothing to depend on?" >&2; exit 1; }
size=$(du -sk "$root" | cut -f1)
mkdir -p "$root/DEBIAN"
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    packaging/deb/control.in > "$root/DEBIAN/control"

deb=$out/drctl_${version}_${arch}.deb
fakeroot dpkg-deb -Zxz --build "$root" "$deb" >/dev/null
# lintian's errors fail the package; its warnings are shown.
report=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v "^running with root privileges" || true)
[ -z "$report" ] || echo "$report" >&2
if grep -q '^E:' <<< "$report"; then
    rm -f "$deb"
    echo "make deb: lintian reports errors (above): no package" >&2
    exit 1
fi
echo "$deb"
