# make deb: a Debian package of drctl, lintian-clean, its Depends computed,
# installed with dpkg into a scratch root and working from there.

build_deb() {
    DEB_BUILD=$PWD/deb-build DEB_BIN=$PWD/deb-bin bash "$ROOT/tools/deb.sh" 0.1.0 "$PWD" >deb.out 2>deb.err
}

t_the_package_is_clean_and_works_once_installed() {
    build_deb || { cat deb.err >&2; fail "make deb failed"; }
    deb=$(ls drctl_0.1.0_*.deb)
    [ "$(tail -1 deb.out)" = "$PWD/$deb" ] || fail "make deb did not name its package: $(cat deb.out)"
    ! grep -q '^E:' deb.err || fail "lintian errors: $(grep '^E:' deb.err)"
    # Depends is what the binaries link.
    depends=$(dpkg-deb -f "$deb" Depends)
    for lib in libc6 libgit2 libcurl4 liblua5.4 libpq5 libcjson1 libmicrohttpd; do
        [[ $depends == *"$lib"* ]] || fail "Depends has no $lib: $depends"
    done
    dpkg-deb -c "$deb" | awk '{ print $6 }' > contents
    for f in ./usr/bin/drctl ./usr/bin/neon-local ./usr/share/drctl/runbooks/accidental-deletion.lua \
             ./usr/share/drctl/lua/drctl/common.lua ./usr/share/man/man1/drctl.1.gz ./usr/share/man/man5/drctl-runbook.5.gz \
             ./usr/share/man/man1/neon-local.1.gz ./usr/share/bash-completion/completions/drctl \
             ./usr/share/zsh/vendor-completions/_drctl ./usr/share/doc/drctl/copyright \
             ./usr/share/doc/drctl/examples/crontab; do
        grep -qx -- "$f" contents || fail "the package has no $f"
    done
    # Installed with dpkg into a scratch root (its libraries are this
    # machine's, hence --force-depends).
    mkdir -p root/var/lib/dpkg/info root/var/lib/dpkg/updates
    touch root/var/lib/dpkg/status
    dpkg --root="$PWD/root" --force-depends --force-script-chrootless --log=/dev/null -i "$deb" >dpkg.out 2>&1 ||
        { cat dpkg.out >&2; fail "dpkg -i failed"; }
    expect_eq "$(root/usr/bin/drctl --version)" "drctl 0.1.0" "drctl --version from the package"
    root/usr/bin/drctl list > list.out || fail "drctl list failed: $(cat list.out)"
    expect_in list.out "accidental-deletion"
    expect_in list.out "total-loss"
    MANPATH=$PWD/root/usr/share/man MANWIDTH=80 man drctl 2>/dev/null | col -bx > man.out
    expect_in man.out "drctl - disaster-recovery runbooks for PostgreSQL on Neon"
    COMP_LINE="drctl pl" PATH="$PWD/root/usr/bin:$PATH" bash -c '
        source root/usr/share/bash-completion/completions/drctl
        COMP_POINT=${#COMP_LINE}; _drctl; printf "%s\n" "${COMPREPLY[@]}"' > completions
    expect_eq "$(cat completions)" plan "completion from the package"
    dpkg --root="$PWD/root" --force-script-chrootless --log=/dev/null -r drctl >dpkg.out 2>&1 ||
        { cat dpkg.out >&2; fail "dpkg -r failed"; }
    [ ! -e root/usr/bin/drctl ] || fail "dpkg -r left drctl"
}

t_without_the_packaging_tools_it_names_the_packages_to_install() {
    mkdir -p nobin
    for tool in bash sh cat sed sort dirname printf mkdir; do ln -sf "$(command -v $tool)" nobin/; done
    set +e
    PATH="$PWD/nobin" bash "$ROOT/tools/deb.sh" 0.1.0 "$PWD" >deb.out 2>deb.err
    rc=$?
    set -e
    expect_rc 2
    expect_in deb.err "apt-get install dpkg dpkg-dev fakeroot lintian scdoc"
    [ -z "$(ls ./*.deb 2>/dev/null)" ] || fail "a package was made without the tools"
}

for t in t_the_package_is_clean_and_works_once_installed \
         t_without_the_packaging_tools_it_names_the_packages_to_install; do
    run_test "$t"
done
