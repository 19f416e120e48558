"""conftest's HEAVY set (the tests moved out of the default run) names tests that exist: a
renamed test or a changed parametrisation would otherwise drop silently back into the default
run (or a heavy test would leave it unnoticed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import HEAVY

ROOT = Path(__file__).resolve().parents[1]


def test_every_heavy_entry_names_a_collected_test():
    files = sorted({entry.split("::")[0] for entry in HEAVY})
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "",
                           "-p", "no:cacheprovider", "-p", "no:xdist", *files],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ids = {line.strip() for line in proc.stdout.splitlines() if "::" in line}
    stale = sorted(e for e in HEAVY if "::" in e and e not in ids)
    assert not stale, f"HEAVY names tests that do not exist: {stale}"
    assert all(any(i.startswith(f + "::") for i in ids) for f in files)
