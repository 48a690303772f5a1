#!/usr/bin/env bash
# Line and branch coverage of the last `make coverage` run (the .gcda files
# under build-cov/), per program and per file:
#   drctl      = common/ + engine/     neon-local = common/ + neon-local/
#   engine     = engine/ alone
# common/ counts once in each program, with what both programs ran in it.
# Prints the table and leaves the per-file figures in build-cov/coverage.json.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v gcovr >/dev/null || { echo "report.sh needs gcovr (apt-get install -y gcovr)" >&2; exit 2; }
[ -d build-cov ] && find build-cov -name '*.gcda' | grep -q . ||
    { echo "no coverage data: run make coverage first" >&2; exit 2; }

summary=build-cov/coverage.json
nice -n 10 gcovr -r . --object-directory build-cov -j 2 \
    -f 'common/' -f 'engine/' -f 'neon-local/' \
    --json-summary "$summary" --json-summary-pretty >/dev/null

# One row: NAME, then the files whose paths match the regex.
program_row() { # NAME REGEX
    jq -r --arg name "$1" --arg re "$2" '
        [.files[] | select(.filename | test($re))] as $f
        | ([$f[].line_total] | add) as $lt | ([$f[].line_covered] | add) as $lc
        | ([$f[].branch_total] | add) as $bt | ([$f[].branch_covered] | add) as $bc
        | def pct(c; t): if t > 0 then (1000 * c / t | round) / 10 else 0 end;
          "\($name)\t\(pct($lc; $lt))\t\(pct($bc; $bt))\t\($lc)/\($lt)\t\($bc)/\($bt)"' "$summary"
}

{
    echo -e "program\tlines %\tbranches %\tlines\tbranches"
    program_row drctl '^(common|engine)/'
    program_row neon-local '^(common|neon-local)/'
    program_row engine '^engine/'
    program_row common '^common/'
} | column -t -s $'\t'

echo
{   echo -e "file\tlines %\tbranches %\tlines\tbranches"
    jq -r '.files | sort_by(.line_percent)[]
           | "\(.filename)\t\(.line_percent)\t\(.branch_percent)\t\(.line_covered)/\(.line_total)\t\(.branch_covered)/\(.branch_total)"' "$summary"
} | column -t -s $'\t'
