#!/usr/bin/env bash
# make_audit_repo.sh DIR COUNT: an audit repository holding COUNT runs, one
# drctl-shaped commit each (run.json, a journal with its run-started event,
# the matching state.json), written with git fast-import so that building
# it takes seconds. `drctl audit verify` passes on it.
set -euo pipefail
dir=$1
count=$2
git init -q -b main "$dir"
awk -v count="$count" 'BEGIN {
    for (i = 1; i <= count; i++) {
        id = sprintf("20250101T%06dZ-bench-%05d", i, i)
        t = sprintf("2025-01-01T00:00:00.%06dZ", i)
        runjson = "{\"run_id\":\"" id "\",\"runbook\":{\"name\":\"bench\",\"version\":\"1\",\"blob_id\":\"0\"},\"params\":{},\"operator\":\"Bench <bench@example.org>\",\"host\":\"bench\",\"drctl_version\":\"bench\",\"target\":null,\"started_at\":\"" t "\",\"steps\":[\"a\"]}\n"
        journal = "{\"seq\":1,\"time\":\"" t "\",\"kind\":\"run-started\",\"step\":null,\"data\":{\"steps\":[\"a\"]}}\n"
        state = "{\"run_id\":\"" id "\",\"status\":\"running\",\"journal_seq\":1,\"updated_at\":\"" t "\",\"steps\":[{\"name\":\"a\",\"state\":\"pending\",\"attempts\":0}]}\n"
        msg = id ": run started\n"
        printf "commit refs/heads/main\n"
        printf "author Bench <bench@example.org> %d +0000\n", 1735689600 + i
        printf "committer Bench <bench@example.org> %d +0000\n", 1735689600 + i
        printf "data %d\n%s", length(msg), msg
        printf "M 100644 inline runs/%s/run.json\ndata %d\n%s\n", id, length(runjson), runjson
        printf "M 100644 inline runs/%s/journal.jsonl\ndata %d\n%s\n", id, length(journal), journal
        printf "M 100644 inline runs/%s/state.json\ndata %d\n%s\n", id, length(state), state
    }
}' | git -C "$dir" fast-import --quiet
git -C "$dir" checkout -q -f main
