# examples/: the schedules as written. The exact command lines of the
# crontab, of the systemd units' ExecStart and of the GitHub Actions
# workflow's run: steps are read out of the files and run, in the
# schedule's order, against neon-local (DRCTL_LOCAL=1 instead of an API
# key); only the environment is the test's: the audit folder, the export
# folder, the metrics file and the installed drctl (a wrapper on PATH that
# is this build with the shipped runbooks). A job that fails for a real
# reason must reach the team's webhook (helpers from 29-notify).

EXAMPLES=$ROOT/examples

# The order the schedule runs its jobs in, by name.
EX_ORDER="snapshot retention verify-backup export drill check"

# A neon-local project with the guide's salons data (scale 1) made by
# drctl --local itself, a history window the check accepts, the team's
# settings the check reads (contact, docs, a webhook and its test), and
# the environment file the jobs read (examples/env's keys, for the test).
# Sets EX_PROJECT, EX_URL, EX_KEY.
ex_setup() {
    chmod 755 .
    unset NEON_API_KEY NEON_API_HOST NEON_PROJECT_ID DRCTL_AUDIT_DIR
    mkdir -p bin exports prom
    printf '#!/bin/sh\nexec "%s" --runbooks "%s" "$@"\n' "$DRCTL" "$ROOT/runbooks" >bin/drctl
    chmod 755 bin/drctl
    set +e
    "$DRCTL" --local --runbooks "$ROOT/runbooks" --runbooks "$ROOT/demo/runbooks" --audit "$PWD/audit" \
        run salons-setup -p scale=1 -p sql="$ROOT/demo" --run-id setup >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 0
    EX_PROJECT=$(jq -r '.steps[0].outputs.id' $(rundir audit "setup")/state.json)
    EX_URL=$(cat .drctl/neon-local.url)
    EX_KEY=$(cat .drctl/neon-local/api-key)
    curl -sf -o /dev/null -X PATCH -H "Authorization: Bearer $EX_KEY" \
        -d '{"project":{"history_retention_seconds":2592000}}' "$EX_URL/projects/$EX_PROJECT" ||
        fail "could not set the project's history window"
    # /etc/drctl/env for the test: examples/env's keys, neon-local instead of the API key.
    cat >drctl.env <<EOF
DRCTL_LOCAL=1
NEON_PROJECT_ID=$EX_PROJECT
DRCTL_OPERATOR="drctl schedule <drctl@example.org>"
EXPORT_DIR=$PWD/exports
EOF
    sed "s#/etc/drctl/env#$PWD/drctl.env#" "$EXAMPLES/cron-env" >cron-env
    grep -q "$PWD/drctl.env" cron-env || fail "examples/cron-env does not read /etc/drctl/env"
    for key in NEON_API_KEY NEON_PROJECT_ID DRCTL_GIT_TOKEN EXPORT_DIR; do
        grep -q "^$key=" "$EXAMPLES/env" || fail "examples/env has no $key"
    done
}

ex_stop() {
    [ -f .drctl/neon-local.pid ] || return 0
    local pid
    pid=$(cat .drctl/neon-local.pid)
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}

# The settings the check's items need, as the README's Schedules section
# says to set them once (contact, docs, a webhook that works and its test).
ex_team_settings() { # WEBHOOK_URL
    ex_job "drctl config set contact 'Neon support, Pro plan: console.neon.tech/support'"
    expect_rc 0
    ex_job "drctl config set docs.dir docs"
    expect_rc 0
    ex_job "drctl docs --out $PWD/audit/docs"
    expect_rc 0
    ex_job "drctl config set notify.webhook $1"
    expect_rc 0
    ex_job "drctl notify test"
    expect_rc 0
}

# Runs one command line as cron would: a clean environment with the
# crontab's variables (the test's audit folder, BASH_ENV reading the test's
# env file), bash -c, in HOME. Output in out and err, exit code in rc.
ex_job() { # COMMAND
    set +e
    env -i HOME="$PWD" PATH="$PWD/bin:/usr/bin:/bin" SHELL=/bin/bash BASH_ENV="$PWD/cron-env" \
        DRCTL_AUDIT_DIR="$PWD/audit" bash -c "$1" >out 2>err </dev/null
    rc=$?
    set -e
}

# The environment is the only thing a job line gets from the test.
ex_substitute() { # LINE
    echo "$1" | sed -e "s#/var/lib/prometheus/node-exporter/drctl.prom#$PWD/prom/drctl.prom#" \
                    -e "s#/usr/local/bin/drctl#drctl#"
}

# "NAME<TAB>COMMAND" per job of the crontab: the job named by its drctl
# command (the runbook, drill, check).
ex_crontab_jobs() {
    grep -E '^[0-9*]' "$EXAMPLES/crontab" | while read -r _ _ _ _ _ cmd; do
        echo "$(ex_job_name "$cmd")	$cmd"
    done
}

ex_job_name() { # COMMAND
    case "$1" in
    *" drill "*) echo drill ;;
    *" check "* | *" check") echo check ;;
    *" run "*) echo "$1" | sed -E 's/.* run ([a-z-]+).*/\1/' ;;
    *) echo unknown ;;
    esac
}

ex_systemd_jobs() {
    for unit in "$EXAMPLES"/systemd/drctl-*.service; do
        cmd=$(sed -n 's/^ExecStart=//p' "$unit")
        # systemd's ${VAR} is the shell's too
        echo "$(ex_job_name "$cmd")	$cmd"
    done
}

ex_workflow_jobs() {
    python3 - "$EXAMPLES/github-actions/drctl.yml" <<'EOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for step in doc["jobs"]["drctl"]["steps"]:
    if step.get("id") and step.get("run"):
        print(step["id"] + "\t" + step["run"].strip())
EOF
}

# Runs the jobs of a listing in the schedule's order; each must exit 0 and,
# with -q, say nothing on success (cron mails any output).
ex_run_in_order() { # LISTING-FILE
    local name cmd
    for name in $EX_ORDER; do
        cmd=$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$1")
        [ -n "$cmd" ] || fail "no $name job in $1"
        ex_job "$(ex_substitute "$cmd")"
        [ "$rc" = 0 ] || fail "job $name ($cmd) exited $rc"
        if [ "$name" != check ]; then
            [ ! -s err ] || fail "job $name wrote to stderr on success (cron would mail it)"
        fi
        echo "$name" >>jobs.done
    done
}

t_examples_crontab_jobs_run_as_written_in_order() {
    ex_setup
    ex_crontab_jobs >jobs.tsv
    expect_eq "$(cut -f1 jobs.tsv | sort | tr '\n' ' ')" "check drill export retention snapshot verify-backup " \
        "the crontab's jobs"
    # Non-interactive: the destructive steps are approved by name.
    expect_in jobs.tsv "run retention --approve delete"
    expect_in jobs.tsv "run export -p dest=\"\$EXPORT_DIR\" --approve retention"
    expect_in jobs.tsv "check --prometheus /var/lib/prometheus/node-exporter/drctl.prom"
    grep -q '^BASH_ENV=/etc/drctl/cron-env' "$EXAMPLES/crontab" || fail "the crontab does not read the env file"
    ! grep -q 'NEON_API_KEY=' "$EXAMPLES/crontab" || fail "the crontab holds an API key"
    notify_receiver_start 200
    ex_team_settings "http://127.0.0.1:$RECV_PORT/hook"
    ex_run_in_order jobs.tsv
    [ -s prom/drctl.prom ] || fail "the check wrote no metrics"
    expect_in prom/drctl.prom ',item="backups"} 1'
    # Snapshot, verify-backup, export and the drill really happened.
    expect_eq "$(ls exports/*.dump | wc -l)" 1 "exports"
    ex_job "drctl audit verify"
    expect_rc 0
    notify_receiver_stop
    ex_stop
}

t_examples_a_failed_job_notifies_the_webhook() {
    ex_setup
    notify_receiver_start 200
    ex_job "drctl config set notify.webhook http://127.0.0.1:$RECV_PORT/hook"
    expect_rc 0
    # The weekly export, its destination a file where a folder must be.
    echo "not a folder" >not-a-folder
    sed -i "s#^EXPORT_DIR=.*#EXPORT_DIR=$PWD/not-a-folder/exports#" drctl.env
    cmd=$(ex_crontab_jobs | awk -F'\t' '$1 == "export" { print $2 }')
    ex_job "$(ex_substitute "$cmd")"
    [ "$rc" != 0 ] || fail "the export to a file succeeded"
    [ -s err ] || fail "the failed job said nothing (cron would not mail)"
    expect_in err "not-a-folder"
    for _ in $(seq 1 100); do [ -s recv.log ] && break; sleep 0.1; done
    [ -s recv.log ] || fail "the webhook received nothing"
    expect_eq "$(jq -r '.method' recv.log | sort -u)" POST "method"
    jq -r '.body' recv.log | jq -e 'select(.event == "run-failed" and .runbook == "export")' >/dev/null ||
        fail "no run-failed event for export: $(cat recv.log)"
    notify_receiver_stop
    ex_stop
}

t_examples_systemd_units_verify_and_run_as_written() {
    local units=("$EXAMPLES"/systemd/drctl-*.service)
    expect_eq "${#units[@]}" 6 "services"
    for unit in "${units[@]}"; do
        timer=${unit%.service}.timer
        [ -f "$timer" ] || fail "$(basename "$unit") has no timer"
        for line in 'EnvironmentFile=/etc/drctl/env' 'User=drctl' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
                    'PrivateTmp=yes' 'Type=oneshot'; do
            grep -qx "$line" "$unit" || fail "$(basename "$unit") lacks $line"
        done
        grep -q '^ReadWritePaths=.*/var/lib/drctl.*/var/backups/drctl' "$unit" ||
            fail "$(basename "$unit"): the audit and export folders are not writable"
        grep -qx 'Persistent=true' "$timer" || fail "$(basename "$timer") is not Persistent"
        grep -q '^RandomizedDelaySec=' "$timer" || fail "$(basename "$timer") has no RandomizedDelaySec"
        ! grep -q 'NEON_API_KEY=' "$unit" || fail "$(basename "$unit") holds an API key"
    done
    # systemd itself reads them (in a scratch root that has the binary they name).
    if command -v systemd-analyze >/dev/null && [ -d /usr/lib/systemd/system ]; then
        mkdir -p root/usr/local/bin root/etc/systemd/system root/usr/lib/systemd
        cp "$DRCTL" root/usr/local/bin/drctl
        cp -r /usr/lib/systemd/system root/usr/lib/systemd/
        cp "$EXAMPLES"/systemd/* root/etc/systemd/system/
        systemd-analyze verify --root="$PWD/root" root/etc/systemd/system/drctl-* >verify.out 2>&1 ||
            fail "systemd-analyze verify: $(cat verify.out)"
        # daily, weekly, monthly as the schedule says
        for pair in snapshot:1 retention:1 check:1 export:7 verify-backup:28 drill:28; do
            name=${pair%%:*} min_days=${pair#*:}
            cal=$(sed -n 's/^OnCalendar=//p' "$EXAMPLES/systemd/drctl-$name.timer")
            first=$(systemd-analyze calendar --iterations=2 "$cal" | sed -n 's/^ *Next elapse: \(.*\)$/\1/p')
            second=$(systemd-analyze calendar --iterations=2 "$cal" | sed -n 's/^ *Iter\. #2: \(.*\)$/\1/p')
            gap=$(( ($(date -d "$second" +%s) - $(date -d "$first" +%s)) / 86400 ))
            [ "$gap" -ge "$min_days" ] && [ "$gap" -le $((min_days == 28 ? 31 : min_days)) ] ||
                fail "drctl-$name.timer runs every $gap days ($cal)"
        done
    else
        echo "    note: systemd-analyze is not runnable here: the units were not verified by systemd"
    fi
    ex_setup
    ex_systemd_jobs >jobs.tsv
    notify_receiver_start 200
    ex_team_settings "http://127.0.0.1:$RECV_PORT/hook"
    ex_run_in_order jobs.tsv
    expect_in prom/drctl.prom ',item="backups"} 1'
    notify_receiver_stop
    ex_stop
}

t_examples_github_workflow_parses_and_runs_as_written() {
    python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is needed to read the workflow"
    python3 - "$EXAMPLES/github-actions/drctl.yml" <<'EOF' || fail "the workflow is not what it must be"
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
on = doc.get("on", doc.get(True))             # YAML 1.1 reads a bare `on` as true
crons = [c["cron"] for c in on["schedule"]]
assert len(crons) == 3, crons                  # daily, weekly, monthly
assert doc["concurrency"]["group"] and doc["concurrency"]["cancel-in-progress"] is False
job = doc["jobs"]["drctl"]
env = job["env"]
for k in ("NEON_API_KEY", "NEON_PROJECT_ID", "DRCTL_GIT_TOKEN"):
    assert env[k] == "${{ secrets.%s }}" % k, k
ids = [s.get("id") for s in job["steps"] if s.get("id")]
assert ids == ["snapshot", "retention", "verify-backup", "export", "drill", "check"], ids
steps = {s.get("id"): s for s in job["steps"]}
assert "--prometheus" in steps["check"]["run"]
uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
assert any(u["with"]["path"] == "drctl.prom" for u in uploads)
for s in job["steps"]:
    assert "continue-on-error" not in s, s     # a failure fails the job
EOF
    ex_setup
    ex_workflow_jobs >jobs.tsv
    notify_receiver_start 200
    ex_team_settings "http://127.0.0.1:$RECV_PORT/hook"
    ex_run_in_order jobs.tsv
    [ -s drctl.prom ] || fail "the check wrote no drctl.prom for the artifact"
    notify_receiver_stop
    ex_stop
}

for t in t_examples_crontab_jobs_run_as_written_in_order \
         t_examples_a_failed_job_notifies_the_webhook \
         t_examples_systemd_units_verify_and_run_as_written \
         t_examples_github_workflow_parses_and_runs_as_written; do
    run_test "$t"
done
