# Where runs are filed in the trail: runs/YYYY/MM/DD/<run-id>/, and trails
# of the old layout (runs/<run-id>/) read as they are.

gitc() { git -C drctl-audit "$@"; }

# Rewrites the trail's history into the old layout: every runs/Y/M/D/<id>/
# becomes runs/<id>/, commits otherwise the same (drctl's journals never
# name their folder), into a new repository DIR.
old_layout_copy() { # DIR
    git init -q -b main "$1"
    gitc fast-export --all |
        sed -E 's#(M [0-9]+ [^ ]+ )runs/[0-9]{4}/[0-9]{2}/[0-9]{2}/#\1runs/#' |
        git -C "$1" fast-import --quiet
    git -C "$1" checkout -q -f main
}

t_runs_are_filed_under_the_day_their_id_begins_with() {
    dr_notty run hold -p dir="$PWD" --approve promote
    expect_rc 0
    id=$(run_id)
    day=$(echo "$id" | sed -E 's#^([0-9]{4})([0-9]{2})([0-9]{2})T.*#\1/\2/\3#')
    [ -s "drctl-audit/runs/$day/$id/journal.jsonl" ] || fail "run $id is not in runs/$day/: $(find drctl-audit/runs)"
    # An id chosen with today's date is filed under it; one with another
    # day would be filed out of its time, and is refused.
    dated="$(date -u +%Y%m%d)T235959Z-chosen"
    dr_notty run hold -p dir="$PWD" --approve promote --run-id "$dated"
    expect_rc 0
    [ -s "drctl-audit/runs/$(date -u +%Y/%m/%d)/$dated/state.json" ] || fail "not filed under its id's day"
    dr_notty run hold -p dir="$PWD" --approve promote --run-id 19991231T235959Z-old
    expect_rc 2
    expect_in err "--run-id '19991231T235959Z-old' begins with the date 1999/12/31, not today's (UTC)"
    [ ! -e drctl-audit/runs/1999 ] || fail "a refused run made a folder"
    dr_notty run hold -p dir="$PWD" --approve promote --run-id mine
    expect_rc 0
    [ -s "drctl-audit/runs/$(date -u +%Y/%m/%d)/mine/report.md" ] || fail "an undated id is not filed under today"
    # The top of runs/ holds years only, in git as on disk.
    expect_eq "$(gitc ls-tree --name-only HEAD runs/ | tr '\n' ,)" "runs/$(date -u +%Y)," "the top of runs/"
    # An id already used is refused, wherever it was filed.
    dr_notty run hold -p dir="$PWD" --approve promote --run-id mine
    expect_rc 2
    expect_in err "run mine already exists"
    dr_notty status --json
    expect_rc 0
    expect_eq "$(jq -r '[.[].run_id] | sort | join(",")' out)" "$(printf '%s\n' "$dated" "$id" mine |
              sort | paste -sd, -)" "the runs status lists"
    dr_notty audit show mine
    expect_rc 0
    sc audit verify
    expect_rc 0
    expect_in out "verified 3 runs"
    expect_eq "$(gitc status --porcelain)" "" "git status"
}

t_an_undated_id_filed_on_another_day_is_found_and_resumed() {
    dr_notty run hold -p dir="$PWD" --run-id nightly
    expect_rc 3
    # The run was begun on an earlier day: its folder moved there, in git
    # too, the history rewritten as if it had always been there.
    today=$(date -u +%Y/%m/%d)
    gitc fast-export --all | sed -E "s#(M [0-9]+ [^ ]+ )runs/$today/#\1runs/2020/02/29/#" > export
    rm -rf drctl-audit.new && git init -q -b main drctl-audit.new
    git -C drctl-audit.new fast-import --quiet < export
    git -C drctl-audit.new checkout -q -f main
    rm -rf drctl-audit && mv drctl-audit.new drctl-audit
    [ -d drctl-audit/runs/2020/02/29/nightly ] || fail "the test did not move the run"
    dr_notty resume nightly --approve promote
    expect_rc 0
    expect_eq "$(jq -r .status drctl-audit/runs/2020/02/29/nightly/state.json)" done "the run, where it was filed"
    [ ! -e "drctl-audit/runs/$today/nightly" ] || fail "the resume made a second folder"
    sc audit verify
    expect_rc 0
    expect_eq "$(gitc status --porcelain)" "" "git status"
}

t_a_trail_of_the_old_layout_is_read_resumed_and_grows_in_dated_folders() {
    dr_notty run hold -p dir="$PWD" --approve promote --run-id finished
    expect_rc 0
    dr_notty run hold -p dir="$PWD" --run-id waiting
    expect_rc 3
    old_layout_copy old
    [ -s old/runs/finished/journal.jsonl ] && [ -s old/runs/waiting/state.json ] ||
        fail "the test did not make an old trail: $(find old/runs)"
    sc --audit old audit verify
    expect_rc 0
    expect_in out "verified 2 runs"
    dr_notty --audit old status --json
    expect_eq "$(jq -r 'map(.run_id + "=" + .status) | sort | join(",")' out)" "finished=done,waiting=paused" \
        "status on the old trail"
    dr_notty --audit old resume waiting --approve promote
    expect_rc 0
    expect_eq "$(jq -r .status old/runs/waiting/state.json)" done "the old run, resumed in its folder"
    [ -s old/runs/waiting/report.md ] || fail "no report in the old folder"
    expect_eq "$(find old/runs -mindepth 4 -name waiting | wc -l)" 0 "dated copies of the old run"
    dr_notty --audit old run hold -p dir="$PWD" --approve promote --run-id added
    expect_rc 0
    [ -s "old/runs/$(date -u +%Y/%m/%d)/added/state.json" ] || fail "the new run is not in a dated folder"
    sc --audit old audit verify
    expect_rc 0
    expect_in out "verified 3 runs"
    dr_notty --audit old audit log
    expect_rc 0
    expect_in out waiting
    expect_in out added
    expect_eq "$(git -C old status --porcelain)" "" "git status of the old trail"
}

t_verify_names_a_run_filed_under_another_day_than_its_id() {
    dr_notty run hold -p dir="$PWD" --approve promote
    expect_rc 0
    id=$(run_id)
    day=$(echo "$id" | sed -E 's#^([0-9]{4})([0-9]{2})([0-9]{2})T.*#\1/\2/\3#')
    gitc fast-export --all | sed -E "s#(M [0-9]+ [^ ]+ )runs/$day/#\1runs/2020/01/02/#" > export
    git init -q -b main moved
    git -C moved fast-import --quiet < export
    git -C moved checkout -q -f main
    sc --audit moved audit verify
    expect_rc 1
    expect_in out "runs/2020/01/02/$id"
    expect_in out "filed under another day than its id's (runs/$day/$id)"
}

t_a_stray_folder_in_runs_is_named_by_verify_and_refused_by_a_run() {
    dr_notty run hold -p dir="$PWD" --approve promote --run-id r1
    expect_rc 0
    mkdir -p drctl-audit/runs/2026/13
    echo '{}' > drctl-audit/runs/2026/13/notes.json
    dr_notty run hold -p dir="$PWD" --approve promote --run-id r2
    expect_rc 2
    expect_in err "runs/2026/13/notes.json"
    [ ! -e "$(rundir r2)" ] || fail "a run was made"
    rm -r drctl-audit/runs/2026/13
    dr_notty run hold -p dir="$PWD" --approve promote --run-id r2
    expect_rc 0
}

run_test t_runs_are_filed_under_the_day_their_id_begins_with
run_test t_an_undated_id_filed_on_another_day_is_found_and_resumed
run_test t_a_trail_of_the_old_layout_is_read_resumed_and_grows_in_dated_folders
run_test t_verify_names_a_run_filed_under_another_day_than_its_id
run_test t_a_stray_folder_in_runs_is_named_by_verify_and_refused_by_a_run
