"""experiments/comparison_table.py's protocol rows (``--compare-adding``, ``--compare-imdb``):
known answers on hand-written `lstm-jax compare` results, and the committed folders. No training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import comparison_table  # noqa: E402


def _write_compare(folder: Path, rows: list, differences: list, task: str) -> str:
    folder.mkdir(parents=True)
    fields = {"name": task, "seeds": 5, "lr_grid": [1e-3, 3e-3], "steps": 100, "batch": 8}
    (folder / "results.json").write_text(json.dumps(
        {"rows": rows, "differences": differences, "protocol_fields": fields}))
    return str(folder)


def _row(task, T, arm, status="done", successes=0, seeds=5, **extra):
    return {"task": task, "T": T, "arm": arm, "arch": arm.split("+")[0].split("/")[0],
            "status": status, "successes": successes if status == "done" else None,
            "seeds": seeds, "criterion": "validation loss < 0.01", **extra}


def test_comparison_table_reads_protocol_runs(tmp_path, capsys):
    """With ``--compare-adding/--compare-imdb`` the long-lag and IMDB rows come from `lstm-jax
    compare` results: seeds solved per T and arm, the longest T most seeds of an arm solve
    (a minority does not count), unfinished points shown as such, and the paired RNN − LSTM
    difference turned into LSTM − RNN with its interval flipped."""
    adding = _write_compare(tmp_path / "adding", [
        _row("adding", 10, "rnn", successes=5), _row("adding", 20, "rnn", successes=2),
        _row("adding", 10, "rnn+identity", successes=3), _row("adding", 20, "rnn+identity"),
        _row("adding", 10, "lstm", successes=5), _row("adding", 20, "lstm", successes=3),
        _row("adding", 10, "gru", successes=5), _row("adding", 20, "gru", status="pending"),
    ], [], "adding")
    acc = {"rnn/last": (0.80, 0.01), "lstm/last": (0.85, 0.002), "rnn/mean": (0.86, 0.0),
           "lstm/mean": (0.855, 0.001)}
    imdb = _write_compare(tmp_path / "imdb", [
        _row("imdb", 200, arm, successes=0, seeds=3, test_mean=m, test_sd=sd)
        for arm, (m, sd) in acc.items()], [
        {"arm_a": "rnn/last", "arm_b": "lstm/last", "quantity": "test accuracy", "mean": -0.05,
         "low": -0.06, "high": -0.04, "n": 3},
        {"arm_a": "rnn/last", "arm_b": "lstm/last", "quantity": "success", "mean": -1.0,
         "low": -1.0, "high": -1.0, "n": 3},
        {"arm_a": "rnn/mean", "arm_b": "lstm/mean", "quantity": "test accuracy", "mean": 0.005,
         "low": -0.001, "high": 0.01, "n": 3}], "imdb")
    out = tmp_path / "cmp"
    assert comparison_table.main(["--results", str(tmp_path / "none"), "--no-timing",
                                  "--compare-adding", adding, "--compare-imdb", imdb,
                                  "--hidden", "4", "--out", str(out)]) == 0
    c = json.loads((out / "comparison.json").read_text())["columns"]
    assert [c[a]["longest_lag_solved"] for a in ("rnn", "lstm", "gru")] == [10, 20, 10]
    assert c["gru"]["protocol_lags"]["arms"]["gru"] == {"10": [5, 5], "20": None}
    assert (c["lstm"]["imdb_last"], c["lstm"]["imdb_last_sd"]) == (0.85, 0.002)
    md = (out / "comparison.md").read_text()
    assert "rnn: 5/5 · 2/5; rnn+identity: 3/5 · 0/5" in md and "gru: 5/5 · …" in md
    assert "most seeds of an arm solve is 10 (RNN), 20 (LSTM); T = 20 not finished" in md
    assert "80.00 ± 1.00 %" in md and "85.00 ± 0.20 %" in md
    assert "LSTM − RNN = +5.00 pp (95 % CI over 3 seeds +4.00 to +6.00): LSTM better" in md
    assert "LSTM − RNN = -0.50 pp (95 % CI over 3 seeds -1.00 to +0.10): no clear difference" in md
    for folder, message in ((str(tmp_path / "nowhere"), "results.json not found"),
                            (imdb, "holds no 'adding' points")):
        assert comparison_table.main(["--results", str(tmp_path / "none"), "--no-timing",
                                      "--compare-adding", folder, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err


def test_comparison_table_on_the_committed_protocol_runs(tmp_path):
    """The committed `lstm-jax compare` folders parse, and the table states what their rows say."""
    results = ROOT / "experiments" / "results"
    out = tmp_path / "cmp"
    assert comparison_table.main(["--results", str(tmp_path / "none"), "--no-timing",
                                  "--compare-adding", str(results / "compare_adding"),
                                  "--compare-imdb", str(results / "compare_imdb"),
                                  "--out", str(out)]) == 0
    c = json.loads((out / "comparison.json").read_text())["columns"]
    rows = json.loads((results / "compare_adding" / "results.json").read_text())["rows"]
    done = {(r["arm"], r["T"]): r["successes"] for r in rows if r["status"] == "done"}
    assert c["rnn"]["protocol_lags"]["arms"]["rnn"]["50"] == [done["rnn", 50], 5]
    assert c["lstm"]["longest_lag_solved"] >= 100 > c["rnn"]["longest_lag_solved"]
    imdb = {r["arm"]: r for r in json.loads(
        (results / "compare_imdb" / "results.json").read_text())["rows"]}
    assert c["gru"]["imdb_mean"] == imdb["gru/mean"]["test_mean"]
