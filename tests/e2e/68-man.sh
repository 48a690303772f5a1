# Man pages: made by the build (scdoc) from the help texts and
# docs/runbooks.md, rendered by man -l, saying what drctl says.

# make's man pages for the binaries under test, into ./pages (the
# binaries are never rebuilt here).
make_pages() { # [make-args...]
    make -s -C "$ROOT" -o "$BIN_DIR/drctl" -o "$BIN_DIR/neon-local" BIN="$BIN_DIR" BUILD="$PWD/pages" "$@" man \
        >make.out 2>&1
}

rendered() { # PAGE: its text, as man shows it; warnings go to stderr
    MANWIDTH=100 man --warnings -l "$1" 2>>render-warnings | col -bx
}

t_the_pages_render_and_carry_their_sections() {
    make_pages || { cat make.out >&2; fail "make man failed"; }
    for page in man/drctl.1 man/neon-local.1 man/drctl-runbook.5; do
        [ -s "pages/$page" ] || fail "no $page"
    done
    rendered pages/man/drctl.1 > drctl.txt
    for section in NAME SYNOPSIS DESCRIPTION "GLOBAL OPTIONS" COMMANDS TIMES ENVIRONMENT "EXIT STATUS" FILES "SEE ALSO"; do
        grep -q "^$section" drctl.txt || fail "drctl(1) has no $section"
    done
    expect_in drctl.txt "NEON_API_KEY"
    expect_in drctl.txt "130"
    rendered pages/man/neon-local.1 > neon-local.txt
    expect_in neon-local.txt "--idle-timeout S"
    rendered pages/man/drctl-runbook.5 > runbook.txt
    expect_in runbook.txt "dr.show_time(t)"
    expect_in runbook.txt "neon.create_branch"
    [ ! -s render-warnings ] || fail "man warned: $(head -5 render-warnings)"
}

# Each command's options, as drctl COMMAND --help lists them and as its
# section of drctl(1) does: the same.
options_in() { grep -oE '(^|[][ |(])--?[a-z][a-z-]*' | sed -E 's/^[][ |(]//' | sort -u; }

t_each_commands_help_and_its_man_section_list_the_same_options() {
    make_pages || { cat make.out >&2; fail "make man failed"; }
    rendered pages/man/drctl.1 > drctl.txt
    for command in $("$DRCTL" __complete 1 drctl ""); do
        "$DRCTL" "$command" --help | options_in > help-options
        awk -v h="drctl $command" '$0 ~ "^   " h "$" { on = 1; next } on && /^   drctl / { exit } on && /^[A-Z]/ { exit }
                                    on { print }' drctl.txt > section
        [ -s section ] || fail "drctl(1) has no section for drctl $command"
        options_in < section > man-options
        diff help-options man-options > options.diff || fail "drctl $command: --help and drctl(1) differ: $(cat options.diff)"
    done
}

t_a_page_that_does_not_render_fails_the_build() {
    mkdir -p broken
    cp "$ROOT/man/neon-local.1.scd.in" broken/
    sed 's/^# NAME$/# NAME\n\n*never closed/' "$ROOT/man/drctl.1.scd.in" > broken/drctl.1.scd.in
    ! make_pages MAN_SRC="$PWD/broken" || fail "make man passed with a broken page"
    [ ! -e pages/man/drctl.1 ] || fail "the broken page was left in place"
    # Without scdoc, the message names the package.
    mkdir -p nobin
    for tool in make sh bash groff cat rm mv mkdir; do ln -sf "$(command -v $tool)" nobin/; done
    ln -sf "$(python3 -c 'import sys; print(sys.executable)')" nobin/python3
    ! PATH="$PWD/nobin" make_pages || fail "make man passed without scdoc"
    expect_in make.out "apt-get install scdoc"
}

for t in t_the_pages_render_and_carry_their_sections \
         t_each_commands_help_and_its_man_section_list_the_same_options \
         t_a_page_that_does_not_render_fails_the_build; do
    run_test "$t"
done
