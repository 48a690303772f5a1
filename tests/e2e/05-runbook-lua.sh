# The shared runbook Lua (lua/drctl/common.lua) unit-tested in plain Lua 5.4,
# without drctl: tests/lua/common_test.lua, with stand-ins for the modules.

t_common_lua_helpers_pass_their_unit_tests() {
    command -v lua5.4 >/dev/null || fail "lua5.4 is not installed (make deps installs it)"
    set +e
    lua5.4 "$ROOT/tests/lua/common_test.lua" >out 2>err
    rc=$?
    set -e
    expect_rc 0
    expect_not_in out "FAIL"
    expect_in out " 0 failed"
    # Each helper's tests ran (a test file cut short would pass with fewer).
    for helper in kept_name find format_counts count_delta parents_first settle; do
        expect_in out "ok $helper"
    done
}

for t in t_common_lua_helpers_pass_their_unit_tests; do
    run_test "$t"
done
