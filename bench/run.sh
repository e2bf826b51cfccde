#!/usr/bin/env bash
# Flightline's side-by-side benchmark: builds what it measures, then runs bench/run.py.
#
#   bench/run.sh                  # 10M rows, 3 reps, release build (cold: ~35 min on 2 cores)
#   bench/run.sh --quick          # 200k rows, 1 rep: the smoke run CI executes
#   bench/run.sh --profile dev    # the README's dev profile (no release build)
#   bench/run.sh --rows 2000000 --reps 5
#
# Results: bench/results/<date>-<profile>-<rows>.{md,json,png} (printed as well).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

profile=release
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
        --profile) profile="${args[$((i + 1))]}" ;;
        --profile=*) profile="${args[$i]#--profile=}" ;;
        --quick) quick=1 ;;
    esac
done
# The smoke run measures the README's build: CI never pays for a release build.
if [ "${quick:-0}" = 1 ] && [[ " $* " != *" --profile"* ]]; then
    profile=dev
    args+=(--profile dev)
fi

bash interop/setup_venv.sh
packages=(-p flightline-runner -p flightline-bench -p flightline-top-targets -p flightline-python)
started=$(date +%s)
cargo build --profile "$profile" "${packages[@]}"
built=$(( $(date +%s) - started ))
if [ "$profile" != dev ]; then
    # Line 11 compares the production build with the README's dev build of the server.
    cargo build -p flightline-runner
fi
exec .venv/bin/python bench/run.py "${args[@]}" \
    --build-note "cargo build --profile $profile of runner, bench and plugin took ${built}s here (incremental; a cold release build of the stack takes ~35 min on 2 cores)"
