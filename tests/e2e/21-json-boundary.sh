# The Lua-JSON boundary: outputs and json.encode read tables raw and run no
# metamethod, refuse values too large to save, and numbers come back exactly
# after a resume.

json_state() { # JQ-FILTER: applied to the only run's state.json
    jq -c "$1" "$(rundir drctl-audit "$(run_id)")/state.json"
}

t_output_metamethods_never_run_and_only_raw_content_is_saved() {
    dr run json-hostile -p mode=output
    expect_rc 0
    expect_eq "$(json_state '.steps[0].outputs | length')" 40 "members saved"
    expect_eq "$(json_state '.steps[0].outputs["key-07-" + ("x" * 48)]')" '"value-07"'
    expect_eq "$(json_state '.steps[1].outputs.members')" 40 "members the next step saw"
    expect_eq "$(json_state '.steps[2].outputs.ran')" '""' "metamethods that ran"
    expect_not_in "$(rundir drctl-audit "$(run_id)")/journal.jsonl" injected
}

t_json_encode_runs_no_metamethod() {
    dr run json-hostile -p mode=encode
    expect_rc 0
    expect_eq "$(json_state '.steps[0].outputs.text | fromjson | length')" 40 "members encoded"
    expect_eq "$(json_state '.steps[0].outputs.list')" '"{\"list\":[1,2,3],\"n\":3}"'
    expect_eq "$(json_state '.steps[2].outputs.ran')" '""' "metamethods that ran"
    expect_not_in "$(rundir drctl-audit "$(run_id)")/journal.jsonl" injected
}

# A key with a NUL byte made the old conversion look up another key, which
# ran __index; it freed the other keys while they were still in use.
t_a_key_with_a_nul_byte_is_refused_without_running_index() {
    dr run json-hostile -p mode=nul-output
    expect_rc 1
    expect_in err 'outputs.a\0b: a key with a NUL byte cannot be saved as JSON'
    expect_not_in err AddressSanitizer
    expect_eq "$(json_state '.steps[0].state')" '"failed"'
    expect_eq "$(json_state '.steps[2].outputs.ran')" '""' "metamethods that ran"
    expect_not_in "$(rundir drctl-audit "$(run_id)")/journal.jsonl" injected
    rm -rf drctl-audit
    dr run json-hostile -p mode=nul-encode
    expect_rc 1
    expect_in err 'json.encode: value.a\0b: a key with a NUL byte cannot be saved as JSON'
    expect_not_in err AddressSanitizer
    expect_eq "$(json_state '.steps[2].outputs.ran')" '""' "metamethods that ran"
}

# Peak memory is printed as an observation (time -v), never asserted.
json_peak_rss() {
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "%M" -o rss "$DRCTL" --runbooks "$TEST_RUNBOOKS" "$@" >out 2>err </dev/null
        rc=$?
        echo "peak RSS of drctl $*: $(cat rss) KiB"
    else
        dr "$@"
    fi
}

t_an_output_over_16_mib_is_refused_by_name() {
    set +e
    json_peak_rss run json-big -p mode=string
    set -e
    expect_rc 1
    expect_in err "outputs: larger than 16 MiB as JSON (the limit is passed at outputs.blob); keep big data in files or tables, and return their names"
    expect_eq "$(json_state '.steps[0].state')" '"failed"'
    [ "$(stat -c %s "$(rundir drctl-audit "$(run_id)")/journal.jsonl")" -lt 100000 ] || fail "the journal grew"
    rm -rf drctl-audit
    set +e
    json_peak_rss run json-big -p mode=strings
    set -e
    expect_rc 1
    expect_in err "outputs: larger than 16 MiB as JSON (the limit is passed at outputs.rows[6"
    rm -rf drctl-audit
    set +e
    json_peak_rss run json-big -p mode=numbers
    set -e
    expect_rc 1
    expect_in err "outputs: more than 1048576 values as JSON (the limit is passed at outputs.rows[1048575]); keep big data in files"
}

t_json_encode_over_16_mib_raises() {
    dr run json-big -p mode=encode
    expect_rc 1
    expect_in err "json.encode: value: larger than 16 MiB as JSON (the limit is passed at value.blob)"
    rm -rf drctl-audit
    dr run json-big -p mode=encode-pretty
    expect_rc 1
    expect_in err "json.encode: value: larger than 16 MiB as JSON (the limit is passed at value.a.b.c.d.e.k"
    rm -rf drctl-audit
    dr run json-big -p mode=under
    expect_rc 0
    expect_eq "$(json_state '.steps[0].outputs.encoded')" "$((15 * 1024 * 1024 + 11))" "length of the encoded text"
}

t_json_decode_over_16_mib_is_refused() {
    dr run json-big -p mode=decode
    expect_rc 0
    expect_eq "$(json_state '.steps[0].outputs.refused')" true "refused"
    expect_eq "$(json_state '.steps[0].outputs.message')" \
        "\"json.decode: the text is 17825794 bytes, over the limit of 16 MiB (keep big data in files or tables)\""
    expect_eq "$(json_state '.steps[0].outputs.small')" 3 "a small text still decodes"
}

t_numbers_survive_a_resume_exactly() {
    dr run json-numbers -p dir="$PWD"
    expect_rc 1
    expect_in err "not ready yet"
    id=$(run_id)
    journal=$(rundir drctl-audit "$id")/journal.jsonl
    expect_in "$journal" '"max_safe":9007199254740991,'
    expect_in "$journal" '"two53_float":9007199254740992,'
    expect_in "$journal" '"sum":0.30000000000000004,'
    expect_in "$journal" '"neg_zero":-0,'
    expect_in "$journal" '"list":[0.30000000000000004,9007199254740992,1000000000000000,1e+21,-1.5]'
    expect_in "$(rundir drctl-audit "$id")/state.json" '"decimal":	123.456,'
    expect_in "$(rundir drctl-audit "$id")/report.md" '"max_safe":9007199254740991,'
    touch ready
    dr resume "$id"
    expect_rc 0
    expect_eq "$(run_status "$id")" done
    expect_eq "$(jq -r '.steps[2].outputs.checked' "$(rundir drctl-audit "$id")/state.json")" true
}

for t in t_output_metamethods_never_run_and_only_raw_content_is_saved t_json_encode_runs_no_metamethod \
         t_a_key_with_a_nul_byte_is_refused_without_running_index t_an_output_over_16_mib_is_refused_by_name \
         t_json_encode_over_16_mib_raises t_json_decode_over_16_mib_is_refused t_numbers_survive_a_resume_exactly; do
    run_test "$t"
done
