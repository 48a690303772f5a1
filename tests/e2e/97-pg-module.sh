# The pg module against real PostgreSQL servers behind neon-local
# (helpers from 90-neon-local.sh and 96-neon-module.sh).

t_pg_types_params_transactions_orphans_and_a_million_row_copy() {
    chmod 755 .
    start_neon_local
    use_api
    make_project
    uri=$(jq -r '.connection_uris[0].connection_uri' created.json)
    psql "$uri" -Xq <<'SQL'
CREATE TABLE salon (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE booking (id int PRIMARY KEY, "salonId" int, at timestamptz);
CREATE TABLE big (id bigint PRIMARY KEY, payload text);
CREATE TABLE salon_copy (id int, name text);
INSERT INTO salon SELECT g, 'salon ' || g FROM generate_series(1, 5) g;
INSERT INTO booking SELECT g, 1 + g % 5, now() FROM generate_series(1, 10) g;
-- Two bookings of salons that do not exist, then the key, not validated.
INSERT INTO booking VALUES (11, 77, now()), (12, 78, now());
ALTER TABLE booking ADD CONSTRAINT booking_salon_fk FOREIGN KEY ("salonId") REFERENCES salon (id) NOT VALID;
SQL
    key=$NEON_API_KEY
    ready_branch '{"branch":{"name":"b"},"endpoints":[{"type":"read_write"}]}'
    psql "$uri" -Xqc "INSERT INTO big SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 1000000) g"
    dr run pg-tour -p "project=$project"
    expect_rc 0
    run=$(run_id)
    outputs="$(rundir drctl-audit "$run")/state.json"
    expect_eq "$(jq '.steps[] | select(.name == "copy") | .outputs.rows' "$outputs")" 1000000 "rows copied"
    # Memory stays flat: the copy of ~100 MB did not grow the process much
    # beyond where a copy of a few rows left it.
    small=$(jq '.steps[] | select(.name == "copy") | .outputs.peak_rss_kb_small' "$outputs")
    big=$(jq '.steps[] | select(.name == "copy") | .outputs.peak_rss_kb' "$outputs")
    bytes=$(jq '.steps[] | select(.name == "copy") | .outputs.bytes' "$outputs")
    echo "peak RSS: $small kB after a small copy, $big kB after $bytes bytes" >&2
    [ "$bytes" -gt 100000000 ] || fail "the copied table is smaller than intended: $bytes bytes"
    # (Under AddressSanitizer freed memory sits in quarantine: RSS says nothing there.)
    if [ -z "${ASAN_OPTIONS:-}" ]; then
        [ $((big - small)) -lt 20000 ] || fail "memory grew by $((big - small)) kB during the copy"
    fi
    # The world: b has the rows, main kept its own.
    b_uri=$(curl -s -H "Authorization: Bearer $key" \
            "$URL/projects/$project/connection_uri?branch_id=$branch_id&database_name=neondb&role_name=neondb_owner" | jq -r .uri)
    expect_eq "$(psql "$b_uri" -XAtc 'select count(*), sum(id) from big')" "1000000|500000500000" "rows on b"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from salon where id >= 900')" 0 "the rolled back row"
    # Journaled: queries with their SQL, the copy with its figures; no password anywhere.
    [ "$(count_events "$run" pg-query)" -gt 20 ] || fail "pg-query events: $(count_events "$run" pg-query)"
    expect_eq "$(journal "$run" | jq -s '[.[] | select(.kind == "pg-copy")] | .[-1].data.rows')" 1000000 "pg-copy event"
    for pw in $(jq -r '.projects[]._roles[]._password' nl/state.json | sort -u); do
        ! grep -rqF "$pw" drctl-audit out err || fail "a role password leaked"
    done
    stop_neon_local
}

run_test t_pg_types_params_transactions_orphans_and_a_million_row_copy

t_pg_connection_declared_close_ends_with_its_scope() {
    chmod 755 .
    start_neon_local
    use_api
    make_project
    uri=$(jq -r '.connection_uris[0].connection_uri' created.json)
    dr run pg-close -p "project=$project"
    expect_rc 0
    pids=$(jq -r '.steps[0].outputs.pids' "$(rundir drctl-audit "$(run_id)")/state.json")
    # The server agrees: neither backend has a session any more.
    expect_eq "$(psql "$uri" -XAtc "select count(*) from pg_stat_activity where pid in ($pids)")" 0 \
        "sessions of the closed connections"
    stop_neon_local
}

run_test t_pg_connection_declared_close_ends_with_its_scope

# Lua's memory nearly full (the 512 MiB cap), then C holds a big result
# while it is made into Lua values: the push fails, and what C held is
# freed all the same (under AddressSanitizer a leak fails the run at exit).
t_big_results_past_the_memory_cap_leave_no_c_memory() {
    mkdir -p cap
    cat > cap/near-cap.lua <<'EOF'
local dr = require "dr"
local json = require "json"
local function message_of(e) return type(e) == "table" and tostring(e.message) or tostring(e) end
-- Fills Lua's memory up to its cap, then calls fn; the memory is given
-- back after. Big pieces first, then small ones, each stage after a
-- collection: no garbage is left that a collection could give back.
local function when_full(fn)
  local hog = {}
  for _, size in ipairs({ 1 << 20, 900 }) do
    collectgarbage()
    pcall(function() while true do hog[#hog + 1] = string.rep("x", size) end end)
  end
  local ok, err = pcall(fn)
  hog = nil
  collectgarbage()
  return ok and "passed" or message_of(err)
end
return runbook {
  name = "near-cap", version = "1.0.0", summary = "big results with Lua's memory full",
  steps = {
    { name = "full", run = function()
        local text = "[" .. string.rep('"' .. string.rep("y", 60) .. '",', 150000) .. '"end"]'
        return {
          exec = when_full(function() return dr.exec({ "head", "-c", "30000000", "/dev/zero" }) end),
          decode = when_full(function() return json.decode(text) end),
          exec_after = #dr.exec({ "head", "-c", "1000", "/dev/zero" }).stdout,
          decode_after = #json.decode(text),
        }
      end },
  },
}
EOF
    set +e
    "$DRCTL" --runbooks cap run near-cap >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 0
    state="$(rundir drctl-audit "$(run_id)")/state.json"
    outputs() { jq -r ".steps[0].outputs.$1" "$state"; }
    outputs exec | grep -q "not enough memory" || fail "dr.exec with Lua's memory full: $(outputs exec)"
    outputs decode | grep -q "not enough memory" || fail "json.decode with Lua's memory full: $(outputs decode)"
    expect_eq "$(outputs exec_after)" 1000 "dr.exec once memory is back"
    expect_eq "$(outputs decode_after)" 150001 "json.decode once memory is back"
}

run_test t_big_results_past_the_memory_cap_leave_no_c_memory

t_dump_round_trip_with_checksum() {
    chmod 755 .
    start_neon_local
    use_api
    make_project
    uri=$(jq -r '.connection_uris[0].connection_uri' created.json)
    psql "$uri" -Xq -c "CREATE TABLE salon (id int PRIMARY KEY, name text)" \
        -c "CREATE TABLE booking (id int PRIMARY KEY, \"salonId\" int REFERENCES salon)" \
        -c "INSERT INTO salon SELECT g, 'salon ' || g FROM generate_series(1, 50) g" \
        -c "INSERT INTO booking SELECT g, 1 + g % 50 FROM generate_series(1, 5000) g"
    mkdir tmp && export TMPDIR=$PWD/tmp
    dr run dump-tour -p "project=$project" -p "dest=$PWD/exports"
    expect_rc 0
    run=$(run_id)
    state="$(rundir drctl-audit "$run")/state.json"
    path=$(jq -r '.steps[0].outputs.path' "$state")
    expect_eq "$path" "$PWD/exports/salons.dump" "dump path"
    expect_eq "$(sha256sum "$path" | cut -d' ' -f1)" "$(jq -r '.steps[0].outputs.sha256' "$state")" "sha256"
    expect_eq "$(jq -r '.steps[0].outputs.bytes' "$state")" "$(stat -c %s "$path")" "bytes"
    [ -d exports/salons-dir ] || fail "no directory dump"
    [ ! -e exports/salons.dump.partial ] || fail "a partial dump was left"
    expect_eq "$(ls tmp | grep -c pgpass || true)" 0 "passfiles left behind"
    expect_eq "$(jq -r '.steps[1].outputs.tables' "$state")" 2 "tables restored"
    # (its progress line: a wait this short says nothing in a log; 26-progress.sh)
    # A pg_dump older than the server is refused before anything is written.
    mkdir old-tools
    printf '#!/bin/sh\necho "pg_dump (PostgreSQL) 14.11"\n' > old-tools/pg_dump
    chmod +x old-tools/pg_dump
    rm -rf drctl-audit
    DRCTL_PG_BINDIR=$PWD/old-tools dr run dump-tour -p "project=$project" -p "dest=$PWD/exports2"
    expect_rc 1
    expect_in err "is version 14, older than the server (PostgreSQL 15)"
    [ -z "$(ls exports2 2>/dev/null)" ] || fail "the refused dump wrote something"
    for pw in $(jq -r '.projects[]._roles[]._password' nl/state.json | sort -u); do
        ! grep -rqF "$pw" drctl-audit out err || fail "a role password leaked"
    done
    stop_neon_local
}

run_test t_dump_round_trip_with_checksum

S3RVER=$ROOT/tests/contract/node_modules/.bin/s3rver

# Starts s3rver (from npm) on 127.0.0.1 with bucket "exports"; sets S3_PID, S3_URL.
start_s3rver() {
    mkdir -p s3data
    "$S3RVER" -d "$PWD/s3data" -a 127.0.0.1 -p 0 --allow-mismatched-signatures --configure-bucket exports \
        > s3.log 2>&1 &
    S3_PID=$!
    for _ in $(seq 1 200); do grep -q 'listening on' s3.log 2>/dev/null && break; sleep 0.05; done
    S3_URL=http://$(grep -o '127.0.0.1:[0-9]*' s3.log | head -1)
    [ "$S3_URL" != http:// ] || fail "s3rver did not start: $(cat s3.log)"
}

t_dump_to_s3_and_back() {
    chmod 755 .
    start_neon_local
    use_api
    make_project
    uri=$(jq -r '.connection_uris[0].connection_uri' created.json)
    psql "$uri" -Xq -c "CREATE TABLE client (id int PRIMARY KEY, name text)" \
        -c "INSERT INTO client SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) FROM generate_series(1, 150000) g"
    start_s3rver
    mkdir work
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=s3-secret-never-shown-4711 AWS_ENDPOINT_URL=$S3_URL
    dr run dump-s3 -p "project=$project" -p dest=s3://exports/weekly -p "work=$PWD/work"
    expect_rc 0
    run=$(run_id)
    bytes=$(jq '.steps[0].outputs.bytes' "$(rundir drctl-audit "$run")/state.json")
    [ "$bytes" -gt 8388608 ] || fail "the dump ($bytes bytes) is too small to test a multipart upload"
    grep -q 'upload: .* MB' err || fail "no upload progress shown"
    ! grep -rqF s3-secret-never-shown-4711 drctl-audit out err || fail "the S3 secret leaked"
    # A missing key is a clear error before anything is dumped.
    rm -rf drctl-audit
    AWS_SECRET_ACCESS_KEY= dr run dump-s3 -p "project=$project" -p dest=s3://exports/other -p "work=$PWD/work"
    expect_rc 1
    expect_in err "S3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    kill "$S3_PID"; wait "$S3_PID" 2>/dev/null || true
    stop_neon_local
}

if [ -x "$S3RVER" ]; then
    run_test t_dump_to_s3_and_back
else
    echo "FAIL t_dump_to_s3_and_back: s3rver is not installed (tests/contract/install.sh)"
    TESTS_FAILED=$((TESTS_FAILED + 1))
    FAILED_NAMES+=(t_dump_to_s3_and_back)
fi
