# A branch's PostgreSQL server killed (SIGKILL, the whole server) in the
# middle of a step: a pg.copy, a reinsertion, a pg_restore. The step fails
# naming the server, nothing is half-committed, and once the server is back
# (neon-local started again starts it) the resume ends as intended
# (helpers from 90, 96, 98-scenarios and 98-scenario-faults).
#
# The kill must land inside the operation every time: a session of the test
# holds a lock the operation waits for (a copy or an insertion can be over
# in a tenth of a second), or, for pg_restore, the test waits on the
# server's own progress view until the data is streaming.

# SIGKILL of a branch's whole server, as a crash would: the postmaster is
# frozen first (it starts nothing more), then it and every process it
# started are killed, by pid.
kill_branch_server() { # BRANCH_ID
    local pm children
    pm=$(head -1 "nl/pg/$1/data/postmaster.pid")
    kill -STOP "$pm"
    children=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
    # shellcheck disable=SC2086 # a list of pids
    kill -9 $children "$pm"
    echo "killed the server of $1 (postmaster $pm, children $children)" >&2
}

# The host of a connection string (each endpoint has its own loopback address).
host_of() { # URI
    echo "$1" | sed -E 's|^[^@]*@([^/:?]+).*|\1|'
}

# Polls SQL on URI (up to 30 s) until it answers t.
wait_true() { # URI SQL WHAT
    for _ in $(seq 1 600); do
        [ "$(psql "$1" -XAtc "$2" 2>/dev/null)" = t ] && return 0
        sleep 0.05
    done
    fail "timed out waiting for $3"
}

# A session that holds a lock on a table until its server dies (or it is
# killed); returns once the lock is granted. Sets locker (its pid).
hold_lock() { # URI TABLE MODE
    psql "$1" -Xq -c "begin" -c "lock table $2 in $3 mode" -c "select pg_sleep(600)" >/dev/null 2>&1 &
    locker=$!
    wait_true "$1" "select exists (select 1 from pg_locks l join pg_class c on c.oid = l.relation
                    where c.relname = '$2' and l.mode = '$(echo "$3" | sed -E 's/(^| )(.)/\U\2/g')Lock' and l.granted)" \
        "the lock on $2"
}

# drctl in the background, its output in out and err; sets drctl_pid.
drctl_in_background() { # drctl-args...
    "$DRCTL" --runbooks "$SCENARIOS" "$@" >out 2>err </dev/null &
    drctl_pid=$!
}

# Waits for drctl_pid; sets rc.
drctl_exit() {
    set +e
    wait "$drctl_pid"
    rc=$?
    set -e
}

# An incident over two tables: a quarter of the clients, with their
# bookings, deleted. Sets incident, before (their checksums before it),
# after (after it).
two_table_incident() {
    # (an index for the deletion's foreign key checks: without it each
    # client deleted scans every booking)
    psql "$uri" -Xqc 'create index on booking ("clientId")'
    before="$(table_md5 "$uri" client) $(table_md5 "$uri" booking)"
    sleep 1.5
    incident=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    psql "$uri" -Xq -c 'delete from booking where "clientId" % 4 = 0' -c 'delete from client where id % 4 = 0'
    after="$(table_md5 "$uri" client) $(table_md5 "$uri" booking)"
    sleep 1.5
}

# A reinsertion run paused at its confirmation (verify done); sets run,
# point_id and point_uri (the branch at the restore point, the copies' source).
paused_reinsertion() {
    sc run accidental-deletion -p "incident_time=$incident" -p strategy=reinsert -p tables=booking,client
    expect_rc 3
    run=$(run_id)
    point_id=$(jq -r '.steps[] | select(.name == "restore-point") | .outputs.point_id' "$(rundir drctl-audit "$run")/state.json")
    point_uri=$(uri_of_branch "check-$(echo "$run" | tr 'A-Z' 'a-z')")
}

# Returns once the server at URI runs a COPY into TABLE that has taken rows,
# polled from inside the server (a shell loop could miss a copy of a
# second; found by its statement: a table made in an open transaction has
# no name for other sessions).
wait_copy_into() { # URI TABLE
    psql "$1" -Xq -c "do \$\$ begin
        for i in 1..12000 loop
          perform pg_stat_clear_snapshot();
          exit when exists (select 1 from pg_stat_progress_copy p join pg_stat_activity a using (pid)
                            where a.query ilike 'COPY %$2% FROM STDIN%' and p.tuples_processed > 0);
          perform pg_sleep(0.005);
        end loop; end \$\$"
}

# Then freezes drctl: the copy stands half-way until drctl is let go.
freeze_drctl_mid_copy_into() { # URI TABLE
    wait_copy_into "$1" "$2"
    kill -STOP "$drctl_pid"
    [ "$(count_on "$1" "select count(*) from pg_stat_progress_copy p join pg_stat_activity a using (pid)
                        where a.query ilike 'COPY %$2% FROM STDIN%' and p.tuples_processed > 0")" = 1 ] ||
        fail "no copy into $2 under way when drctl was frozen"
}

# The journal's last failed pg.copy: bytes moved before it stopped.
failed_copy_bytes() { # RUN
    journal "$1" | jq -s '[.[] | select(.kind == "pg-copy" and .data.error)] | last | .data.bytes'
}

# The apply's error, after drctl_exit: exit 1, naming the server.
expect_apply_failed_on() { # URI TEXT
    expect_rc 1
    expect_in err "step 'apply' failed: $2"
    expect_in err "on neondb_owner@$(host_of "$1")" # the server that died, named
}

# Killed three times in its reinsertion (strategy reinsert, booking and
# client: the missing clients go in first, then the bookings, in one
# transaction), the run ends as intended once resumed with the server back.
t_a_reinsertion_killed_in_its_copies_and_insert_commits_nothing_and_resumes() {
    salons_project 50
    two_table_incident
    paused_reinsertion
    # 1. The source dies while the copy of the bookings from it waits on a
    #    lock: the copy did not start, the clients inserted are rolled back.
    hold_lock "$point_uri" booking "access exclusive"
    drctl_in_background resume "$run" --approve apply
    wait_true "$point_uri" "select exists (select 1 from pg_stat_activity where query like 'COPY %booking% TO STDOUT%'
                            and wait_event_type = 'Lock')" "the copy from the restore point"
    kill_branch_server "$point_id"
    drctl_exit
    wait "$locker" 2>/dev/null || true
    expect_apply_failed_on "$point_uri" "pg.copy booking -> drctl_copy_booking did not start"
    expect_in err "(nothing was committed on the target)"
    expect_eq "$(table_md5 "$uri" client) $(table_md5 "$uri" booking)" "$after" "main's rows after a dead source"
    expect_eq "$(run_status "$run")" failed "the run's status"
    restart_neon_local
    # 2. main dies in the middle of the copy into it (drctl frozen with rows
    #    in: the copy stands half-way when the server goes).
    drctl_in_background resume "$run" --approve apply
    freeze_drctl_mid_copy_into "$uri" drctl_copy_booking
    kill_branch_server "$(jq -r .branch.id created.json)"
    kill -CONT "$drctl_pid"
    drctl_exit
    expect_apply_failed_on "$uri" "pg.copy booking -> drctl_copy_booking stopped after"
    [ "$(failed_copy_bytes "$run")" -gt 0 ] || fail "no row had moved when main died"
    restart_neon_local
    expect_eq "$(table_md5 "$uri" client) $(table_md5 "$uri" booking)" "$after" "main's rows after a copy killed"
    # 3. main dies while the insertion of the bookings waits on a lock.
    hold_lock "$uri" booking share
    drctl_in_background resume "$run" --approve apply
    wait_true "$uri" "select exists (select 1 from pg_stat_activity where query like 'WITH ins AS (INSERT INTO %booking%'
                      and wait_event_type = 'Lock')" "the insertion of the bookings"
    kill_branch_server "$(jq -r .branch.id created.json)"
    drctl_exit
    wait "$locker" 2>/dev/null || true
    expect_apply_failed_on "$uri" "SQL error"
    ! psql "$uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "main's server still answers"
    # Back (crash recovery): not one of the clients the transaction inserted.
    restart_neon_local
    expect_eq "$(table_md5 "$uri" client) $(table_md5 "$uri" booking)" "$after" "main's rows after an insertion killed"
    # The resume ends as intended: every row back once, the throwaway branch
    # gone, the apply step started again only after each failure.
    sc resume "$run" --approve apply
    expect_rc 0
    expect_eq "$(table_md5 "$uri" client) $(table_md5 "$uri" booking)" "$before" "clients and bookings after the resume"
    expect_eq "$(branch_names)" main "branches"
    expect_eq "$(count_events "$run" step-started apply)" 4 "apply started (three times killed, once resumed)"
    expect_no_blind_repeat "$run"
    stop_neon_local
}

t_a_restore_whose_server_is_killed_in_pg_restore_fails_cleanly_and_resumes() {
    salons_project 50
    source_rows=$(tables_md5 "$uri")
    sc run export -p "dest=$PWD/exports" --approve retention
    expect_rc 0
    rm -rf drctl-audit
    # Paused at the restore's confirmation: the new project is made, empty.
    sc run total-loss -p "source=$PWD/exports" -p new_project=reborn -p jobs=2
    expect_rc 3
    run=$(run_id)
    new_project=$(jq -r '.steps[] | select(.name == "target") | .outputs.project' "$(rundir drctl-audit "$run")/state.json")
    new_branch=$(jq -r '.steps[] | select(.name == "target") | .outputs.branch' "$(rundir drctl-audit "$run")/state.json")
    api GET "/projects/$new_project/connection_uri?database_name=neondb&role_name=neondb_owner" "$key"
    new_uri=$(jq -r .uri body.json)
    drctl_in_background resume "$run" --approve restore
    # Killed while pg_restore streams the bookings in (the server's own view
    # of the COPY, polled from inside it).
    wait_copy_into "$new_uri" booking
    kill_branch_server "$new_branch"
    drctl_exit
    expect_rc 1
    expect_in err "step 'restore' failed: "
    expect_in err "pg_restore on neondb_owner@$(host_of "$new_uri")" # the server that died, named
    restart_neon_local
    # Nothing half-loaded: the table being copied has no row.
    expect_eq "$(count_on "$new_uri" 'select count(*) from booking')" 0 "bookings after the killed restore"
    sc resume "$run" --approve restore
    expect_rc 0
    expect_eq "$(tables_md5 "$new_uri")" "$source_rows" "the rows in the new project"
    api GET /projects "$key"
    expect_eq "$(jq -r '[.projects[].name] | sort | join(",")' body.json)" "p,reborn" "projects"
    expect_no_blind_repeat "$run"
    stop_neon_local
}

for t in t_a_reinsertion_killed_in_its_copies_and_insert_commits_nothing_and_resumes \
         t_a_restore_whose_server_is_killed_in_pg_restore_fails_cleanly_and_resumes; do
    run_test "$t"
done
