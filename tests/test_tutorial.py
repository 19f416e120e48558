"""The tutorial notebook runs from top to bottom (nbclient), so it cannot rot.

Slow: it trains two small models for 400 steps each (about 1.5 min of CPU on a 2-core machine,
more when the machine is shared), so it runs in ``make test-all``, not the default suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorials" / "gradient_flow.ipynb"


@pytest.mark.slow
def test_gradient_flow_notebook_executes(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.outputs)
    assert "geometric mean over rows" in text
    assert "held-out MSE" in text and "memoryless baseline" in text
    assert "→ trained" in text
    assert images == 3  # at init, step 0, after training


def test_notebook_is_valid_and_stored_with_outputs():
    """The committed notebook is valid nbformat and carries its outputs (the docs render them)."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code)
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)
