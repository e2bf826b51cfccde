"""Every script in python/examples/ runs against the open server and exits with status 0, so the
examples cannot rot."""

import pathlib
import subprocess
import sys

import pytest

from conftest import subprocess_env

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def test_there_are_examples():
    assert len(SCRIPTS) >= 6, [s.name for s in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_example_runs(servers, script):
    env = subprocess_env()
    env["FLIGHTLINE_URI"] = servers.uri
    env.pop("FLIGHTLINE_TOKEN", None)

    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60, cwd=EXAMPLES
    )

    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{script.name} printed nothing"
    assert "Traceback" not in done.stderr
