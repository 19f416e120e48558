"""The report: sections in order, a header that says what was run, only the given folder read,
and a --help that documents every argument."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lstm_jax.report import build_parser, main, write_report


def _headings(text: str) -> list[str]:
    return [line[3:] for line in text.splitlines() if line.startswith("## ")]


def test_empty_folder_every_section_not_run_in_order(tmp_path, monkeypatch):
    # run from the repository root, where committed IMDB results exist: they must not be read
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    results = tmp_path / "results"
    results.mkdir()
    (results / "manifest.json").write_text(json.dumps({
        "mode": "quick", "stages": {
            "decay_init": {"command": "python experiments/decay_init.py --quick", "seconds": 3.0,
                           "returncode": 0, "load_before": 1, "load_after": 1},
            "eda": {"command": "lstm-jax eda imdb", "skipped": "no IMDB archive"}}}))
    md, page = write_report(results, tmp_path / "report")
    text = md.read_text()
    numbers = [int(m.group(1)) for h in _headings(text) if (m := re.match(r"(\d+)\. ", h))]
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert "../shared" not in text and "Essay:" not in text and "unknown" not in text
    assert "quick sizes" in text and "stages run: decay_init." in text
    assert "Skipped: eda." in text
    assert "IMDB models: not run" in text and str(results / "imdb_compare") in text
    assert "87.31" not in text and "experiments/results/imdb" not in text
    assert text.count("Not run.") >= 4
    assert "<h2>" in page.read_text()


def test_without_a_manifest_the_header_says_so(tmp_path):
    md, _ = write_report(tmp_path / "nothing", tmp_path / "report")
    assert "no manifest.json" in md.read_text()


def test_imdb_results_are_read_from_the_results_folder(tmp_path):
    results = tmp_path / "results"
    imdb = results / "imdb_compare"
    imdb.mkdir(parents=True)
    (imdb / "results.json").write_text(json.dumps({"runs": [{"arch": "lstm"}]}))
    (imdb / "table.md").write_text("| arch | acc |\n|---|---|\n| lstm | 12.34 % |\n")
    text = write_report(results, tmp_path / "report")[0].read_text()
    assert "12.34 %" in text and f"Models (results from {imdb})" in text
    assert "Not (yet) in these results: gru, rnn." in text


def test_help_describes_every_argument(capsys):
    parser = build_parser()
    for action in parser._actions:
        assert action.help, action.dest
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--results", "--imdb", "--out"):
        assert flag in out
    assert "never trains" in out and "default: runs/reproduce" in out
