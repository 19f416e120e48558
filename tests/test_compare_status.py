"""``lstm-jax compare --status``: every point's state and the time-left estimate, read-only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lstm_jax.compare.protocol import load_protocol
from lstm_jax.compare.run import run_dir
from lstm_jax.compare.status import status_rows, wall_time_model

SMOKE = Path(__file__).parent.parent / "experiments" / "protocols" / "smoke.toml"


@pytest.fixture
def planted(tmp_path):
    """The smoke protocol at T = 10 and 20 with two finished RNN points (60 s and 120 s of
    wall time at T=10), one RNN point cut off at step 10 of 30, and nothing else."""
    text = SMOKE.read_text().replace("lengths = [10]", "lengths = [10, 20]")
    assert text != SMOKE.read_text()
    path = tmp_path / "two_lengths.toml"
    path.write_text(text)
    proto, out = load_protocol(path), tmp_path / "cmp"
    pts = {(p.arm, p.T, p.lr): p for p in proto.points()}
    for lr, wall in [(0.01, 60.0), (0.03, 120.0)]:
        d = run_dir(out, pts[("rnn", 10, lr)])
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps(
            {"status": "completed", "steps": 30, "wall_time_s": wall}))
    d = run_dir(out, pts[("rnn", 20, 0.01)])
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(proto.config(pts[("rnn", 20, 0.01)]).to_dict()))
    (d / "metrics.jsonl").write_text('{"step": 10, "time": 50.0}\n')
    return path, proto, out


def test_states_and_estimate_scale_finished_points_by_T(planted):
    _, proto, out = planted
    rows = {(r["arm"], r["T"], r["lr"]): r for r in status_rows(proto, out)}
    assert len(rows) == 8
    assert rows[("rnn", 10, 0.01)] == {"task": "adding", "T": 10, "arm": "rnn", "lr": 0.01,
                                        "state": "done", "step": 30, "wall_s": 60.0,
                                        "left_s": 0.0}
    per_T = (60 / 10 + 120 / 10) / 2  # seconds per unit of T, the rnn arm's mean
    part = rows[("rnn", 20, 0.01)]
    assert (part["state"], part["step"], part["wall_s"]) == ("partial", 10, 50.0)
    # logged to step 10 but without checkpoints (as a clone receives it): it restarts from 0
    assert part["left_s"] == pytest.approx(per_T * 20)
    ckpts = run_dir(out, next(p for p in proto.points() if (p.arm, p.T, p.lr) == ("rnn", 20, 0.01)))
    (ckpts / "checkpoints" / "10").mkdir(parents=True)  # a complete checkpoint at step 10
    (ckpts / "checkpoints" / "20.orbax-checkpoint-tmp-1").mkdir()  # a save cut off: not used
    part = {(r["arm"], r["T"], r["lr"]): r for r in status_rows(proto, out)}[("rnn", 20, 0.01)]
    assert part["left_s"] == pytest.approx(per_T * 20 * (1 - 10 / 30))
    assert rows[("rnn", 20, 0.03)]["left_s"] == pytest.approx(per_T * 20)
    assert rows[("rnn", 20, 0.03)]["state"] == "new"
    assert all(r["left_s"] is None and r["state"] == "new"
               for k, r in rows.items() if k[0] == "lstm+chrono")  # no finished point to scale


def test_wall_time_model_against_hand_computed_lines():
    # one length: time in proportion to T
    assert wall_time_model([(10, 60.0), (10, 120.0)]) == pytest.approx((0.0, 9.0))
    # exact line 20 + 4·T through three lengths
    assert wall_time_model([(10, 60.0), (20, 100.0), (40, 180.0)]) == pytest.approx((20.0, 4.0))
    # a negative slope (longer T ran faster, e.g. a shared machine) is the flat mean
    assert wall_time_model([(50, 900.0), (100, 840.0)]) == pytest.approx((870.0, 0.0))
    # a negative intercept: the least-squares line through 0, b = Σ T·w / Σ T²
    a, b = wall_time_model([(10, 10.0), (20, 40.0)])
    assert (a, b) == pytest.approx((0.0, (100 + 800) / (100 + 400)))


def test_estimate_uses_a_fixed_part_when_two_lengths_finished(planted):
    """With finished points at T=10 and T=20 the estimate for T=20 is the fitted line's value
    there, not the T=10 points scaled by 2; a diverged point (stopped short) is not used, and one
    trained past the budget counts for the budget's share of its wall time."""
    path, proto, out = planted
    text = path.read_text().replace("lengths = [10, 20]", "lengths = [10, 20, 40]")
    path.write_text(text)
    proto = load_protocol(path)
    pts = {(p.arm, p.T, p.lr): p for p in proto.points()}
    d = run_dir(out, pts[("rnn", 20, 0.03)])  # resumed to twice the budget: counts as 100 s
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(
        {"status": "completed", "steps": 60, "wall_time_s": 200.0}))
    d = run_dir(out, pts[("rnn", 40, 0.01)])
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(
        {"status": "diverged", "steps": 3, "wall_time_s": 1.0}))
    rows = {(r["arm"], r["T"], r["lr"]): r for r in status_rows(proto, out)}
    assert rows[("rnn", 40, 0.01)]["state"] == "done"
    # (T, wall) = (10, 60), (10, 120), (20, 100): least squares
    # b = Sxy/Sxx = (200/3)/(200/3) = 1, a = 280/3 − 40/3 = 80
    a, b = wall_time_model([(10, 60.0), (10, 120.0), (20, 100.0)])
    assert (a, b) == pytest.approx((80.0, 1.0))
    assert rows[("rnn", 40, 0.03)]["left_s"] == pytest.approx(a + b * 40)
    assert rows[("rnn", 20, 0.01)]["left_s"] == pytest.approx(a + b * 20)  # no checkpoint


def test_cli_status_prints_the_table_and_writes_nothing(planted, capsys):
    from lstm_jax.cli import main

    path, _, out = planted
    before = sorted(str(p) for p in out.rglob("*"))
    assert main(["compare", str(path), "--out", str(out), "--status"]) == 0
    text = capsys.readouterr().out
    assert sorted(str(p) for p in out.rglob("*")) == before
    lines = text.splitlines()
    assert lines[0].split() == ["task", "T", "arm", "lr", "state", "step", "wall", "min",
                                "left", "min"]
    assert lines[5].split() == ["adding", "20", "rnn", "0.01", "partial", "10/30", "1", "3"]
    assert lines[-1].startswith("2/8 points done; about 0.1 h left plus 4 point(s) of arms")

    code = main(["compare", str(path), "--out", str(out / "nothing"), "--status"])
    err = capsys.readouterr().err
    assert code == 2 and "--out=" in err and "nothing has been run there" in err
    assert "Traceback" not in err


def test_a_point_whose_run_lock_is_held_shows_as_running(planted):
    """A process training a point holds its run lock (``lstm_jax.io.run_lock``); ``--status``
    says "running" for it, and "partial" again once the lock is released."""
    from lstm_jax.io import lock_holder, run_lock

    _, proto, out = planted
    point = next(p for p in proto.points() if (p.arm, p.T, p.lr) == ("rnn", 20, 0.01))
    where = run_dir(out, point)
    assert lock_holder(where) is None
    with run_lock(where):
        assert lock_holder(where) == os.getpid()
        states = {(r["arm"], r["T"], r["lr"]): r["state"] for r in status_rows(proto, out)}
        assert states[("rnn", 20, 0.01)] == "running"
        assert states[("rnn", 10, 0.01)] == "done" and states[("rnn", 20, 0.03)] == "new"
    assert lock_holder(where) is None
    assert {r["state"] for r in status_rows(proto, out) if r["T"] == 20 and r["lr"] == 0.01
            and r["arm"] == "rnn"} == {"partial"}


def test_status_says_when_points_train_at_once(planted):
    from lstm_jax.compare.status import format_status

    path, _, out = planted
    proto = load_protocol(path)
    rows = status_rows(proto, out)
    todo = [r for r in rows if r["state"] != "done"]
    todo[0]["state"] = "running"
    assert "at once" not in format_status(proto, rows)  # one process: nothing to add
    todo[1]["state"] = "running"
    assert format_status(proto, rows).endswith(
        "; 2 points are training at once (processes sharing the comparison): the hours above "
        "add up the points one after another, at the pace of the finished ones")
