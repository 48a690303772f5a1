# File access is confined to the folders a run was given: its params of
# type "path" and its own run folder. Each way out is tried, through
# `files` and through the older `dump` names, in a run and in a plan: it
# must be refused with a message naming the allowed folders, and nothing
# outside may be read, written or removed. Then what is allowed: reading
# and writing inside those folders, and the run folder's life (kept while
# the run can go on, gone once it is completed or aborted).

# The test directory, with its symlinks resolved (as the allowed folders are).
here() { pwd -P; }

# dest (the run's folder, with links that lead out of it), outside (a folder
# the run is not given, with a file in it), a secret beside dest.
make_sandbox_tree() {
    mkdir -p dest outside
    echo given > dest/given.txt
    echo outside-keep > outside/keep.txt
    echo SECRET-BESIDE-DEST > secret.txt
    ln -s /etc dest/etc
    ln -s /etc/passwd dest/pw
    ln -s ../outside dest/out
}

escape() { # ATTACK API [more -p]
    local attack=$1 api=$2
    shift 2
    dr run files-escape -p "attack=$attack" -p "api=$api" -p dest=dest -p "outside=$(here)/outside" \
        -p "cwd_name=$(basename "$(here)")" "$@"
}

# The run's allowed folders, as the message must list them.
expect_allowed_folders_named() {
    expect_in err "Allowed folders: $(here)/dest, $(here)/.drctl/runs/"
}

# Nothing the attacks aim at changed, and nothing secret came out.
expect_nothing_outside_touched() {
    expect_eq "$(cat outside/keep.txt)" outside-keep "the file outside"
    expect_eq "$(ls outside)" keep.txt "what is outside"
    expect_eq "$(cat dest/given.txt)" given "the file in dest"
    [ -L dest/etc ] && [ -L dest/pw ] && [ -L dest/out ] || fail "a link in dest was removed"
    ! grep -rq "root:x:0\|SECRET-BESIDE-DEST" out err drctl-audit 2>/dev/null || fail "a file outside was read"
}

t_an_absolute_path_outside_is_refused() {
    make_sandbox_tree
    for api in files dump; do
        for attack in read-absolute sha256-absolute; do
            rm -rf drctl-audit
            escape "$attack" "$api"
            expect_rc 1
            expect_in err "$api.${attack%-absolute}"
            expect_in err "/etc/passwd lies outside every folder this run may use"
            expect_allowed_folders_named
            expect_nothing_outside_touched
        done
    done
}

t_dotdot_out_of_dest_is_refused() {
    make_sandbox_tree
    for api in files dump; do
        rm -rf drctl-audit
        escape read-dotdot "$api"
        expect_rc 1
        expect_in err "dest/../secret.txt has a '..' component"
        expect_allowed_folders_named
        expect_nothing_outside_touched
    done
}

t_a_symlink_inside_dest_leading_out_is_refused() {
    make_sandbox_tree
    for api in files dump; do
        rm -rf drctl-audit
        escape read-symlink "$api"
        expect_rc 1
        expect_in err "dest/etc/passwd leads through a symlink to /etc/passwd, outside the allowed folders"
        expect_allowed_folders_named
        rm -rf drctl-audit
        escape read-file-symlink "$api"
        expect_rc 1
        expect_in err "dest/pw leads through a symlink to /etc/passwd"
        rm -rf drctl-audit
        escape list-symlink "$api"
        expect_rc 1
        expect_in err "dest/etc leads through a symlink to /etc"
        expect_allowed_folders_named
        expect_nothing_outside_touched
    done
}

t_write_text_outside_is_refused() {
    make_sandbox_tree
    for api in files dump; do
        rm -rf drctl-audit
        escape write-outside "$api"
        expect_rc 1
        expect_in err "$(here)/outside/planted.txt lies outside every folder this run may use"
        expect_allowed_folders_named
        rm -rf drctl-audit
        escape write-symlink "$api"
        expect_rc 1
        expect_in err "dest/out/planted.txt leads through a symlink to $(here)/outside/planted.txt"
        expect_allowed_folders_named
        expect_nothing_outside_touched
    done
}

t_delete_outside_and_of_an_allowed_folder_is_refused() {
    make_sandbox_tree
    for api in files dump; do
        rm -rf drctl-audit
        escape delete-outside "$api"
        expect_rc 1
        expect_in err "$(here)/outside lies outside every folder this run may use"
        expect_allowed_folders_named
        rm -rf drctl-audit
        escape delete-root "$api"
        expect_rc 1
        expect_in err "dest is one of the folders this run may use: deleting it is refused"
        expect_allowed_folders_named
        rm -rf drctl-audit
        escape delete-parent "$api"
        expect_rc 1
        expect_in err "dest/.. has a '..' component"
        expect_nothing_outside_touched
    done
    # Nor a folder that holds an allowed one: with dest the working
    # directory, .drctl holds the run's own folder.
    rm -rf drctl-audit
    mkdir -p .drctl/neon-local
    echo state > .drctl/neon-local/state.json
    dr run files-escape -p attack=delete-holder -p dest=. -p "outside=$(here)/outside" -p holder=.drctl
    expect_rc 1
    expect_in err ".drctl holds $(here)/.drctl/runs/"
    expect_in err "a folder this run may use: deleting it is refused"
    expect_eq "$(cat .drctl/neon-local/state.json 2>/dev/null)" state "what .drctl held"
    expect_nothing_outside_touched
}

t_pg_dump_restore_and_list_outside_are_refused() {
    make_sandbox_tree
    escape pg-dump-elsewhere dump
    expect_rc 1
    expect_in err "dump.pg_dump refused: $(here)/outside/elsewhere lies outside every folder this run may use"
    expect_allowed_folders_named
    [ ! -e outside/elsewhere ] || fail "pg_dump made its folder outside"
    echo not-a-dump > outside/x.dump
    for attack in pg-restore-elsewhere dump-list-elsewhere; do
        rm -rf drctl-audit
        escape "$attack" dump
        expect_rc 1
        expect_in err "$(here)/outside/x.dump lies outside every folder this run may use"
        expect_allowed_folders_named
    done
    rm outside/x.dump
    expect_nothing_outside_touched
}

t_a_relative_path_escaping_the_working_directory_is_refused() {
    make_sandbox_tree
    for api in files dump; do
        rm -rf drctl-audit
        escape read-relative "$api"
        expect_rc 1
        expect_in err "secret.txt lies outside every folder this run may use"
        expect_allowed_folders_named
        rm -rf drctl-audit
        escape read-relative-dotdot "$api"
        expect_rc 1
        expect_in err "../$(basename "$(here)")/secret.txt has a '..' component"
        expect_nothing_outside_touched
    done
}

t_the_same_ways_out_are_refused_in_a_plan() {
    make_sandbox_tree
    local attack api
    for attack in read-absolute read-dotdot read-symlink write-outside write-symlink delete-outside delete-root \
                  pg-dump-elsewhere read-relative; do
        for api in files dump; do
            dr plan files-escape -p "attack=$attack" -p "api=$api" -p dest=dest -p "outside=$(here)/outside" --json
            expect_rc 1
            jq -r '.steps[0].plan_error' out > plan_error
            grep -q "refused: .*Allowed folders: $(here)/dest, $(here)/.drctl/runs/" plan_error \
                || fail "$attack through $api in a plan: $(cat plan_error)"
        done
    done
    rm plan_error
    [ ! -e drctl-audit ] || fail "a plan made an audit directory"
    [ ! -e .drctl ] || fail "a plan made a run folder"
    expect_nothing_outside_touched
}

t_reading_and_writing_inside_dest_and_the_run_folder_work() {
    mkdir dest
    echo given > dest/given.txt
    dr run files-inside -p dest=dest --run-id inside-1
    expect_rc 0
    state=$(rundir drctl-audit "inside-1")/state.json
    expect_eq "$(cat dest/sub/note.txt 2>/dev/null || echo deleted)" deleted "the note, deleted by the run"
    expect_eq "$(jq -r '.steps[0].outputs.given' "$state")" "given" "dest/given.txt read"
    expect_eq "$(jq -r '.steps[0].outputs.listed' "$state")" "given.txt,sub" "dest listed"
    expect_eq "$(jq -r '.steps[0].outputs.sha256' "$state")" "$(printf 'written inside dest' | sha256sum | cut -d' ' -f1)" \
        "the note's sha256"
    expect_eq "$(jq -r '.steps[0].outputs.folder' "$state")" "$(here)/.drctl/runs/inside-1" "the run folder"
    expect_eq "$(jq -r '.steps[1].outputs.scratch' "$state")" scratch "the scratch file, read by the next step"
    [ ! -e .drctl/runs/inside-1 ] || fail "the run folder of a completed run is left: $(ls -la .drctl/runs/inside-1)"
    # In a plan: reads work, the write is refused, the run folder is only named.
    dr plan files-inside -p dest=dest
    expect_rc 0
    expect_in out "run folder $(here)/.drctl/runs/<run-id>; 1 in dest; note given"
    expect_in out "files.write_text is refused in plan mode"
    [ ! -e dest/from-plan.txt ] || fail "a plan wrote into dest"
    [ ! -e ".drctl/runs/<run-id>" ] || fail "a plan made a run folder"
}

t_the_run_folder_stays_for_a_resume_and_goes_when_the_run_is_aborted() {
    mkdir dest
    echo given > dest/given.txt
    dr run files-inside -p dest=dest -p fail=true --run-id kept-1
    expect_rc 1
    expect_in err "failing as asked"
    expect_eq "$(cat .drctl/runs/kept-1/scratch.txt 2>/dev/null)" scratch "the failed run's folder"
    expect_eq "$(stat -c %a .drctl/runs/kept-1)" 700 "the run folder's mode"
    dr_notty abort kept-1
    expect_rc 0
    [ ! -e .drctl/runs/kept-1 ] || fail "the run folder of an aborted run is left"
    expect_eq "$(cat dest/given.txt)" given "dest, after the abort"
}

run_test t_an_absolute_path_outside_is_refused
run_test t_dotdot_out_of_dest_is_refused
run_test t_a_symlink_inside_dest_leading_out_is_refused
run_test t_write_text_outside_is_refused
run_test t_delete_outside_and_of_an_allowed_folder_is_refused
run_test t_pg_dump_restore_and_list_outside_are_refused
run_test t_a_relative_path_escaping_the_working_directory_is_refused
run_test t_the_same_ways_out_are_refused_in_a_plan
run_test t_reading_and_writing_inside_dest_and_the_run_folder_work
run_test t_the_run_folder_stays_for_a_resume_and_goes_when_the_run_is_aborted
