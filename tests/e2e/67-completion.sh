# Shell completion: bash's completion function, driven as bash drives it
# (COMP_LINE, COMP_POINT, COMPREPLY), against drctl's own answers.

# The candidates bash would offer for LINE (the cursor at its end), one a
# line in `completions`.
complete_line() { # LINE [drctl-options...]
    COMP_LINE=$1 PATH="$BIN_DIR:$PATH" bash -c '
        source "$1/completion/drctl.bash"
        COMP_POINT=${#COMP_LINE}
        COMPREPLY=()
        _drctl 2>completion-errors
        printf "%s\n" "${COMPREPLY[@]}"' _ "$ROOT" > completions
}

expect_completions() { # LINE EXPECTED (space-separated, in order)
    complete_line "$1"
    expect_eq "$(tr '\n' ' ' < completions | sed 's/ $//')" "$2" "completions of '$1'"
    [ ! -s completion-errors ] || fail "completing '$1' printed: $(cat completion-errors)"
}

# Two runbooks of the team's own, one with an enum, a bool and steps.
team_runbooks() {
    mkdir -p rb
    cat > rb/rotate.lua <<'LUA'
return runbook {
  name = "rotate", version = "1", summary = "rotates things",
  params = { mode = { type = "enum", values = { "fast", "careful" }, doc = "how" },
             dry = { type = "bool", default = "false", doc = "only say" },
             count = { type = "int", default = "1", doc = "how many" } },
  steps = { { name = "prepare", run = function() return {} end },
            { name = "swap", destructive = true, confirm = function() return { challenge = "x", summary = "y" } end,
              run = function() return {} end } } }
LUA
    cat > rb/report.lua <<'LUA'
return runbook { name = "report", version = "1", summary = "reports",
                 steps = { { name = "write", run = function() return {} end } } }
LUA
}

t_commands_and_the_options_each_command_takes() {
    expect_completions "drctl " "list plan run resume status abort drill approve undo audit docs config check notify"
    expect_completions "drctl re" "resume"
    expect_completions "drctl status --s" "--since --status"
    expect_completions "drctl run x --r" "--runbooks --run-id"
    expect_completions "drctl audit " "log show verify"
    expect_completions "drctl config set notify." "notify.webhook notify.timeout"
    expect_completions "drctl status --status d" "done dead"
    # Every option a completion offers is one the command's --help lists.
    complete_line "drctl status -"
    "$DRCTL" status --help > help
    "$DRCTL" --help >> help
    while read -r option; do
        grep -q -- "$option" help || fail "completion offers $option, which drctl status --help does not list"
    done < completions
}

t_runbook_names_params_and_steps_come_from_the_runbooks_there_are_now() {
    team_runbooks
    expect_completions "drctl --runbooks rb run " "report rotate"
    expect_completions "drctl --runbooks rb plan ro" "rotate"
    expect_completions "drctl --runbooks rb run rotate -p " "count= dry= mode="
    expect_completions "drctl --runbooks rb run rotate -p mode=" "fast careful"
    expect_completions "drctl --runbooks rb run rotate -p dry=t" "true"
    expect_completions "drctl --runbooks rb run rotate --approve " "prepare swap"
    # A new runbook, a new param: completion knows at once.
    cp rb/report.lua rb/archive.lua
    sed -i 's/name = "report"/name = "archive"/' rb/archive.lua
    sed -i 's/count = { type = "int"/level = { type = "enum", values = { "low", "high" } }, count = { type = "int"/' \
        rb/rotate.lua
    expect_completions "drctl --runbooks rb run " "archive report rotate"
    expect_completions "drctl --runbooks rb run rotate -p l" "level="
    expect_completions "drctl --runbooks rb run rotate -p level=" "low high"
    # The scenarios' own params, the drill's included.
    complete_line "drctl --runbooks $ROOT/runbooks drill accidental-deletion -p "
    expect_in completions "write_rate="
    expect_in completions "strategy="
}

t_run_ids_for_the_commands_that_take_one() {
    team_runbooks
    dr_runbooks() { "$DRCTL" --runbooks rb "$@" >out 2>err </dev/null || true; }
    dr_runbooks run report --run-id first-report
    dr_runbooks run rotate -p mode=fast --run-id paused-rotate
    expect_eq "$(jq -r .status "$(rundir drctl-audit paused-rotate)/state.json")" paused "the run waiting for swap"
    for command in resume status abort approve undo; do
        complete_line "drctl --runbooks rb $command "
        expect_in completions "paused-rotate"
        expect_in completions "first-report"
    done
    expect_completions "drctl --runbooks rb resume pa" "paused-rotate"
    # The steps of the run's own runbook.
    expect_completions "drctl --runbooks rb resume paused-rotate --approve " "prepare swap"
    expect_completions "drctl --runbooks rb approve paused-rotate " "prepare swap"
    expect_completions "drctl --runbooks rb audit show f" "first-report"
}

t_a_broken_runbook_completes_nothing_and_prints_nothing() {
    team_runbooks
    echo 'return runbook { name = "broken", ' > rb/broken.lua
    expect_completions "drctl --runbooks rb run broken -p " ""
    expect_completions "drctl --runbooks rb run broken --approve " ""
    printf 'while true do end\n' > rb/spin.lua
    expect_completions "drctl --runbooks rb run spin -p " ""
    expect_completions "drctl --runbooks rb resume no-such-run --approve " ""
    # The others still complete.
    expect_completions "drctl --runbooks rb run rotate -p m" "mode="
    # An answer never leaves anything behind.
    [ ! -e drctl-audit ] || fail "completion created the audit trail"
}

t_folders_and_files_are_the_shells_own() {
    mkdir -p audit-here
    expect_completions "drctl --audit audit-h" "audit-here"
}

# make install puts the completions where bash-completion and zsh look,
# and make uninstall takes back all it put, and only that.
t_install_and_uninstall_leave_the_prefix_as_it_was() {
    mkdir -p prefix/share/theirs
    local make_args=(-s -C "$ROOT" -o "$BIN_DIR/drctl" -o "$BIN_DIR/neon-local" BIN="$BIN_DIR" PREFIX="$PWD/prefix")
    make "${make_args[@]}" install >make.out 2>&1 || { cat make.out >&2; fail "make install failed"; }
    [ -x prefix/bin/drctl ] || fail "no drctl installed"
    [ -f prefix/share/bash-completion/completions/drctl ] || fail "no bash completion installed"
    [ -f prefix/share/zsh/vendor-completions/_drctl ] || fail "no zsh completion installed"
    COMP_LINE="drctl pl" PATH="$PWD/prefix/bin:$PATH" bash -c '
        source prefix/share/bash-completion/completions/drctl
        COMP_POINT=${#COMP_LINE}; _drctl; printf "%s\n" "${COMPREPLY[@]}"' > completions
    expect_eq "$(cat completions)" plan "the installed completion"
    make "${make_args[@]}" uninstall >make.out 2>&1 || { cat make.out >&2; fail "make uninstall failed"; }
    expect_eq "$(cd prefix && find . | sort | tr '\n' ' ')" ". ./share ./share/theirs " "what is left"
}

for t in t_commands_and_the_options_each_command_takes \
         t_install_and_uninstall_leave_the_prefix_as_it_was \
         t_runbook_names_params_and_steps_come_from_the_runbooks_there_are_now \
         t_run_ids_for_the_commands_that_take_one \
         t_a_broken_runbook_completes_nothing_and_prints_nothing \
         t_folders_and_files_are_the_shells_own; do
    run_test "$t"
done
