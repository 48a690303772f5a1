# drctl docs: the runbooks' documentation as Markdown, computed offline.

t_docs_of_a_shipped_runbook_show_every_step_and_what_is_lost() {
    env -u NEON_API_KEY -u NEON_PROJECT_ID -u DRCTL_LOCAL "$DRCTL" --runbooks "$SCENARIOS" docs accidental-deletion \
        >out 2>err && rc=0 || rc=$?
    expect_rc 0
    blob=$(git hash-object "$SCENARIOS/accidental-deletion.lua")
    expect_eq "$(head -1 out)" "<!-- drctl-docs runbook=accidental-deletion version=1.0.0 blob=$blob -->"
    expect_in out "# accidental-deletion"
    expect_in out "(blob \`$blob\`)"
    for step in restore-point verify "apply (destructive)" check cleanup; do
        expect_in out ". $step"
    done
    expect_eq "$(grep -c '^### ' out)" 5
    # the params, with their types, defaults, env and enum values
    expect_in out "| \`strategy\` | enum: \`restore\`, \`promote\`, \`reinsert\` | \`restore\` | no |"
    expect_in out "| \`project\` | string |  | yes | \`NEON_PROJECT_ID\` |"
    # a required timestamp gets a valid example value, and says so
    expect_in out "\`incident_time\` = \`2026-01-01T00:00:00Z\` (example value)"
    expect_in out "Plan: create branch check-\\<run-id\\> at 2025-12-31T23:59:59Z"
    # the destructive step: its plan says what is lost, its confirmation is shown
    expect_in out "- **Destructive**: asks for a typed confirmation"
    expect_in out "Lost from it: every row written after that instant"
    expect_in out "- Confirmation (what will be lost): the branch \\<restore-point.branch\\_name\\> goes back to"
    expect_in out "  To go on, the operator types \`<restore-point.branch_name>\`."
    expect_in out "A value in angle brackets stands for what an earlier step finds"
    expect_in out "- Always: runs even after a failure"
    expect_in out "- Timeout: 7200 s."
}

t_a_confirmation_computed_from_params_is_shown_with_its_challenge() {
    dr docs hold
    expect_rc 0
    expect_in out "### 3. promote (destructive)"
    expect_in out "- Confirmation (what will be lost): make the copy the new main; writes after the snapshot are lost"
    expect_in out "  To go on, the operator types \`main\`."
    expect_in out "\`dir\` = \`<dir>\` (example value)"
    expect_not_in out "(plan failed"
}

# A confirmation made of what earlier steps return is shown with those
# values as placeholders; one that needs the values themselves (to count
# or compare them) says it is computed at run time. drctl plan does the
# same.
t_a_confirmation_made_of_earlier_outputs_shows_placeholders() {
    mkdir rb
    cat >rb/mine.lua <<'LUA'
local function noop() return {} end
return runbook {
  name = "mine", version = "2", summary = "a runbook of my own",
  steps = {
    { name = "find", run = function() return { table = "orders", rows = 12, names = { "a" } } end },
    { name = "wipe", destructive = true,
      confirm = function(ctx)
        local f = ctx.outputs.find
        return { challenge = f.table:upper(),
                 summary = string.format("%s rows of %s go (%s names, next %s)", f.rows, f.table, #f.names,
                                         f.rows + 1) .. " in " .. ctx.run_id }
      end, run = noop },
    { name = "count", destructive = true,
      confirm = function(ctx)
        local n = 0
        for _ in pairs(ctx.outputs.find.names) do n = n + 1 end
        return { challenge = "x", summary = n .. " names go" }
      end, run = noop },
    { name = "compare", destructive = true,
      confirm = function(ctx)
        return { challenge = "x", summary = ctx.outputs.find.rows > 10 and "many" or "few" }
      end, run = noop },
  },
}
LUA
    "$DRCTL" --runbooks rb docs mine >out 2>err && rc=0 || rc=$?
    expect_rc 0
    expect_in out "\\<find.rows\\> rows of \\<find.table\\> go (\\<number of find.names\\> names, next \\<find.rows\\>) in \\<run-id\\>"
    expect_in out "  To go on, the operator types \`<find.table>\`."
    expect_eq "$(grep -c 'so it is computed at run time' out)" 2
    "$DRCTL" --runbooks rb plan mine >out 2>err && rc=0 || rc=$?
    expect_rc 0
    expect_in out "confirmation: <find.rows> rows of <find.table> go"
    expect_in out "(challenge: type '<find.table>')"
    expect_in out "(<step.field>: what that step finds, known at run time)"
    expect_eq "$(grep -c 'confirmation: computed at run time' out)" 2
    # a real run still confirms with the real values
    "$DRCTL" --runbooks rb run mine </dev/null >out 2>err && rc=0 || rc=$?
    expect_rc 3
    expect_in err "12 rows of orders go (1 names, next 13)"
}

t_a_plan_that_needs_the_api_is_rendered_as_such() {
    env -u NEON_API_KEY -u DRCTL_LOCAL "$DRCTL" --runbooks "$SCENARIOS" docs retention >out 2>err && rc=0 || rc=$?
    expect_rc 0
    expect_in out "(the plan needs a live target: run \`drctl plan\` with the real params to see it)"
}

t_docs_are_deterministic() {
    env -u NEON_API_KEY "$DRCTL" --runbooks "$SCENARIOS" docs >one 2>err
    env -u NEON_API_KEY "$DRCTL" --runbooks "$SCENARIOS" docs >two 2>err
    cmp one two || fail "two renderings differ"
    expect_not_in one "$(date -u +%Y-%m-%dT)"
}

t_out_writes_one_page_per_runbook_and_an_index() {
    env -u NEON_API_KEY "$DRCTL" --runbooks "$SCENARIOS" docs --out wiki/dr >out 2>err && rc=0 || rc=$?
    expect_rc 0
    for f in "$SCENARIOS"/*.lua; do
        name=$(basename "$f" .lua)
        [ -s "wiki/dr/$name.md" ] || fail "no page for $name"
        expect_eq "$(head -1 "wiki/dr/$name.md")" \
            "<!-- drctl-docs runbook=$name version=1.0.0 blob=$(git hash-object "$f") -->"
        expect_in wiki/dr/index.md "[$name]($name.md)"
    done
    expect_eq "$(ls wiki/dr | wc -l)" "$(( $(ls "$SCENARIOS"/*.lua | wc -l) + 1 ))"
    # the same as on stdout, page for page
    env -u NEON_API_KEY "$DRCTL" --runbooks "$SCENARIOS" docs snapshot >out 2>err
    cmp out wiki/dr/snapshot.md || fail "the page on stdout differs from the file"
    # one runbook with --out writes its page only
    dr docs hold --out single
    expect_rc 0
    expect_eq "$(ls single)" hold.md
}

t_bad_names_and_bad_folders_are_refused_and_write_nothing() {
    dr docs no-such-runbook --out w
    expect_rc 2
    expect_in err "no runbook named 'no-such-runbook'"
    dr docs 'Bad/Name'
    expect_rc 2
    touch afile
    dr docs hold --out afile
    expect_rc 2
    expect_in err "--out afile is a file"
    dr list --out w
    expect_rc 2
    expect_in err "--out does not apply to 'list'"
    mkdir rb
    cp "$TEST_RUNBOOKS/hold.lua" rb/
    printf 'return runbook { name = "broken", version = "1", summary = "s", steps = { { name = "a" } } }\n' >rb/broken.lua
    "$DRCTL" --runbooks rb docs --out w2 >out 2>err && rc=0 || rc=$?
    expect_rc 2
    expect_in err "broken.lua:1:"
    expect_in err "nothing was written"
    [ -z "$(ls w2)" ] || fail "pages were written although a runbook does not load"
}

for t in t_docs_of_a_shipped_runbook_show_every_step_and_what_is_lost \
         t_a_confirmation_computed_from_params_is_shown_with_its_challenge \
         t_a_confirmation_made_of_earlier_outputs_shows_placeholders \
         t_a_plan_that_needs_the_api_is_rendered_as_such t_docs_are_deterministic \
         t_out_writes_one_page_per_runbook_and_an_index t_bad_names_and_bad_folders_are_refused_and_write_nothing; do
    run_test "$t"
done
