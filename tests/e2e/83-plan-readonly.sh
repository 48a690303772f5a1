# drctl plan cannot write, whatever its SQL says, and c:query's results
# are bounded (helpers from 90-neon-local.sh and 96-neon-module.sh).

# A project with a table `victim`, a function that writes, one whose SET
# clause tries to make its transaction read-write, and a procedure that
# makes the session's default read-write and commits before it writes.
victim_project() {
    chmod 755 .
    start_neon_local
    use_api
    make_project
    uri=$(jq -r '.connection_uris[0].connection_uri' created.json)
    psql "$uri" -Xq -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE victim (id int);
CREATE FUNCTION insert_victim(v int) RETURNS int LANGUAGE sql AS 'INSERT INTO victim VALUES (v) RETURNING v';
CREATE FUNCTION sneaky_read_write(v int) RETURNS int LANGUAGE plpgsql SET transaction_read_only = off
    AS $$BEGIN INSERT INTO victim VALUES (v); RETURN v; END$$;
CREATE PROCEDURE commit_and_write(v int) LANGUAGE plpgsql
    AS $$BEGIN SET default_transaction_read_only = off; COMMIT; INSERT INTO victim VALUES (v); COMMIT; END$$;
SQL
}

# What the plan's SQL left in the database: rows, tables, prepared transactions.
left_behind() {
    psql "$uri" -XAtc "SELECT (SELECT count(*) FROM victim) || ' rows, ' ||
                              (SELECT count(*) FROM pg_class WHERE relname LIKE 'pw\_%') || ' tables, ' ||
                              (SELECT count(*) FROM pg_prepared_xacts) || ' prepared'"
}

plan_text() { # STEP
    jq -r --arg s "$1" '.steps[] | select(.name == $s) | .plan' out
}

t_plan_sql_cannot_write_whatever_it_says() {
    victim_project
    dr plan plan-writes -p "project=$project" --json
    expect_rc 0 # every statement was tried under pcall: the plan itself ends well
    expect_eq "$(left_behind)" "0 rows, 0 tables, 0 prepared" "what the plan left"
    # The old ways round a read-only default are refused before they are sent.
    for step in set-default session-characteristics start-transaction one-string do-block procedure-commit \
                savepoint prepare-transaction use-the-session; do
        plan_text "$step" | grep -q "plan mode refused the statement" \
            || fail "$step was not refused: $(plan_text "$step")"
    done
    # Several statements in one string: the server takes one at a time.
    plan_text select-first-one-string | grep -q "cannot insert multiple commands into a prepared statement" \
        || fail "several statements ran: $(plan_text select-first-one-string)"
    # Past the first-word filter, PostgreSQL's read-only transaction refuses.
    expect_eq "$(plan_text with-set-config | grep -o 'SQL error 25006' | wc -l)" 3 \
        "writes refused by the read-only transaction ($(plan_text with-set-config))"
    plan_text with-set-config | grep -q "SQL error 25001 .*: transaction read-write mode must be set before any query" \
        || fail "a function's SET clause turned the transaction read-write: $(plan_text with-set-config)"
    plan_text set-config | grep -q "transaction read-write mode must be set before any query" \
        || fail "set_config turned the transaction read-write: $(plan_text set-config)"
    plan_text copy | grep -q 'refused the statement "COPY victim FROM STDIN"' || fail "copy: $(plan_text copy)"
    plan_text copy | grep -q "| 0\$\|ran\$" || fail "the connection after the COPYs: $(plan_text copy)"
    expect_eq "$(plan_text exec-and-tx | grep -o 'c:exec is refused in plan mode' | wc -l)" 2 \
        "c:exec in a plan ($(plan_text exec-and-tx))"
    plan_text exec-and-tx | grep -q "c:tx is refused in plan mode" || fail "c:tx: $(plan_text exec-and-tx)"
    stop_neon_local
}

t_plan_reads_normally() {
    victim_project
    psql "$uri" -Xqc "INSERT INTO victim SELECT g FROM generate_series(1, 3) g"
    dr plan plan-reads -p "project=$project"
    expect_rc 0
    expect_in out "victim has 3 rows (sum 6, 3 by TABLE), read twice: 3; 1 tables"
    stop_neon_local
}

# A runbook reading a big table whole, then within the limits it gives.
limits_runbook() {
    mkdir -p limits
    cat > limits/pg-limits.lua <<'EOF'
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"
local function message_of(e) return type(e) == "table" and tostring(e.message) or tostring(e) end
return runbook {
  name = "pg-limits", version = "1.0.0", summary = "c:query's limits",
  params = { project = { type = "string", required = true }, past_the_cap = { type = "bool", default = false } },
  steps = {
    { name = "read", run = function(ctx)
        local p = ctx.params.project
        local c = pg.connect(neon.connection_uri(p, { branch_id = neon.default_branch(p).id,
                                                      database_name = "neondb", role_name = "neondb_owner" }))
        local ok, whole = pcall(c.query, c, "SELECT * FROM big")
        if ok then dr.fail("the whole table came back: " .. #whole .. " rows") end
        local raised = c:query{ sql = "SELECT id FROM big WHERE id <= 150000", max_rows = 150000 }
        local bytes_ok, bytes = pcall(c.query, c, { sql = "SELECT payload FROM big", max_rows = 10000000,
                                                    max_bytes = 1000000 })
        if bytes_ok then dr.fail("max_bytes let " .. #bytes .. " rows through") end
        local bad_ok, bad = pcall(c.query, c, { sql = "SELECT 1", max_rows = 0 })
        local tx_ok, tx = pcall(c.tx, c, function() c:query("SELECT * FROM big") end)
        if ctx.params.past_the_cap then
          -- Past the memory cap while rows stream in: the query is
          -- cancelled, the connection stays usable.
          local oom_ok, oom = pcall(c.query, c, { sql = "SELECT b.payload, g FROM big b, generate_series(1, 4) g",
                                                  max_rows = 100000000, max_bytes = 100000000000 })
          return { oom = oom_ok and "passed" or message_of(oom), after = c:query("SELECT 1 AS one")[1].one }
        end
        local after = c:query("SELECT count(*) AS n FROM big")[1].n
        local exec = c:exec("SELECT * FROM big")
        return { whole = message_of(whole), raised = #raised, bytes = message_of(bytes),
                 bad = bad_ok and "accepted" or message_of(bad), tx = tx_ok and "passed" or message_of(tx),
                 after = after, exec = exec }
      end },
  },
}
EOF
}

t_query_results_are_bounded() {
    chmod 755 .
    start_neon_local
    use_api
    make_project
    uri=$(jq -r '.connection_uris[0].connection_uri' created.json)
    # 1.5 million rows, some 150 MB of text: far past the limit, and past
    # what would be a small process if libpq kept it all.
    psql "$uri" -Xq -c "CREATE TABLE big (id int, payload text)" \
        -c "INSERT INTO big SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 1500000) g"
    limits_runbook
    set +e
    /usr/bin/time -f %M -o peak-kb "$DRCTL" --runbooks limits run pg-limits -p "project=$project" >out 2>err </dev/null
    rc=$?
    set -e
    peak=$(tail -1 peak-kb)
    echo "peak RSS of drctl: $peak kB" >&2
    expect_rc 0
    state="$(rundir drctl-audit "$(run_id)")/state.json"
    outputs() { jq -r ".steps[0].outputs.$1" "$state"; }
    outputs whole | grep -q "more than 100000 rows, c:query's limit (max_rows)" || fail "whole: $(outputs whole)"
    outputs whole | grep -q "max_rows = N" || fail "the error does not say how to raise it: $(outputs whole)"
    outputs whole | grep -q "pg.copy" || fail "the error does not name pg.copy: $(outputs whole)"
    expect_eq "$(outputs raised)" 150000 "rows with max_rows = 150000"
    outputs bytes | grep -q "more than 1000000 bytes of text, c:query's limit (max_bytes)" \
        || fail "bytes: $(outputs bytes)"
    outputs bad | grep -q "max_rows=}: 0 is not a whole number of at least 1" || fail "max_rows = 0: $(outputs bad)"
    outputs tx | grep -q "(max_rows)" || fail "inside c:tx: $(outputs tx)"
    expect_eq "$(outputs after)" 1500000 "the connection after a cancelled query"
    expect_eq "$(outputs exec)" 1500000 "c:exec counts the rows it drops"
    # (Under AddressSanitizer RSS says nothing: shadow memory and quarantine.)
    if [ -z "${ASAN_OPTIONS:-}" ]; then
        [ "$peak" -lt 150000 ] || fail "drctl's peak RSS was $peak kB: the result was held somewhere"
    fi
    rm -rf drctl-audit
    "$DRCTL" --runbooks limits run pg-limits -p "project=$project" -p past_the_cap=true >out 2>err </dev/null \
        || fail "the run past the memory cap failed"
    state="$(rundir drctl-audit "$(run_id)")/state.json"
    outputs oom | grep -q "not enough memory" || fail "past the memory cap: $(outputs oom)"
    expect_eq "$(outputs after)" 1 "the connection after the memory error"
    stop_neon_local
}

run_test t_plan_sql_cannot_write_whatever_it_says
run_test t_plan_reads_normally
run_test t_query_results_are_bounded
