# Progress on long waits: on a terminal one line rewritten in place, in a
# log a line every few seconds, nothing with -q; drctl's own waits on Neon
# operations show what they wait on.

progress_runbook() {
    mkdir -p rb
    cat > rb/waits.lua <<'LUA'
local dr = require "dr"
return runbook { name = "waits", version = "1", summary = "a long wait with progress",
  steps = { { name = "wait", run = function()
      for i = 1, 7 do dr.progress("working " .. i .. " of 7"); dr.sleep(1) end
      dr.progress()
      dr.log("the wait is over")
      return {}
    end } } }
LUA
}

on_pty() { # drctl-args...: the terminal's bytes in pty.out
    set +e
    "$PTYDRIVE" --timeout 60 -- "$DRCTL" --runbooks rb "$@" > pty.out 2>pty.err
    rc=$?
    set -e
}

t_on_a_terminal_one_line_is_rewritten_then_taken_away() {
    progress_runbook
    TERM=xterm on_pty run waits
    expect_rc 0
    grep -aq $'\r\033\[K    working 1 of 7' pty.out || fail "no rewritten progress line: $(cat -v pty.out | head -5)"
    grep -aq 'working 7 of 7' pty.out || fail "the last progress is not shown"
    # The line is taken away before the next message.
    grep -aq $'working 7 of 7\r\033\[K' pty.out || fail "the progress line stays under the next message"
    expect_in pty.out "the wait is over"
}

t_in_a_log_a_line_every_few_seconds_and_none_with_q() {
    progress_runbook
    dr_runbooks() { set +e; "$DRCTL" --runbooks rb "$@" >out 2>err </dev/null; rc=$?; set -e; }
    dr_runbooks run waits
    expect_rc 0
    lines=$(grep -c '^    working' err || true)
    [ "$lines" -ge 1 ] && [ "$lines" -le 2 ] || fail "$lines progress lines in 7 s of log, not 1 or 2: $(cat err)"
    ! grep -q $'\033' err || fail "escape sequences in a log"
    # TERM=dumb cannot erase: a terminal gets the log's lines.
    TERM=dumb on_pty run waits
    expect_rc 0
    ! grep -aq $'\033\[K' pty.out || fail "TERM=dumb got escape sequences"
    grep -aq '    working' pty.out || fail "TERM=dumb got no progress line"
    # -q: none at all, on a terminal too.
    TERM=xterm on_pty -q run waits
    expect_rc 0
    ! grep -aq 'working' pty.out || fail "-q showed progress"
}

t_a_wait_on_neon_says_what_it_waits_on() {
    chmod 755 .
    start_neon_local
    use_api
    make_project
    mkdir -p rb
    cat > rb/pitr.lua <<'LUA'
local dr, neon = require "dr", require "neon"
return runbook { name = "pitr", version = "1", summary = "a branch at an instant",
  params = { project = { type = "string", env = "NEON_PROJECT_ID" } },
  steps = { { name = "branch", run = function(ctx)
      local main = neon.default_branch(ctx.params.project)
      local made = neon.create_branch(ctx.params.project, { name = "past", parent_id = main.id,
                                                             parent_timestamp = dr.format_time(dr.time() - 1) })
      return { id = made.branch.id }
    end } } }
LUA
    sleep 1.5
    NEON_PROJECT_ID=$project TERM=xterm on_pty run pitr
    expect_rc 0
    grep -aq 'waiting on Neon: [a-z_]* of branch br-' pty.out ||
        fail "no progress line on the operation: $(cat -v pty.out | tail -5)"
    stop_neon_local
}

for t in t_on_a_terminal_one_line_is_rewritten_then_taken_away \
         t_in_a_log_a_line_every_few_seconds_and_none_with_q \
         t_a_wait_on_neon_says_what_it_waits_on; do
    run_test "$t"
done
