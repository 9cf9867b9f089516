#!/usr/bin/env bash
# Kill-and-resume check of scripts/gpu/check.sh: starts `caplab run SPEC SETS...`, SIGKILLs it once
# its history.jsonl holds 2 epochs, `caplab resume`s it, and compares the result with WHOLE_RUN
# (an uninterrupted run of the same spec) through compare_runs.py.
# Usage: kill_resume.sh CAPLAB PYTHON RUNS_PARENT WHOLE_RUN VERDICT_JSON SPEC [--set K=V ...]
set -u -o pipefail
CAPLAB=$1 PY=$2 PARENT=$3 WHOLE=$4 VERDICT=$5
shift 5
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
before=$(ls -d "$PARENT"/*/ 2>/dev/null | sort)
"$CAPLAB" run "$@" --quiet &
pid=$!
run=
for _ in $(seq 1 6000); do # 0.05 s polls, up to 300 s
    after=$(ls -d "$PARENT"/*/ 2>/dev/null | sort)
    run=$(comm -13 <(echo "$before") <(echo "$after") | head -1)
    if [ -n "$run" ] && [ -f "$run/history.jsonl" ] && [ "$(wc -l <"$run/history.jsonl")" -ge 2 ]; then
        break
    fi
    if ! kill -0 $pid 2>/dev/null; then
        echo "the run ended before it could be killed"
        exit 1
    fi
    sleep 0.05
done
kill -9 $pid
wait $pid 2>/dev/null
echo "killed $run after $(wc -l <"$run/history.jsonl") epoch(s)"
if [ -f "$run/report.json" ]; then
    echo "the run finished before the kill"
    exit 1
fi
"$CAPLAB" resume "$run" --quiet || exit 1
echo "resumed: $run"
"$PY" "$HERE/compare_runs.py" "$WHOLE" "$run" "$VERDICT"
