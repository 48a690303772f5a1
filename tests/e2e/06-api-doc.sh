# docs/runbooks.md documents every name the engine exports to runbooks,
# and only those: tests/tools/api_names.py reads both and compares them.
# The other tests here change a scratch copy of the document or of the
# code, and check that each difference is reported by name.

API_NAMES=$ROOT/tests/tools/api_names.py

api_check() { # [ARGS...]: the check, output in out and err, exit code in rc
    set +e
    python3 "$API_NAMES" "$@" >out 2>err
    rc=$?
    set -e
}

# A copy of the sources and the document, in ./tree, to change freely.
api_doc_copy_tree() {
    mkdir tree
    local entry
    for entry in "$ROOT"/*; do
        case "$(basename "$entry")" in
        tests | bench | demo | build* | bin*) ;;
        *) cp -r "$entry" tree/ ;;
        esac
    done
}

# Replaces text in every C file of the scratch tree; fails when no file had it.
api_doc_edit_c() { # SED-EXPRESSION TEXT-THAT-MUST-BE-THERE
    local files
    files=$(grep -rlF --include='*.c' -e "$2" tree) || fail "no C file of the copy contains: $2"
    # shellcheck disable=SC2086
    sed -i "$1" $files
}

t_api_doc_names_every_export_and_nothing_else() {
    command -v python3 >/dev/null || fail "python3 is needed (.ci/deps.sh installs it)"
    api_check
    expect_rc 0
    expect_in out "docs/runbooks.md documents the"
}

t_api_doc_a_renamed_entry_is_reported_both_ways() {
    cp "$ROOT/docs/runbooks.md" doc.md
    grep -q '^### `dump.read_text(' doc.md || fail "the document has no dump.read_text heading to rename"
    sed -i 's/^### `dump.read_text(/### `dump.read_txt(/' doc.md
    api_check --doc "$PWD/doc.md"
    expect_rc 1
    expect_in out "dump.read_text is exported"
    expect_in out "not documented"
    expect_in out "dump.read_txt is documented"
    expect_in out "the code exports no such name"
}

t_api_doc_a_field_table_row_is_checked() {
    cp "$ROOT/docs/runbooks.md" doc.md
    sed -i 's/^| `step.idempotent` |/| `step.idem_potent` |/' doc.md
    api_check --doc "$PWD/doc.md"
    expect_rc 1
    expect_in out "step.idempotent is exported"
    expect_in out "step.idem_potent is documented"
}

t_api_doc_a_new_c_function_is_reported() {
    api_doc_copy_tree
    api_doc_edit_c 's/{ *"confirm", *\([A-Za-z_]*\) *}/{ "confirm", \1 }, { "confirm_twice", \1 }/' '"confirm", '
    api_check --root "$PWD/tree"
    expect_rc 1
    expect_in out "dr.confirm_twice is exported"
    expect_in out "not documented"
}

t_api_doc_methods_and_metamethods_of_connections_are_checked() {
    api_doc_copy_tree
    api_doc_edit_c 's/{ *"close", *\([A-Za-z_]*\) *}/{ "close", \1 }, { "ping", \1 }/' '"close", '
    api_doc_edit_c '/lua_setfield(L, -2, "__close");/d' '"__close"'
    api_check --root "$PWD/tree"
    expect_rc 1
    expect_in out "connection:ping is exported"
    expect_in out "connection.__close is documented"
}

t_api_doc_a_new_lua_function_of_a_module_is_reported() {
    api_doc_copy_tree
    local neon_lua
    neon_lua=$(grep -rl '^local neon = \.\.\.' tree --include='*.lua' | grep -v '^tree/lua/' | head -1)
    [ -n "$neon_lua" ] || fail "the copy has no Lua part of the neon module"
    sed -i 's/^return neon$/function neon.frobnicate() end\nreturn neon/' "$neon_lua"
    api_check --root "$PWD/tree"
    expect_rc 1
    expect_in out "neon.frobnicate is exported"
}

t_api_doc_an_option_missing_from_a_section_is_reported() {
    api_doc_copy_tree
    api_doc_edit_c 's/^\( *\)lua_getfield(L, 1, "check");/\1lua_getfield(L, 1, "compress");\n\1lua_pop(L, 1);\n&/' \
        'lua_getfield(L, 1, "check");'
    api_check --root "$PWD/tree"
    expect_rc 1
    expect_in out "dump.pg_dump takes or returns the field 'compress'"
}

for t in t_api_doc_names_every_export_and_nothing_else t_api_doc_a_renamed_entry_is_reported_both_ways \
         t_api_doc_a_field_table_row_is_checked t_api_doc_a_new_c_function_is_reported \
         t_api_doc_methods_and_metamethods_of_connections_are_checked \
         t_api_doc_a_new_lua_function_of_a_module_is_reported t_api_doc_an_option_missing_from_a_section_is_reported; do
    run_test "$t"
done
