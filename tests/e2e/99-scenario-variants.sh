# The scenario runbooks' other ways: export to S3 and total loss from it
# into an existing branch, corruption with a known last good instant and
# promotion, verify-backup with a business-query file, a snapshot by the
# Neon snapshot API (helpers from 90, 96, 97 and 98).

t_export_to_s3_then_total_loss_into_an_existing_branch() {
    salons_project
    start_s3rver
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=s3-secret-never-shown-4711 AWS_ENDPOINT_URL=$S3_URL
    sc run export -p dest=s3://exports/weekly --approve retention
    expect_rc 0
    run=$(run_id)
    url=$(jq -r '.steps[] | select(.name == "dump") | .outputs.url' "$(rundir drctl-audit "$run")/state.json")
    case "$url" in s3://exports/weekly/neondb-main-*.dump) ;; *) fail "export url $url" ;; esac
    rm -rf drctl-audit
    # The data damaged on a branch "rescue", then the export restored over it.
    ready_branch '{"branch":{"name":"rescue"},"endpoints":[{"type":"read_write"}]}'
    psql "$branch_uri" -Xqc "delete from booking; delete from staff"
    sc run total-loss -p source=s3://exports/weekly -p target_branch=rescue --approve restore
    expect_rc 0
    expect_eq "$(count_on "$branch_uri" 'select count(*) from booking')" 2000 "bookings back on rescue"
    expect_eq "$(count_on "$branch_uri" 'select count(*) from staff')" 20 "staff back on rescue"
    ! grep -rqF s3-secret-never-shown-4711 drctl-audit out err || fail "the S3 secret leaked"
    kill "$S3_PID"; wait "$S3_PID" 2>/dev/null || true
    stop_neon_local
}

t_corruption_with_a_known_last_good_instant_promoted() {
    salons_project
    sleep 2
    good=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1
    psql "$uri" -Xqc "update client set phone = 'broken'"   # breaks nothing structural, everything semantic
    sc run corruption -p "last_good=$good" -p strategy=promote --approve apply
    expect_rc 0
    run=$(run_id)
    restored="restore-$(echo "$run" | tr 'A-Z' 'a-z')"
    api GET "/projects/$project/branches" "$key"
    expect_eq "$(jq -r '.branches[] | select(.default) | .name' body.json)" "$restored" "the default branch"
    expect_eq "$(count_on "$(uri_of_branch "$restored")" "select count(*) from client where phone = 'broken'")" 0 \
        "the promoted branch is from before the damage"
    stop_neon_local
}

t_verify_backup_runs_a_business_query_file_on_a_snapshot() {
    salons_project
    sleep 1.5
    sc run snapshot -p method=snapshot
    expect_rc 0
    rm -rf drctl-audit
    printf 'select count(*) from booking where price > 0;\nselect name from salon order by id limit 3;\n' > checks.sql
    sc run verify-backup -p "checks=$PWD/checks.sql"
    expect_rc 0
    run=$(run_id)
    expect_eq "$(jq '.steps[] | select(.name == "check") | .outputs.queries' "$(rundir drctl-audit "$run")/state.json")" 2 "queries run"
    expect_in "$(rundir drctl-audit "$run")/report.md" "business query 2 rows"
    rm -rf drctl-audit
    printf 'select * from no_such_table;\n' > bad.sql
    sc run verify-backup -p "checks=$PWD/bad.sql"
    expect_rc 1
    expect_in err "business query 1 failed"
    rm -rf drctl-audit
    sc run verify-backup -p "checks=$PWD/no-such-checks.sql"
    expect_rc 1
    expect_in err "cannot read $PWD/no-such-checks.sql"
    stop_neon_local
}

for t in t_export_to_s3_then_total_loss_into_an_existing_branch t_corruption_with_a_known_last_good_instant_promoted \
         t_verify_backup_runs_a_business_query_file_on_a_snapshot; do
    run_test "$t"
done
