"""The source passes the project's linter (ruff, rules in pyproject.toml), so a lint error fails
``make test`` and CI rather than landing with CI green."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("ruff is not installed beside this Python: install the dev extra (make setup)")
    return [found]


def test_ruff_passes_on_the_source():
    cmd = _ruff() + ["check", "--no-cache", "lstm_jax", "tests", "experiments", "benchmarks"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_catches_an_unused_import(tmp_path):
    """The check above can fail: the same command flags a planted error."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    done = subprocess.run(_ruff() + ["check", "--no-cache", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "F401" in done.stdout, done.stdout + done.stderr
