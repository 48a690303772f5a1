# Schema comparisons (neon.compare_schema) in verify-backup and in the
# recovery runbooks' checks, on neon-local (helpers from 90, 96 and
# 98-scenarios).

t_verify_backup_reports_a_backup_whose_schema_differs_from_its_source() {
    salons_project
    sleep 1.5 # the backup's instant must be inside main's history
    # At an LSN, as the snapshot runbook makes its backup branches.
    lsn=$(count_on "$uri" 'select pg_current_wal_lsn()')
    curl -s -o made.json -X POST -H "Authorization: Bearer $key" \
        -d "{\"branch\":{\"name\":\"backup-by-hand\",\"parent_lsn\":\"$lsn\"},\"endpoints\":[{\"type\":\"read_write\"}]}" \
        "$URL/projects/$project/branches"
    for op in $(jq -r '.operations[].id' made.json); do wait_operation "$project" "$op" "$key"; done
    # Same schema: it passes, and says the schema was compared.
    sc run verify-backup -p backup=backup-by-hand
    expect_rc 0
    expect_in "$(rundir drctl-audit "$(run_id)")/report.md" "schema (backup / source at the backup's LSN)"
    rm -rf drctl-audit
    # Someone changed the backup: a column more, same rows.
    psql "$(uri_of_branch backup-by-hand)" -Xqc 'ALTER TABLE client ADD COLUMN note text'
    sc run verify-backup -p backup=backup-by-hand
    expect_rc 1
    expect_in err "the backup's schema differs from the source's at LSN"
    expect_in err "note text"
    stop_neon_local
}

t_a_restore_in_place_checks_the_schema_against_the_restore_point() {
    salons_project
    incident
    sc run accidental-deletion -p "incident_time=$incident" --approve apply
    expect_rc 0
    expect_in "$(rundir drctl-audit "$(run_id)")/report.md" "the same as the restore point's"
    expect_eq "$(jq -r '.steps[3].outputs.schema' "$(rundir drctl-audit "$(run_id)")/state.json")" same "check's schema"
    stop_neon_local
}

for t in t_verify_backup_reports_a_backup_whose_schema_differs_from_its_source \
         t_a_restore_in_place_checks_the_schema_against_the_restore_point; do
    run_test "$t"
done
