# neon-local serves a branch database's schema (pg_dump --schema-only, the
# same text for the same schema) and compare_schema (a unified diff from the
# base branch, by default the parent), as Neon's spec says, for a branch
# whose server is stopped too (read from a copy of its data); what it cannot
# answer is refused in Neon's error shape. Helpers from 90-neon-local.sh and
# 89-neon-local-spec.sh; this file loads them without running their tests.

if ! declare -F start_neon_local >/dev/null; then
    source <(sed '/^for t in/,$d' "$ROOT/tests/e2e/90-neon-local.sh")
fi
if ! declare -F spec_expect_error >/dev/null; then
    source <(sed '/^for t in/,$d' "$ROOT/tests/e2e/89-neon-local-spec.sh")
fi

# The diff's changed lines (its +/- lines without the two header lines).
changed_lines() { # FILE
    jq -r .diff "$1" | sed '1,2d' | grep '^[-+]' || true
}

t_the_schema_is_the_databases_dump_and_the_same_each_time() {
    chmod 755 .
    start_neon_local
    ready_project
    main=$(jq -r .branch.id created.json)
    psql "$uri" -Xqc "create table booking (id int primary key, guest text not null, nights int generated always as (1) stored)"
    psql "$uri" -Xqc "create table payment (id int primary key, booking_id int references booking (id), amount numeric)"
    call GET "/projects/$project/branches/$main/schema?db_name=neondb"
    expect_eq "$status" 200 "schema ($(jq -r .message body.json))"
    jq -r .sql body.json > first.sql
    expect_in first.sql "CREATE TABLE public.booking ("
    expect_in first.sql "guest text NOT NULL"
    expect_in first.sql "CREATE TABLE public.payment ("
    # What differs from one dump to the next of the same schema is left out.
    expect_not_in first.sql "Dumped from"
    expect_not_in first.sql "Dumped by"
    expect_not_in first.sql '\restrict'
    expect_not_in first.sql '\unrestrict'
    call GET "/projects/$project/branches/$main/schema?db_name=neondb&format=sql"
    jq -r .sql body.json > second.sql
    cmp -s first.sql second.sql || fail "two reads of the same schema differ: $(diff first.sql second.sql | head -5)"
    # format=json: the spec's BranchSchemaJSON, read from the catalog.
    call GET "/projects/$project/branches/$main/schema?db_name=neondb&format=json"
    expect_eq "$status" 200 "schema as JSON ($(jq -r .message body.json))"
    expect_eq "$(jq -r '[.json.tables[] | .schema + "." + .name] | join(",")' body.json)" \
        public.booking,public.payment "the tables"
    expect_eq "$(jq -c '[.json.tables[0].columns[] | [.name, .type, .nullable, .generated]]' body.json)" \
        '[["id","integer",false,false],["guest","text",false,false],["nights","integer",true,true]]' "booking's columns"
    expect_eq "$(jq -c '[.json.tables[1].constraints[] | [.type, .columns, .referenced_table]]' body.json)" \
        '[["foreign_key",["booking_id"],{"schema":"public","table":"booking","columns":["id"]}],["primary_key",["id"],null]]' \
        "payment's constraints"
    stop_neon_local
}

t_compare_schema_shows_exactly_what_changed_on_a_child() {
    chmod 755 .
    start_neon_local
    ready_project
    main=$(jq -r .branch.id created.json)
    psql "$uri" -Xqc "create table booking (id int primary key)"
    ready_branch '{"branch":{"name":"child"},"endpoints":[{"type":"read_write"}]}'
    child=$branch_id
    # A fresh child has its parent's schema: the default base is the parent.
    call GET "/projects/$project/branches/$child/compare_schema?db_name=neondb"
    expect_eq "$status" 200 "compare with the parent ($(jq -r .message body.json))"
    expect_eq "$(jq -r .diff body.json)" "" "the diff of a fresh child"
    psql "$branch_uri" -Xqc "alter table booking add column note text"
    call GET "/projects/$project/branches/$child/compare_schema?db_name=neondb"
    expect_eq "$status" 200 "compare after ALTER TABLE"
    cp body.json child-vs-main.json
    expect_eq "$(jq -r .diff body.json | sed -n 1,2p | tr '\n' '|')" "--- a/$main/neondb|+++ b/$child/neondb|" \
        "the diff's header: from the parent to the child"
    expect_eq "$(changed_lines body.json | tr '\n' '|')" \
        "-    id integer NOT NULL|+    id integer NOT NULL,|+    note text|" "only the added column changed"
    expect_eq "$(jq -r .diff body.json | grep -c '^@@ ')" 1 "one hunk"
    # The base named, the other way round: the column is what main lacks.
    call GET "/projects/$project/branches/$main/compare_schema?db_name=neondb&base_branch_id=$child"
    expect_eq "$(changed_lines body.json | tr '\n' '|')" \
        "-    id integer NOT NULL,|-    note text|+    id integer NOT NULL|" "main compared with the child"
    # A branch compared with itself: nothing.
    call GET "/projects/$project/branches/$child/compare_schema?db_name=neondb&base_branch_id=$child"
    expect_eq "$status" 200 "compare with itself"
    expect_eq "$(jq -r .diff body.json)" "" "the diff of a branch with itself"
    # The diff is the real one: applied to the parent's schema, it gives the child's.
    if command -v patch >/dev/null; then
        call GET "/projects/$project/branches/$main/schema?db_name=neondb"
        jq -r .sql body.json > main.sql
        call GET "/projects/$project/branches/$child/schema?db_name=neondb"
        jq -r .sql body.json > child.sql
        jq -r .diff child-vs-main.json > change.diff
        patch -s -o patched.sql main.sql change.diff
        cmp -s patched.sql child.sql || fail "the diff applied to main's schema is not the child's"
    fi
    stop_neon_local
}

t_a_schema_at_a_past_point_is_the_one_the_branch_had_then() {
    chmod 755 .
    start_neon_local
    ready_project
    main=$(jq -r .branch.id created.json)
    psql "$uri" -Xqc "create table booking (id int primary key)"
    lsn=$(psql "$uri" -XAtc "select pg_current_wal_lsn()")
    # An instant in whole seconds after the table and before the column.
    sleep 1.1
    at=$(psql "$uri" -XAtc "select to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
    sleep 1.1
    psql "$uri" -Xqc "alter table booking add column note text"
    # What a killed neon-local (pid 1 is never one) left: the next past read removes it.
    mkdir -p nl/scratch/schema-1-left-behind/data
    local base="/projects/$project/branches/$main"
    call GET "$base/schema?db_name=neondb"
    jq -r .sql body.json > head.sql
    expect_in head.sql "note text"
    call GET "$base/schema?db_name=neondb&lsn=$lsn"
    expect_eq "$status" 200 "the schema at an LSN ($(jq -r .message body.json))"
    jq -r .sql body.json > at-lsn.sql
    expect_in at-lsn.sql "CREATE TABLE public.booking ("
    expect_not_in at-lsn.sql "note text"
    call GET "$base/schema?db_name=neondb&timestamp=$at"
    expect_eq "$status" 200 "the schema at an instant ($(jq -r .message body.json))"
    jq -r .sql body.json > at-time.sql
    cmp -s at-lsn.sql at-time.sql || fail "the schema at $lsn and at $at differ: $(diff at-lsn.sql at-time.sql | head)"
    call GET "$base/schema?db_name=neondb&format=json&lsn=$lsn"
    expect_eq "$(jq -c '[.json.tables[0].columns[].name]' body.json)" '["id"]' "the columns then, as JSON"
    # The branch's head compared with its own past: the column is the change.
    call GET "$base/compare_schema?db_name=neondb&base_branch_id=$main&base_timestamp=$at"
    expect_eq "$status" 200 "compare with the branch's past ($(jq -r .message body.json))"
    expect_eq "$(jq -r .diff body.json | sed -n 1p)" "--- a/$main/neondb	(at $at)" "the past side's header"
    expect_eq "$(changed_lines body.json | tr '\n' '|')" \
        "-    id integer NOT NULL|+    id integer NOT NULL,|+    note text|" "the column added since"
    call GET "$base/compare_schema?db_name=neondb&base_branch_id=$main&lsn=$lsn&base_timestamp=$at"
    expect_eq "$(jq -r .diff body.json)" "" "the same past on both sides"
    # Refusals name the request's own parameters.
    call GET "$base/schema?db_name=neondb&timestamp=2999-01-01T00:00:00Z"
    spec_expect_error 400 "a timestamp in the future"
    expect_in body.json "timestamp 2999-01-01T00:00:00Z is in the future"
    expect_not_in body.json parent_
    call GET "$base/schema?db_name=neondb&lsn=yesterday"
    spec_expect_error 400 "an lsn that is none"
    expect_in body.json "lsn must be an LSN"
    call GET "$base/compare_schema?db_name=neondb&base_branch_id=$main&base_lsn=$lsn&base_timestamp=$at"
    spec_expect_error 400 "base_lsn and base_timestamp both"
    expect_in body.json "give base_timestamp or base_lsn, not both"
    call GET "$base/schema?db_name=neondb&timestamp=2000-01-01T00:00:00Z"
    spec_expect_error 400 "a timestamp before the branch's history"
    call GET "$base/schema?db_name=neondb&lsn=0/1"
    spec_expect_error 400 "an lsn before the branch's history"
    expect_in body.json "lsn 0/1 is before the history of branch $main starts"
    # Every scratch server is gone, its folder too, and what was left before.
    expect_eq "$(ls nl/scratch 2>/dev/null | wc -l)" 0 "scratch folders left"
    stop_neon_local
}

t_schema_requests_it_cannot_answer_are_refused_in_neons_shape() {
    chmod 755 .
    start_neon_local
    ready_project
    main=$(jq -r .branch.id created.json)
    local base="/projects/$project/branches/$main"
    call GET "$base/schema"
    spec_expect_error 400 "no db_name"
    expect_in body.json db_name
    call GET "$base/schema?db_name=no_such_db"
    spec_expect_error 404 "an unknown database"
    expect_in body.json no_such_db
    call GET "/projects/$project/branches/br-no-such-branch-1/schema?db_name=neondb"
    spec_expect_error 404 "an unknown branch"
    call GET "/projects/no-such-project-1/branches/$main/schema?db_name=neondb"
    spec_expect_error 404 "an unknown project"
    call GET "$base/schema?db_name=neondb&format=xml"
    spec_expect_error 400 "format=xml"
    expect_in body.json "format must be sql or json"
    # The root branch has no parent to be compared with by default.
    call GET "$base/compare_schema?db_name=neondb"
    spec_expect_error 400 "compare the root branch with no base"
    expect_in body.json "base_branch_id"
    call GET "$base/compare_schema?db_name=neondb&base_branch_id=NOT_AN_ID"
    spec_expect_error 400 "a base_branch_id that is no branch id"
    call GET "$base/compare_schema?db_name=neondb&base_branch_id=br-no-such-branch-1"
    spec_expect_error 404 "an unknown base branch"
    call GET "$base/compare_schema"
    spec_expect_error 400 "compare with no db_name"
    # A branch with no running server is read at its head only: its past
    # needs WAL that a stopped server has not archived.
    ready_branch '{"branch":{"name":"data-only"}}'
    lsn=$(psql "$uri" -XAtc "select pg_current_wal_lsn()")
    call GET "/projects/$project/branches/$branch_id/schema?db_name=neondb&lsn=$lsn"
    spec_expect_error 400 "the past of a branch with no endpoint"
    expect_in body.json "lsn is read from branch $branch_id's running server, and it has none"
    call GET "/projects/$project/branches/$main/compare_schema?db_name=neondb&base_branch_id=$branch_id&base_timestamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    spec_expect_error 400 "compare with the past of a branch with no endpoint"
    expect_in body.json "base_timestamp is read from branch $branch_id's running server"
    # A branch being made: 423, as every other change of it is.
    curl -s -o busy.json -X POST -H "Authorization: Bearer $key" \
         -d '{"branch":{"name":"busy"},"endpoints":[{"type":"read_write"}]}' "$URL/projects/$project/branches"
    busy=$(jq -r .branch.id busy.json)
    call GET "/projects/$project/branches/$busy/schema?db_name=neondb"
    spec_expect_error 423 "the schema of a branch being made"
    call GET "/projects/$project/branches/$busy/compare_schema?db_name=neondb"
    spec_expect_error 423 "compare a branch being made"
    spec_wait busy.json
    call GET "/projects/$project/branches/$busy/schema?db_name=neondb"
    expect_eq "$status" 200 "the schema once it is ready ($(jq -r .message body.json))"
    stop_neon_local
}

# Every file of a scratch server is gone once the answer is given.
expect_no_scratch_left() {
    expect_eq "$(ls nl/scratch 2>/dev/null | wc -l)" 0 "scratch folders left"
}

t_a_data_only_branch_is_read_from_a_copy_of_its_data() {
    chmod 755 .
    start_neon_local
    ready_project
    main=$(jq -r .branch.id created.json)
    psql "$uri" -Xqc "create table booking (id int primary key, guest text not null)"
    # A branch made with no endpoint: its schema is its content's.
    ready_branch '{"branch":{"name":"backup-no-compute"}}'
    backup=$branch_id
    expect_eq "$(jq -r '.endpoints | length' branch.json)" 0 "the backup has no compute"
    call GET "/projects/$project/branches/$backup/schema?db_name=neondb"
    expect_eq "$status" 200 "the schema of a branch with no endpoint ($(jq -r .message body.json))"
    jq -r .sql body.json > backup.sql
    expect_in backup.sql "CREATE TABLE public.booking ("
    expect_in backup.sql "guest text NOT NULL"
    call GET "/projects/$project/branches/$main/schema?db_name=neondb"
    jq -r .sql body.json > main.sql
    cmp -s main.sql backup.sql || fail "the copy's schema is not its parent's: $(diff main.sql backup.sql | head -5)"
    call GET "/projects/$project/branches/$backup/schema?db_name=neondb&format=json"
    expect_eq "$status" 200 "the schema of a branch with no endpoint, as JSON"
    expect_eq "$(jq -r '[.json.tables[] | .schema + "." + .name] | join(",")' body.json)" public.booking "its tables"
    # Compared with its parent (the default base), and as the base of a live branch.
    call GET "/projects/$project/branches/$backup/compare_schema?db_name=neondb"
    expect_eq "$status" 200 "compare a branch with no endpoint with its parent ($(jq -r .message body.json))"
    expect_eq "$(jq -r .diff body.json)" "" "the diff of a fresh data-only branch"
    call GET "/projects/$project/branches/$main/compare_schema?db_name=neondb&base_branch_id=$backup"
    expect_eq "$status" 200 "compare with a data-only base ($(jq -r .message body.json))"
    expect_eq "$(jq -r .diff body.json)" "" "the diff while both are the same"
    psql "$uri" -Xqc "alter table booking add column note text"
    call GET "/projects/$project/branches/$main/compare_schema?db_name=neondb&base_branch_id=$backup"
    expect_eq "$(jq -r .diff body.json | sed -n 1,2p | tr '\n' '|')" "--- a/$backup/neondb|+++ b/$main/neondb|" \
        "the diff's header: from the data-only base to the live branch"
    expect_eq "$(changed_lines body.json | tr '\n' '|')" \
        "-    guest text NOT NULL|+    guest text NOT NULL,|+    note text|" "the column added on the live branch"
    # The backup a restore preserves is data only too: it has the schema from before.
    status=$(curl -s -o restore.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d "{\"source_branch_id\":\"$backup\",\"preserve_under_name\":\"main-before-restore\"}" \
             "$URL/projects/$project/branches/$main/restore")
    expect_eq "$status" 200 "restore main from the backup ($(jq -r .message restore.json))"
    spec_wait restore.json
    call GET "/projects/$project/branches"
    kept=$(jq -r '.branches[] | select(.name == "main-before-restore") | .id' body.json)
    call GET "/projects/$project/branches/$kept/endpoints"
    expect_eq "$(jq -r '.endpoints | length' body.json)" 0 "the preserved branch has no compute"
    call GET "/projects/$project/branches/$kept/schema?db_name=neondb"
    expect_eq "$status" 200 "the schema of the preserved branch ($(jq -r .message body.json))"
    jq -r .sql body.json > kept.sql
    expect_in kept.sql "note text"
    call GET "/projects/$project/branches/$main/compare_schema?db_name=neondb&base_branch_id=$kept"
    expect_eq "$status" 200 "compare the restored branch with the preserved one"
    expect_eq "$(changed_lines body.json | tr '\n' '|')" \
        "-    guest text NOT NULL,|-    note text|+    guest text NOT NULL|" "the column the restore took away"
    # Reading changed nothing: still no endpoint, no server in its folder.
    call GET "/projects/$project/branches/$kept/endpoints"
    expect_eq "$(jq -r '.endpoints | length' body.json)" 0 "the preserved branch's endpoints after the reads"
    [ ! -e "nl/pg/$kept/data/postmaster.pid" ] || fail "a server runs in the preserved branch's own folder"
    [ ! -e "nl/pg/$backup/data/postmaster.pid" ] || fail "a server runs in the backup's own folder"
    expect_no_scratch_left
    stop_neon_local
}

t_a_suspended_endpoints_branch_is_read_and_stays_suspended() {
    chmod 755 .
    start_neon_local
    ready_project
    main=$(jq -r .branch.id created.json)
    endpoint=$(jq -r '.endpoints[0].id' created.json)
    psql "$uri" -Xqc "create table booking (id int primary key)"
    ready_branch '{"branch":{"name":"child"},"endpoints":[{"type":"read_write"}]}'
    child=$branch_id
    call POST "/projects/$project/endpoints/$endpoint/suspend"
    expect_eq "$status" 200 "suspend main's endpoint"
    spec_wait body.json
    call GET "/projects/$project/endpoints/$endpoint"
    expect_eq "$(jq -r .endpoint.current_state body.json)" idle "main's endpoint, suspended"
    jq -S .endpoint body.json > endpoint-before.json
    call GET "/projects/$project/operations"
    ops_before=$(jq '.operations | length' body.json)
    call GET "/projects/$project/branches/$main/schema?db_name=neondb"
    expect_eq "$status" 200 "the schema of a suspended endpoint's branch ($(jq -r .message body.json))"
    jq -r .sql body.json > main.sql
    expect_in main.sql "CREATE TABLE public.booking ("
    call GET "/projects/$project/branches/$child/compare_schema?db_name=neondb"
    expect_eq "$status" 200 "compare with a suspended parent ($(jq -r .message body.json))"
    expect_eq "$(jq -r .diff body.json)" "" "the diff while both are the same"
    psql "$branch_uri" -Xqc "create index booking_id on booking (id)"
    call GET "/projects/$project/branches/$child/compare_schema?db_name=neondb"
    expect_eq "$(changed_lines body.json | grep -c 'CREATE INDEX booking_id')" 1 "the index added on the child"
    # The endpoint is as it was: suspended, unchanged, no operation run, its server down.
    call GET "/projects/$project/endpoints/$endpoint"
    jq -S .endpoint body.json > endpoint-after.json
    expect_eq "$(jq -r .current_state endpoint-after.json)" idle "main's endpoint after the reads"
    cmp -s endpoint-before.json endpoint-after.json ||
        fail "the endpoint changed: $(diff endpoint-before.json endpoint-after.json | head -5)"
    call GET "/projects/$project/operations"
    expect_eq "$(jq '.operations | length' body.json)" "$ops_before" "operations run by the reads"
    ! psql "$uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "the reads woke the suspended endpoint"
    [ ! -e "nl/pg/$main/data/postmaster.pid" ] || fail "a server runs in main's own folder"
    expect_no_scratch_left
    stop_neon_local
}

for t in t_the_schema_is_the_databases_dump_and_the_same_each_time \
         t_compare_schema_shows_exactly_what_changed_on_a_child \
         t_a_schema_at_a_past_point_is_the_one_the_branch_had_then \
         t_schema_requests_it_cannot_answer_are_refused_in_neons_shape \
         t_a_data_only_branch_is_read_from_a_copy_of_its_data \
         t_a_suspended_endpoints_branch_is_read_and_stays_suspended; do
    run_test "$t"
done
