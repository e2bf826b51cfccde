#!/usr/bin/env bash
# Creates the interop tests' Python venv at <repo>/.venv and installs interop/requirements.txt.
# Idempotent: a stamp records the hash of the requirements and the interpreter, so a second run with
# nothing changed returns at once without touching the network.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
requirements="$root/interop/requirements.txt"
stamp="$venv/.flightline-interop-requirements"
python="${PYTHON:-python3}"

# Two callers at once (.ci/run and the Rust test) must not install into the same venv concurrently.
# The lock lives outside the repo so the repo stays clean.
if command -v flock >/dev/null 2>&1; then
    lock="${TMPDIR:-/tmp}/flightline-venv-$(printf '%s' "$root" | sha256sum | cut -c1-16).lock"
    exec 9>"$lock"
    flock 9
fi

if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -m venv --clear "$venv"; then
        echo "setup_venv.sh: '$python -m venv $venv' failed; install Python 3 with the venv module" \
            "(e.g. apt-get install python3-venv) or set PYTHON to another interpreter" >&2
        exit 1
    fi
fi

wanted="$( (cat "$requirements"; "$venv/bin/python" --version) | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    exit 0
fi

if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"; then
    echo "setup_venv.sh: pip could not install $requirements into $venv; check PyPI is reachable" >&2
    exit 1
fi
printf '%s\n' "$wanted" >"$stamp"
