"""docs/cells.md ("Add your own cell") runs as written: its Python block is executed here."""

from __future__ import annotations

import re
from pathlib import Path

from lstm_jax.cells import ARCHS, registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "cells.md"


def test_add_your_own_cell_page_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1
    code = blocks[0]
    cell_lines = code[: code.index("# Train:")].strip().splitlines()
    assert len(cell_lines) < 60  # the promise of the page: a complete cell in under 60 lines
    try:
        exec(compile(code, str(DOC), "exec"), {"__name__": "docs_cells"})
        assert "mgu" in ARCHS
    finally:
        registry._REGISTRY.pop("mgu", None)
    out = capsys.readouterr().out
    assert "MSE" in out and "log10" in out
