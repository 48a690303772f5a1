# Every scenario runbook on a flaky Neon API: neon-local under
# --faults rate=0.3,kinds=429+500+503+reset+slow at one fixed seed per
# runbook. The data is set up and the end state read with no faults in the
# way (neon-local restarted on the same state); only drctl meets them.
# Each reaches its intended end state: the rows (checksums), the branches
# (names, no duplicate), no step started again unless its last attempt
# failed. tests/long/soak.sh runs the same checks over 20 seeds
# (helpers from 90, 96, 98-scenarios and 98-undo).

FAULT_SPEC="rate=0.3,kinds=429+500+503+reset+slow"

# The seeds `make test` uses, one per scenario (FAULT_SEED overrides them all).
declare -A FAULT_SEEDS=(
    [restore]=1 [promote]=2 [reinsert]=3 [corruption]=4 [export]=21 [retention]=6
    [snapshot]=7 [total_loss]=8 [verify_backup]=9 [deleted]=10 [undo]=11
)

seed_of() { # SCENARIO
    echo "${FAULT_SEED:-${FAULT_SEEDS[$1]}}"
}

# neon-local again on the same state and address (a run is resumed, or
# undone, on the API it started on), with faults (SEED) or without.
restart_neon_local() { # extra args...
    local port=${URL#http://127.0.0.1:}
    port=${port%%/*}
    stop_neon_local
    start_neon_local --listen "127.0.0.1:$port" "$@"
    use_api
}

faults_on() { # SEED
    restart_neon_local --faults "$FAULT_SPEC,seed=$1"
}

# The faults met: the answers neon-local failed on purpose, from its log.
faults_injected() { # LOG
    grep -cE 'fault:|-> (429|500|503)$' "$1" || true
}

# The soak passes a seed whose faults missed drctl (FAULTS_REQUIRED=0);
# make test's seeds are chosen to inject some.
faults_off() {
    cp nl.err faulty-nl.err
    [ "${FAULTS_REQUIRED:-1}" = 0 ] || [ "$(faults_injected faulty-nl.err)" -gt 0 ] || fail "no fault was injected"
    restart_neon_local
}

# How many times the faults let a run fail cleanly before it is resumed;
# each failure must name what happened (no silent give-up).
MAX_RESUMES=${MAX_RESUMES:-4}

# Runs a scenario (drctl run or undo) with its approvals, and resumes it
# (the same approvals) each time a fault failed it; sets run, and resumes
# (how many were needed).
through_faults() { # APPROVE|- drctl-args...
    local approve=()
    [ "$1" = - ] || approve=(--approve "$1")
    shift
    sc "$@" "${approve[@]}"
    run=$(newest_run)
    resumes=0
    while [ "$rc" = 1 ] && [ "$resumes" -lt "$MAX_RESUMES" ]; do
        echo "run $run failed under faults (resume $((resumes + 1))): $(grep -m1 'failed' err)" >&2
        cp err "fault-failure-$resumes.err"
        resumes=$((resumes + 1))
        sc resume "$run" "${approve[@]}"
    done
    expect_rc 0
}

# No step was started again blindly: within a drctl invocation a step
# starts again only after a failed attempt (a step-retry), and a step done
# is never started again, except the cleanup steps that run at the end of
# every invocation (always = true). A reset after the request was handled
# must end in a clean failure or a check of what is there, never in the
# same step run again as if nothing had happened.
expect_no_blind_repeat() { # RUN
    local repeated
    repeated=$(jq -s -r '
        reduce .[] as $e ({done: {}, open: {}, bad: []};
            if $e.kind == "step-started" then
                (if ((.done[$e.step] // false) and $e.step != "cleanup") or (.open[$e.step] // false)
                 then .bad += ["\($e.step) (journal line \($e.seq // "?"))"] else . end)
                | .open[$e.step] = true
            elif $e.kind == "step-done" then .done[$e.step] = true | .open[$e.step] = false
            elif ($e.kind | IN("step-failed", "step-retry", "step-interrupted", "step-paused")) then .open[$e.step] = false
            else . end)
        | .bad | join(", ")' "$(rundir drctl-audit "$1")/journal.jsonl")
    [ -z "$repeated" ] || fail "steps started again blindly: $repeated"
    sc audit verify
    expect_rc 0
}

# The content of a table, as one checksum.
table_md5() { # URI TABLE
    count_on "$1" "select count(*) || ':' || md5(coalesce(string_agg(t::text, ',' order by id), '')) from $2 t"
}

tables_md5() { # URI
    local t
    for t in salon staff client booking; do printf '%s=%s ' "$t" "$(table_md5 "$1" "$t")"; done
}

# How many of neon-local's answers were lost after it handled the request
# (the case a client must not repeat blindly), from its log.
handled_then_dropped() {
    grep -c 'then fault: connection dropped' faulty-nl.err || true
}

# Each runbook is a phase: its run under faults (its own seed) on the
# salons project as it stands, then its checks. make test chains the
# phases that can share a project (a project takes ~10 s to make); the
# soak runs each alone (t_faults_<runbook>), seed after seed.

# ---- accidental-deletion, its three strategies, and undo --------------------------

drop_endpoints_of() { # BRANCH-NAME
    local id op
    api GET "/projects/$project/branches" "$key"
    id=$(jq -r --arg n "$1" '.branches[] | select(.name == $n) | .id' body.json)
    api GET "/projects/$project/branches/$id/endpoints" "$key"
    for e in $(jq -r '.endpoints[].id' body.json); do
        curl -s -o deleted.json -X DELETE -H "Authorization: Bearer $key" "$URL/projects/$project/endpoints/$e"
        for op in $(jq -r '.operations[].id' deleted.json); do wait_operation "$project" "$op" "$key"; done
    done
}

# The incident, and the checksums of the tables before and after it.
accidental_setup() {
    before_incident=$(tables_md5 "$uri")
    incident
    after_incident=$(tables_md5 "$uri")
}

# The checksum of a table's rows in before_incident / after_incident.
md5_in() { # CHECKSUMS TABLE
    echo "$1" | sed -E "s/.*$2=[0-9]+:([0-9a-f]+).*/\1/"
}

phase_restore() {
    faults_on "$(seed_of restore)"
    through_faults apply run accidental-deletion -p "incident_time=$incident"
    faults_off
    expect_no_blind_repeat "$run"
    # main as before the incident (the restore point is 1 s before it, and
    # the writes after it are not on main), its state kept once.
    expect_eq "$(tables_md5 "$uri")" "$before_incident" "main's rows after the restore"
    kept="main-before-restore-$(echo "$run" | tr 'A-Z' 'a-z')"
    expect_eq "$(branch_names)" "main,$kept" "branches"
    expect_eq "$(tables_md5 "$(uri_of_branch "$kept")")" "$after_incident" "the preserved branch's rows"
    drop_endpoints_of "$kept" # uri_of_branch gave it one; an undo wants it data-only, as the run left it
    recovered=$run
}

phase_promote() {
    faults_on "$(seed_of promote)"
    through_faults apply run accidental-deletion -p "incident_time=$incident" -p strategy=promote
    faults_off
    expect_no_blind_repeat "$run"
    restore="restore-$(echo "$run" | tr 'A-Z' 'a-z')"
    expect_eq "$(branch_names)" "main,$restore" "branches"
    api GET "/projects/$project/branches" "$key"
    expect_eq "$(jq -r '[.branches[] | select(.default) | .name] | join(",")' body.json)" "$restore" "the default branch"
    expect_eq "$(jq -r --arg n "$restore" '.branches[] | select(.name == $n) | .expires_at // "none"' body.json)" none \
        "the promoted branch's expiry"
    expect_eq "$(tables_md5 "$(uri_of_branch "$restore")")" "$before_incident" "the promoted branch's rows"
    expect_eq "$(tables_md5 "$uri")" "$after_incident" "main's rows (left as it was)"
}

phase_reinsert() {
    faults_on "$(seed_of reinsert)"
    through_faults apply run accidental-deletion -p "incident_time=$incident" -p strategy=reinsert -p tables=booking,client
    faults_off
    expect_no_blind_repeat "$run"
    expect_eq "$(branch_names)" main "branches"
    # Every row of before the incident back, once, and the writes after it kept.
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" "$lost" "salon 3's bookings"
    expect_eq "$(count_on "$uri" 'select count(*) - count(distinct id) from booking')" 0 "bookings twice"
    expect_eq "$(count_on "$uri" "select md5(string_agg(t::text, ',' order by id)) from booking t where id <> 90001")" \
        "$(md5_in "$before_incident" booking)" "bookings as before the incident"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where id = 90001')" 1 "the write after the incident"
    expect_eq "$(count_on "$uri" 'select count(*) from client where id = 9001')" 1 "the client written after it"
    expect_eq "$(jq '[.steps[] | select(.name == "apply") | .outputs.inserted.booking][0]' \
        "$(rundir drctl-audit "$run")/state.json")" "$lost" "rows inserted, as recorded"
}

# The undo of the restore run `recovered`, after a write since it.
phase_undo() {
    psql "$uri" -Xqc "insert into client (id, name, email) values (9002, 'Later', 'later@example.org')"
    after_recovery=$(tables_md5 "$uri")
    faults_on "$(seed_of undo)"
    through_faults undo undo "$recovered"
    faults_off
    expect_no_blind_repeat "$run"
    expect_eq "$(tables_md5 "$uri")" "$after_incident" "main's rows: as before the recovery"
    kept="main-before-undo-$(echo "$run" | tr 'A-Z' 'a-z')"
    preserved="main-before-restore-$(echo "$recovered" | tr 'A-Z' 'a-z')"
    expect_eq "$(branch_names)" "main,$preserved,$kept" "branches"
    # The branch the recovery preserved, counted through an endpoint of the
    # undo's own, is left data-only, even when that endpoint's creation lost
    # its answer and the step ran again.
    api GET "/projects/$project/branches" "$key"
    preserved_id=$(jq -r --arg n "$preserved" '.branches[] | select(.name == $n) | .id' body.json)
    api GET "/projects/$project/branches/$preserved_id/endpoints" "$key"
    expect_eq "$(jq '.endpoints | length' body.json)" 0 "endpoints of $preserved"
    expect_eq "$(tables_md5 "$(uri_of_branch "$kept")")" "$after_recovery" "the state the undo kept"
}

t_faults_accidental_deletion_restore() { salons_project; accidental_setup; phase_restore; stop_neon_local; }
t_faults_accidental_deletion_promote() { salons_project; accidental_setup; phase_promote; stop_neon_local; }
t_faults_accidental_deletion_reinsert() { salons_project; accidental_setup; phase_reinsert; stop_neon_local; }

t_faults_undo() {
    salons_project
    accidental_setup
    sc run accidental-deletion -p "incident_time=$incident" --approve apply
    expect_rc 0
    recovered=$(run_id)
    phase_undo
    stop_neon_local
}

# ---- corruption ---------------------------------------------------------------------

phase_corruption() {
    sleep 2
    good=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sound=$(tables_md5 "$uri")
    sleep 1
    psql "$uri" -Xqc "update client set phone = 'broken'"
    psql "$uri" -Xqc "insert into client (id, name, email) values (9001, 'After', 'after@example.org')"
    corrupted=$(tables_md5 "$uri")
    faults_on "$(seed_of corruption)"
    through_faults apply run corruption -p "last_good=$good" -p salvage=client
    faults_off
    expect_no_blind_repeat "$run"
    kept="main-corrupted-$(echo "$run" | tr 'A-Z' 'a-z')"
    expect_eq "$(branch_names)" "main,$kept" "branches"
    expect_eq "$(count_on "$uri" "select count(*) from client where phone = 'broken'")" 0 "broken rows on main"
    expect_eq "$(count_on "$uri" 'select count(*) from client where id = 9001')" 1 "the client salvaged"
    expect_eq "$(tables_md5 "$(uri_of_branch "$kept")")" "$corrupted" "the kept branch's rows"
    for t in salon staff booking; do
        expect_eq "$(table_md5 "$uri" "$t")" "$(echo "$sound" | grep -o "$t=[^ ]*" | cut -d= -f2)" "$t on main"
    done
    expect_eq "$(count_on "$uri" "select md5(string_agg(t::text, ',' order by id)) from client t where id <> 9001")" \
        "$(md5_in "$sound" client)" "clients as at the last good instant"
}

t_faults_corruption() { salons_project; phase_corruption; stop_neon_local; }

# ---- export, total-loss -------------------------------------------------------------

phase_export() {
    source_rows=$(tables_md5 "$uri")
    faults_on "$(seed_of export)"
    through_faults retention run export -p "dest=$PWD/exports" -p keep=2
    faults_off
    expect_no_blind_repeat "$run"
    expect_eq "$(ls exports | grep -c '\.dump$')" 1 "dumps"
    expect_eq "$(ls exports | grep -c '\.json$')" 1 "manifests"
    manifest=$(ls exports/*.json)
    expect_eq "$(jq -r .sha256 "$manifest")" "$(sha256sum "exports/$(jq -r .dump "$manifest")" | cut -d' ' -f1)" "sha256"
    expect_eq "$(jq -c .rows "$manifest")" '{"booking":2000,"client":400,"salon":5,"staff":20}' "rows in the manifest"
    # The dump holds the rows: restored into a scratch database, the same checksums.
    psql "$uri" -Xqc 'create database scratch'
    scratch=$(echo "$uri" | sed -E 's|/neondb\?|/scratch?|')
    pg_restore --no-owner -d "$scratch" "exports/$(jq -r .dump "$manifest")"
    expect_eq "$(tables_md5 "$scratch")" "$source_rows" "the dump's rows"
    psql "$uri" -Xqc 'drop database scratch'
    expect_eq "$(branch_names)" main "branches"
}

# The newest export at ./exports into a new project.
phase_total_loss() {
    source_rows=$(tables_md5 "$uri")
    faults_on "$(seed_of total_loss)"
    through_faults restore run total-loss -p "source=$PWD/exports" -p new_project=salons-reborn
    faults_off
    expect_no_blind_repeat "$run"
    api GET /projects "$key"
    expect_eq "$(jq -r '[.projects[].name] | sort | join(",")' body.json)" "p,salons-reborn" "projects: one made"
    new_project=$(jq -r '.projects[] | select(.name == "salons-reborn") | .id' body.json)
    curl -s -o conn.json -H "Authorization: Bearer $key" \
        "$URL/projects/$new_project/connection_uri?database_name=neondb&role_name=neondb_owner"
    expect_eq "$(tables_md5 "$(jq -r .uri conn.json)")" "$source_rows" "rows in the new project"
    api GET "/projects/$new_project/branches" "$key"
    expect_eq "$(jq '.branches | length' body.json)" 1 "branches of the new project"
}

t_faults_export() { salons_project; phase_export; stop_neon_local; }

t_faults_total_loss() {
    salons_project
    sc run export -p "dest=$PWD/exports" --approve retention
    expect_rc 0
    phase_total_loss
    stop_neon_local
}

# ---- snapshot, verify-backup, retention ----------------------------------------------

phase_snapshot() {
    sleep 1.5
    source_rows=$(tables_md5 "$uri")
    faults_on "$(seed_of snapshot)"
    through_faults - run snapshot
    expect_no_blind_repeat "$run"
    sleep 1.1 # a name per second
    through_faults - run snapshot -p method=snapshot
    faults_off
    expect_no_blind_repeat "$run"
    name=$(jq -r '.steps[] | select(.name == "name") | .outputs.name' "$(rundir drctl-audit "$run")/state.json")
    api GET "/projects/$project/snapshots" "$key"
    expect_eq "$(jq -r '[.snapshots[].name] | join(",")' body.json)" "$name" "snapshots: one"
    expect_eq "$(branch_names | tr ',' '\n' | grep -c '^backup-')" 1 "backup branches: one"
    backup=$(branch_names | tr ',' '\n' | grep '^backup-')
    expect_eq "$(tables_md5 "$(uri_of_branch "$backup")")" "$source_rows" "the backup branch's rows"
}

# The newest backup (a snapshot after phase_snapshot) checked.
phase_verify_backup() {
    before=$(branch_names)
    faults_on "$(seed_of verify_backup)"
    through_faults - run verify-backup
    faults_off
    expect_no_blind_repeat "$run"
    state="$(rundir drctl-audit "$run")/state.json"
    expect_eq "$(jq -c '.steps[] | select(.name == "check") | .outputs.rows' "$state")" \
        '{"booking":2000,"client":400,"salon":5,"staff":20}' "rows counted"
    # A fault must not pass for a history too short: the comparison was made.
    expect_eq "$(jq -r '.steps[] | select(.name == "check") | .outputs.comparison' "$state")" pass "comparison"
    expect_eq "$(branch_names)" "$before" "branches: the test branches removed, nothing else"
}

# Old backups (those there before, and five more) deleted, the newest two kept.
phase_retention() {
    api GET "/projects/$project/snapshots" "$key"
    expect_eq "$status" 200 "the snapshots listed"
    # (branch_names reads the API too, into the same body.json)
    old=$(jq -r '.snapshots[].name' body.json)
    old=$( (branch_names | tr ',' '\n' | grep '^backup-'; echo "$old") | grep . || true)
    for i in 1 2 3 4 5; do
        sleep 1.1 # created_at is to the second: a strict order
        ready_branch "{\"branch\":{\"name\":\"backup-r$i\"}}"
    done
    ready_branch '{"branch":{"name":"backup-protected"}}'
    curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $key" -d '{"branch":{"protected":true}}' \
        "$URL/projects/$project/branches/$branch_id"
    ready_branch '{"branch":{"name":"nightly-other"}}'
    faults_on "$(seed_of retention)"
    through_faults delete run retention -p keep_days=0 -p keep_last=2
    faults_off
    expect_no_blind_repeat "$run"
    # The newest two (backup-protected, backup-r5) stay; the others go.
    expect_eq "$(branch_names)" "backup-protected,backup-r5,main,nightly-other" "branches left"
    api GET "/projects/$project/snapshots" "$key"
    expect_eq "$(jq '.snapshots | length' body.json)" 0 "snapshots left"
    expect_eq "$(jq -r '.steps[] | select(.name == "delete") | .outputs.deleted | sort | join(",")' \
        "$(rundir drctl-audit "$run")/state.json")" \
        "$(printf '%s\n' $old backup-r1 backup-r2 backup-r3 backup-r4 | sort | paste -sd, -)" "deleted, as recorded"
}

t_faults_snapshot() { salons_project; phase_snapshot; stop_neon_local; }

t_faults_verify_backup() {
    salons_project
    sleep 1.5
    sc run snapshot
    expect_rc 0
    phase_verify_backup
    stop_neon_local
}

t_faults_retention() { salons_project; phase_retention; stop_neon_local; }

# ---- deleted --------------------------------------------------------------------------

phase_deleted() {
    feature_branch
    feature_rows=$(tables_md5 "$feature_uri")
    before=$(branch_names)
    delete_and_wait "/projects/$project/branches/$feature_id"
    faults_on "$(seed_of deleted)"
    through_faults recover run deleted -p name=feature
    faults_off
    expect_no_blind_repeat "$run"
    expect_eq "$(branch_names)" "$before" "branches"
    api GET "/projects/$project/branches/$feature_id" "$key"
    expect_eq "$status" 200 "the branch by its old id"
    expect_eq "$(tables_md5 "$feature_uri")" "$feature_rows" "the branch's rows on its old connection string"
}

t_faults_deleted() { salons_project; phase_deleted; stop_neon_local; }

# Every runbook alone, for the soak (tests/long/soak.sh).
FAULT_TESTS=(t_faults_accidental_deletion_restore t_faults_accidental_deletion_promote
             t_faults_accidental_deletion_reinsert t_faults_corruption t_faults_export t_faults_total_loss
             t_faults_snapshot t_faults_retention t_faults_verify_backup t_faults_deleted t_faults_undo)

# make test: every runbook once, at its seed, the phases chained on shared projects.
t_faults_restore_then_its_undo() { salons_project; accidental_setup; phase_restore; phase_undo; stop_neon_local; }
t_faults_export_then_total_loss() { salons_project; phase_export; phase_total_loss; stop_neon_local; }

t_faults_snapshot_verify_backup_then_retention() {
    salons_project
    phase_snapshot
    phase_verify_backup
    phase_retention
    stop_neon_local
}

for t in t_faults_restore_then_its_undo t_faults_snapshot_verify_backup_then_retention t_faults_accidental_deletion_promote t_faults_accidental_deletion_reinsert \
         t_faults_corruption t_faults_export_then_total_loss t_faults_deleted; do
    run_test "$t"
done
