#!/usr/bin/env bash
# make_audit_repo.sh DIR COUNT: an audit repository holding COUNT runs, one
# drctl-shaped commits each (run.json, a journal with its run-started event
# and the matching state.json; then run-done), written with git
# fast-import so that building it takes seconds. `drctl audit verify`
# passes on it. AUDIT_ENDED=0 leaves every run at its first commit,
# running (dead: no process holds it).
#
# The runs start one every 15 minutes from 2025-01-01 (96 a day: 10,000
# runs span 105 days, 100,000 nearly three years), each filed where drctl
# files it, runs/YYYY/MM/DD/<run-id>/. AUDIT_LAYOUT=flat files them as an
# older drctl did, runs/<run-id>/, all in one folder.
set -euo pipefail
dir=$1
count=$2
layout=${AUDIT_LAYOUT:-dated}
ended=${AUDIT_ENDED:-1}
git init -q -b main "$dir"
awk -v count="$count" -v layout="$layout" -v ended="$ended" '
# The civil date of a day number since 1970-01-01 (H. Hinnant).
function civil(days,    z, era, doe, yoe, doy, mp, d, m, y) {
    z = days + 719468
    era = int(z / 146097)
    doe = z - era * 146097
    yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
    y = yoe + era * 400
    doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100))
    mp = int((5 * doy + 2) / 153)
    d = doy - int((153 * mp + 2) / 5) + 1
    m = mp < 10 ? mp + 3 : mp - 9
    if (m <= 2) y++
    return sprintf("%04d %02d %02d", y, m, d)
}
function commit(epoch, msg, folder, runjson, journal, state) {
    printf "commit refs/heads/main\n"
    printf "author Bench <bench@example.org> %d +0000\n", epoch
    printf "committer Bench <bench@example.org> %d +0000\n", epoch
    printf "data %d\n%s", length(msg), msg
    if (runjson != "")
        printf "M 100644 inline %s/run.json\ndata %d\n%s\n", folder, length(runjson), runjson
    printf "M 100644 inline %s/journal.jsonl\ndata %d\n%s\n", folder, length(journal), journal
    printf "M 100644 inline %s/state.json\ndata %d\n%s\n", folder, length(state), state
}
BEGIN {
    start = 1735689600 # 2025-01-01T00:00:00Z
    for (i = 1; i <= count; i++) {
        epoch = start + (i - 1) * 900
        split(civil(int(epoch / 86400)), ymd, " ")
        secs = epoch % 86400
        hms = sprintf("%02d%02d%02d", int(secs / 3600), int(secs % 3600 / 60), secs % 60)
        id = sprintf("%s%s%sT%sZ-bench-%06d", ymd[1], ymd[2], ymd[3], hms, i)
        t = sprintf("%s-%s-%sT%s:%s:%s.%06dZ", ymd[1], ymd[2], ymd[3], substr(hms, 1, 2), substr(hms, 3, 2),
                    substr(hms, 5, 2), i % 1000000)
        folder = layout == "flat" ? "runs/" id : sprintf("runs/%s/%s/%s/%s", ymd[1], ymd[2], ymd[3], id)
        steps = ended ? "[]" : "[\"a\"]"
        step_states = ended ? "[]" : "[{\"name\":\"a\",\"state\":\"pending\",\"attempts\":0}]"
        runjson = "{\"run_id\":\"" id "\",\"runbook\":{\"name\":\"bench\",\"version\":\"1\",\"blob_id\":\"0\"},\"params\":{},\"operator\":\"Bench <bench@example.org>\",\"host\":\"bench\",\"drctl_version\":\"bench\",\"target\":null,\"started_at\":\"" t "\",\"steps\":" steps "}\n"
        journal = "{\"seq\":1,\"time\":\"" t "\",\"kind\":\"run-started\",\"step\":null,\"data\":{\"steps\":" steps "}}\n"
        state = "{\"run_id\":\"" id "\",\"status\":\"running\",\"journal_seq\":1,\"updated_at\":\"" t "\",\"steps\":" step_states "}\n"
        commit(epoch, id ": run started\n", folder, runjson, journal, state)
        if (ended) {
            t2 = substr(t, 1, 20) "999999Z"
            journal = journal "{\"seq\":2,\"time\":\"" t2 "\",\"kind\":\"run-done\",\"step\":null,\"data\":{}}\n"
            state = "{\"run_id\":\"" id "\",\"status\":\"done\",\"journal_seq\":2,\"updated_at\":\"" t2 "\",\"steps\":[]}\n"
            commit(epoch, id ": run done\n", folder, "", journal, state)
        }
    }
}' | git -C "$dir" fast-import --quiet
git -C "$dir" checkout -q -f main
