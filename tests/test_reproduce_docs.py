"""``make reproduce DOCS=docs/figures``: what it copies and how it records it (cheap; the
stages themselves are in tests/test_experiments.py, out of the default run)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))


def test_copy_docs_merges_rows_and_keeps_the_rest(tmp_path):
    """``--docs`` copies what the run made and rewrites only those files' rows of the docs
    README: rows of figures from other commands and the prose after the table survive."""
    import reproduce

    out, docs = tmp_path / "out", tmp_path / "docs"
    (out / "decay_init").mkdir(parents=True)
    (out / "decay_init" / "decay_init.png").write_bytes(b"png-new")
    (out / "stability").mkdir()
    (out / "stability" / "stability.png").write_bytes(b"png-stab")
    docs.mkdir()
    (docs / "README.md").write_text(
        "# Figures\n\nintro\n\n| file | what | made by |\n|---|---|---|\n"
        "| `decay_init.png` | old | `old command` |\n"
        "| `adding_protocol.png` | the protocol | `lstm-jax compare …` |\n\nprose after\n")
    manifest = {"mode": "full", "stages": {"decay_init": {"command": "python decay NEW"},
                                           "stability": {"command": "python stab"}}}
    reproduce.copy_docs(out, docs, manifest)
    lines = (docs / "README.md").read_text().splitlines()
    assert (docs / "decay_init.png").read_bytes() == b"png-new"
    assert lines[6].startswith("| `decay_init.png` |") and "`python decay NEW` (FULL sizes" in lines[6]
    assert lines[7] == "| `adding_protocol.png` | the protocol | `lstm-jax compare …` |"
    assert lines[8].startswith("| `stability.png` |") and "`python stab`" in lines[8]
    assert lines[9:] == ["", "prose after"] and "old command" not in "\n".join(lines)

    fresh = tmp_path / "fresh"  # no README yet: the header, then the rows
    reproduce.copy_docs(out, fresh, manifest)
    text = (fresh / "README.md").read_text()
    assert text.startswith("# Figures shown")
    assert [ln.split(" | ")[0] for ln in text.splitlines() if ln.startswith("| `")] == [
        "| `decay_init.png`", "| `stability.png`"]
