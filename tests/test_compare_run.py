"""``lstm-jax compare`` end to end on the smoke protocol: stop after one point, continue without
retraining it, test scored once per selected configuration, budget flags; the refusal rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lstm_jax.compare.protocol import load_protocol
from lstm_jax.compare.run import collect, run_comparison, run_dir
from lstm_jax.errors import UserError
from lstm_jax.metrics import read_jsonl

SMOKE = Path(__file__).parent.parent / "experiments" / "protocols" / "smoke.toml"


@pytest.fixture
def smoke_one_lr(tmp_path):
    """The smoke protocol with one learning rate (two points: one per arm), to stay fast."""
    text = SMOKE.read_text().replace("lr_grid = [0.01, 0.03]", "lr_grid = [0.03]")
    assert text != SMOKE.read_text()
    path = tmp_path / "smoke1.toml"
    path.write_text(text)
    return path


def test_compare_stops_resumes_and_scores_test_once(smoke_one_lr, tmp_path, capsys):
    from lstm_jax.cli import main
    from lstm_jax.evaluate import score

    out = tmp_path / "cmp"
    proto = load_protocol(smoke_one_lr)
    first, second = (run_dir(out, p) for p in proto.points())
    res = run_comparison(smoke_one_lr, out, max_points=1, log=lambda m: None)
    assert (res["status"], res["trained"]) == ("stopped", 1)
    assert (first / "summary.json").is_file() and not second.exists()
    assert [r["status"] for r in res["results"]["rows"]] == ["done", "pending"]
    stamp = (first / "metrics.jsonl").stat().st_mtime_ns
    figures = [out / "success_vs_T.png", out / "final_by_arm.png", out / "curves.png"]
    assert all(f.is_file() for f in figures)  # drawn after every finished point
    for f in figures:
        f.unlink()
    code = main(["compare", str(smoke_one_lr), "--out", str(out), "--max-points", "0"])
    assert code == 0 and "stopped: 0 point(s) trained now; 1/2" in capsys.readouterr().out
    assert all(f.is_file() for f in figures) and not second.exists()  # report only

    # the second point as a checkout on another machine holds it: started (config and a metrics
    # line) but without its checkpoints, which are not committed; it must start again from step 0
    from lstm_jax.io import write_json

    second.mkdir(parents=True)
    write_json(second / "config.json", proto.config(proto.points()[1]).to_dict())
    (second / "metrics.jsonl").write_text('{"step": 10, "stale": true}\n')
    code = main(["compare", str(smoke_one_lr), "--out", str(out)])  # continues: one point left
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "completed: 1 point(s) trained now; 2/2" in printed
    # the arms × lengths answer, as results.md's first table, on the console too
    from lstm_jax.compare.report import by_length

    table = by_length("adding", json.loads((out / "results.json").read_text())["rows"])
    assert "\n".join(table) in printed and table[2].startswith("| rnn | ")
    assert (first / "metrics.jsonl").stat().st_mtime_ns == stamp  # not retrained
    results = json.loads((out / "results.json").read_text())
    for f in ("results.md", "results.csv", "differences.csv", "success_vs_T.png",
              "final_by_arm.png", "curves.png"):
        assert (out / f).is_file(), f
    assert (out / "protocol.toml").read_text() == smoke_one_lr.read_text()
    rows = results["rows"]
    assert [r["arm"] for r in rows] == ["rnn", "lstm+chrono"]
    for r, where in zip(rows, (first, second), strict=True):
        lines = read_jsonl(where / "metrics.jsonl")
        assert [x["step"] for x in lines] == [10, 20, 30]
        assert not any("stale" in x for x in lines)
        assert {x["eval_split"] for x in lines} == {"validation"}
        test = json.loads((where / "test_metrics.json").read_text())
        assert (test["split"], test["step"], test["times_scored"]) == ("test", 30, 1)
        assert test["examples"] == 48  # eval.test_size, not the validation size (32)
        assert r["test_per_seed"] == test["metrics"]["loss"]["per_seed"]
        assert r["test_per_seed"] != lines[-1]["eval/loss"]  # test ≠ validation
        hits = [[x["step"] for x in lines if x["eval/loss"][i] < 0.1] for i in range(2)]
        assert r["steps_to_success"] == [h[0] if h else None for h in hits]  # criterion: < 0.1
        assert r["successes"] == sum(bool(h) for h in hits)
        assert r["lr"] == 0.03 and r["past_budget"] is False and r["seeds"] == 2
    # parameters per model, against the closed form (adding: D = 2 inputs, one output; H = 8):
    # G blocks of (D·H + H² + H), plus the head's H + 1
    D, H = 2, 8
    assert [r["parameters"] for r in rows] == [G * (D * H + H * H + H) + H + 1 for G in (1, 4)]
    md = (out / "results.md").read_text()
    assert "| T | arm | parameters | success [95 % Wilson]" in md
    assert "| 10 | rnn | 97 | " in md and "| 10 | lstm+chrono | 361 | " in md
    d = [x for x in results["differences"] if x["quantity"] == "test loss"][0]
    want = [a - b for a, b in zip(rows[0]["test_per_seed"], rows[1]["test_per_seed"], strict=True)]
    assert d["per_seed"] == pytest.approx(want)
    for r, where in zip(rows, (first, second), strict=True):  # the final validation values
        last = read_jsonl(where / "metrics.jsonl")[-1]["eval/loss"]
        assert r["val_final_mean"] == pytest.approx(sum(last) / 2)
    (best,) = results["best_on_validation"]  # chosen on validation, never on test
    want = max(rows, key=lambda r: (r["successes"], -r["val_final_mean"]))
    assert (best["arm"], best["test_mean"]) == (want["arm"], want["test_mean"])
    assert f"on validation at T={want['T']}: **{want['arm']}**" in (out / "results.md").read_text()

    # a third run trains nothing and does not score test again
    res = run_comparison(smoke_one_lr, out, log=lambda m: None)
    assert (res["status"], res["trained"]) == ("completed", 0)
    assert len(read_jsonl(first / "test_log.jsonl")) == 1
    assert not any(r["test_size_not_protocol"] for r in rows)
    # a test score read back that was asked for at another size than eval.test_size is flagged
    rec = json.loads((first / "test_metrics.json").read_text())
    assert rec["size_requested"] == 48
    (first / "test_metrics.json").write_text(json.dumps({**rec, "size_requested": 16}))
    res = collect(proto, out, score_test=False, log=lambda m: None)
    assert [r["test_size_not_protocol"] for r in res["rows"]] == [True, False]
    (first / "test_metrics.json").write_text(json.dumps(rec))
    # scoring test by hand again is refused, and counted when forced
    with pytest.raises(UserError, match="already holds a test score"):
        score(first, "test")
    assert main(["evaluate", str(first), "--split", "test"]) == 2
    assert "already holds a test score" in capsys.readouterr().err
    assert score(first, "test", force=True)["times_scored"] == 2
    assert main(["evaluate", str(first), "--split", "validation"]) == 0  # not limited
    val = json.loads((first / "validation_metrics.json").read_text())
    assert val["metrics"]["loss"]["per_seed"] == pytest.approx(
        read_jsonl(first / "metrics.jsonl")[-1]["eval/loss"], rel=1e-5)  # = training's numbers

    # a point resumed past the declared budget is flagged and credited up to the budget only
    from lstm_jax.train import train

    train(proto.config(proto.points()[0]).replace(steps=40), first, resume=True, progress=False,
          log=lambda m: None)
    flagged = collect(proto, out, score_test=False, log=lambda m: None)["rows"][0]
    assert flagged["past_budget"] is True and flagged["trained_steps"] == 40
    assert flagged["val_final_per_seed"] == read_jsonl(first / "metrics.jsonl")[2]["eval/loss"]


def test_refuses_foreign_point_and_changed_protocol(tmp_path):
    from lstm_jax.io import write_json

    proto = load_protocol(SMOKE)
    out = tmp_path / "cmp"
    p = proto.points()[1]
    where = run_dir(out, p)
    where.mkdir(parents=True)
    write_json(where / "config.json", proto.config(p).replace(hidden=16).to_dict())
    with pytest.raises(UserError, match="hidden was 16, the protocol says 8"):
        run_comparison(SMOKE, out, log=lambda m: None)
    assert not run_dir(out, proto.points()[0]).exists()  # refused before training anything
    # more steps (a plain --resume) is not a foreign run: it is flagged instead
    write_json(where / "config.json", proto.config(p).replace(steps=300).to_dict())
    from lstm_jax.compare.run import check_point

    check_point(proto.config(p), where)
    changed = tmp_path / "changed.toml"
    changed.write_text(SMOKE.read_text().replace("below = 0.1", "below = 0.2"))
    with pytest.raises(UserError, match="another protocol.*tasks"):
        run_comparison(changed, out, log=lambda m: None)


@pytest.mark.slow
def test_best_on_validation_ignores_test():
    from lstm_jax.compare.protocol import Criterion
    from lstm_jax.compare.run import _best_on_validation

    def row(arm, successes, finals, test):
        return {"task": "t", "T": 5, "arm": arm, "lr": 1e-3, "successes": successes,
                "val_final_per_seed": finals, "val_final_mean": sum(finals) / len(finals),
                "test_mean": test, "test_sd": 0.0, "test_per_seed": [test]}

    acc = Criterion("accuracy", "at_least", 0.85, "final")
    rows = [row("a", 2, [0.86, 0.84], 0.99), row("b", 2, [0.87, 0.86], 0.50),
            row("c", 1, [0.99, 0.70], 0.99), row("d", 2, [0.99, math.nan], 0.99)]
    assert _best_on_validation(rows, acc)["arm"] == "b"  # ties on successes: higher mean
    mse = Criterion("mse", "below", 0.01)
    rows = [row("a", 0, [0.2, 0.3], 0.0), row("b", 0, [0.1, 0.1], 1.0)]
    assert _best_on_validation(rows, mse)["arm"] == "b"  # lower is better


def test_the_imdb_protocol_shrunk_runs_end_to_end_on_a_small_archive(tmp_path, monkeypatch):
    """experiments/protocols/imdb.toml with its sizes shrunk (two of its arms, one rate) on a
    small archive of the original layout: each arm trains with its own readout, is evaluated on
    the validation hold-out during training, and the whole test split is scored once."""
    from lstm_jax.tasks import imdb as imdb_task
    from tests.imdb_protocol import shrunk_imdb_protocol
    from tests.test_imdb_task import V, write_archive

    monkeypatch.setenv("LSTM_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(imdb_task, "EXPECTED_SIZES", None)
    monkeypatch.setenv("LSTM_JAX_IMDB", str(write_archive(tmp_path / "aclImdb_v1.tar.gz",
                                                          n_train=20, n_test=9)))
    keep = ("rnn/last", "lstm/mean")
    path = shrunk_imdb_protocol(tmp_path / "imdb_small.toml", keep, lr=3e-3, vocab_size=V)
    proto = load_protocol(path)
    assert [a.name for a in proto.arms] == list(keep)

    res = run_comparison(path, tmp_path / "cmp", log=lambda m: None)
    assert (res["status"], res["trained"]) == ("completed", 2)
    for point, readout in zip(proto.points(), ("last", "mean"), strict=True):
        where = run_dir(tmp_path / "cmp", point)
        cfg = json.loads((where / "config.json").read_text())
        assert (cfg["task"], cfg["readout"], cfg["seq_len"]) == ("imdb", readout, 12)
        assert {x["eval_split"] for x in read_jsonl(where / "metrics.jsonl")} == {"validation"}
        test = json.loads((where / "test_metrics.json").read_text())
        assert (test["split"], test["times_scored"], test["examples"]) == ("test", 1, 9)
        for acc in test["metrics"]["accuracy"]["per_seed"]:  # whole reviews out of all 9
            assert acc * 9 == pytest.approx(round(acc * 9), abs=1e-4)
    assert [r["arm"] for r in res["results"]["rows"]] == list(keep)

    # per-review test outcomes: they recount the recorded score, and pair the arms by review
    import numpy as np

    from lstm_jax.evaluate import per_example, per_example_path

    rows = res["results"]["rows"]
    per = [per_example(r["run_dir"], "test") for r in rows]
    for r, p in zip(rows, per, strict=True):
        assert p["correct"].shape == (2, 9) and not p["recomputed"]
        np.testing.assert_allclose(p["correct"].mean(axis=1), r["test_per_seed"], atol=1e-6)
    by_review = [d for d in res["results"]["differences"]
                 if d["quantity"] == "test accuracy, paired by review"]
    assert len(by_review) == 1 and by_review[0]["n"] == 9
    assert by_review[0]["mean"] == pytest.approx(rows[0]["test_mean"] - rows[1]["test_mean"])

    # a run scored before the file existed: the outcomes are recomputed at the recorded step and
    # must reproduce the recorded accuracy; test is not counted as scored again
    where = Path(rows[0]["run_dir"])
    per_example_path(where, "test").unlink()
    again = per_example(where, "test")
    np.testing.assert_array_equal(again["correct"], per[0]["correct"])
    assert again["recomputed"]
    assert json.loads((where / "test_metrics.json").read_text())["times_scored"] == 1
    per_example_path(where, "test").unlink()
    rec = json.loads((where / "test_metrics.json").read_text())
    rec["metrics"]["accuracy"]["per_seed"][0] += 1 / 9  # a record the checkpoint does not match
    (where / "test_metrics.json").write_text(json.dumps(rec))
    with pytest.raises(UserError, match="not the recorded"):
        per_example(where, "test")


def test_scored_at_size_reads_old_records_and_whole_splits():
    """Records written before ``size_requested`` existed are judged by their example count; an
    exact whole-split score (IMDB) matches any test_size that asks for at least the whole split."""
    from lstm_jax.compare.run import _scored_at_size

    assert _scored_at_size({"examples": 4096}, 4096)
    assert not _scored_at_size({"examples": 2048}, 4096)
    assert not _scored_at_size({"examples": 4096, "size_requested": 2048}, 4096)
    whole = {"examples": 25000, "size_requested": 25000, "splits": {"sizes": {"test": 25000}}}
    assert _scored_at_size(whole, 25000) and _scored_at_size({**whole, "size_requested": None}, 30000)
    assert not _scored_at_size({**whole, "examples": 1024, "size_requested": 1024}, 25000)


def test_processes_share_a_comparison_point_by_point(smoke_one_lr, tmp_path, capsys):
    """A point whose run lock another process holds is passed over, not refused or retrained;
    the comparison says it is shared, and a later call trains what is left."""
    from lstm_jax.cli import main
    from lstm_jax.io import run_lock

    out = tmp_path / "cmp"
    first, second = (run_dir(out, p) for p in load_protocol(smoke_one_lr).points())
    first.mkdir(parents=True)
    lines = []
    with run_lock(first):  # what a second `lstm-jax compare` training this point holds
        res = run_comparison(smoke_one_lr, out, log=lines.append)
        assert (res["status"], res["trained"]) == ("shared", 1)
        assert [r["status"] for r in res["results"]["rows"]] == ["pending", "done"]
        assert not (first / "config.json").exists() and (second / "summary.json").is_file()
        assert any("being trained by other processes" in x and first.name in x for x in lines)
        code = main(["compare", str(smoke_one_lr), "--out", str(out)])  # the CLI says so too
        assert code == 0 and "shared: 0 point(s) trained now; 1/2" in capsys.readouterr().out
    stamp = (second / "metrics.jsonl").stat().st_mtime_ns
    res = run_comparison(smoke_one_lr, out, log=lambda m: None)
    assert (res["status"], res["trained"]) == ("completed", 1)
    assert [r["status"] for r in res["results"]["rows"]] == ["done", "done"]
    assert (second / "metrics.jsonl").stat().st_mtime_ns == stamp  # not retrained


def test_a_point_finished_before_its_claim_is_not_trained_again(smoke_one_lr, tmp_path,
                                                                monkeypatch):
    """The state is read again under the lock: a point another process finished between this
    process's first look and its claim is read, not resumed."""
    import lstm_jax.compare.run as run_mod

    out = tmp_path / "cmp"
    run_comparison(smoke_one_lr, out, log=lambda m: None)
    first = run_dir(out, load_protocol(smoke_one_lr).points()[0])
    stamp = (first / "metrics.jsonl").stat().st_mtime_ns
    real, calls = run_mod.point_status, []

    def stale_first_look(where, budget):  # the first look at each point predates its finish
        calls.append(where)
        return "partial" if calls.count(where) == 1 else real(where, budget)

    monkeypatch.setattr(run_mod, "point_status", stale_first_look)
    res = run_comparison(smoke_one_lr, out, log=lambda m: None)
    assert (res["status"], res["trained"]) == ("completed", 0)
    assert (first / "metrics.jsonl").stat().st_mtime_ns == stamp
    # parameters per model reach the rows (closed form in the test above: rnn 97, lstm 361)
    assert [r["parameters"] for r in res["results"]["rows"]] == [97, 361]


def test_a_yaml_comparison_keeps_its_yaml_and_refuses_a_changed_protocol(tmp_path):
    from test_compare_protocol import SMOKE_YAML

    path, out = tmp_path / "smoke.yaml", tmp_path / "cmp"
    path.write_text(SMOKE_YAML)
    run_comparison(path, out, max_points=0, log=lambda m: None)
    assert (out / "protocol.yaml").read_text() == SMOKE_YAML
    assert not (out / "protocol.toml").exists()
    run_comparison(SMOKE, out, max_points=0, log=lambda m: None)  # the same protocol, in TOML
    changed = tmp_path / "changed.yaml"
    changed.write_text(SMOKE_YAML.replace("steps: 30", "steps: 40"))
    with pytest.raises(UserError, match="another protocol.*differ: steps"):
        run_comparison(changed, out, max_points=0, log=lambda m: None)


def test_test_is_scored_once_when_another_process_holds_the_point(smoke_one_lr, tmp_path):
    """Two processes finishing together both reach the scoring of test: the second waits for the
    first's lock and then reads its score instead of scoring again (``times_scored`` stays 1);
    ``evaluate.score`` itself refuses a run another process holds."""
    import threading

    from lstm_jax.evaluate import score
    from lstm_jax.io import run_lock

    out = tmp_path / "cmp"
    run_comparison(smoke_one_lr, out, score_test=False, log=lambda m: None)
    proto = load_protocol(smoke_one_lr)
    first = run_dir(out, proto.points()[0])
    assert not (first / "test_metrics.json").exists()
    held, release = threading.Event(), threading.Event()

    def other_process():  # holds the point's lock, scores test, lets go
        with run_lock(first):
            held.set()
            release.wait(10)
            score(first, "test", size=48, lock=False)

    thread = threading.Thread(target=other_process)
    thread.start()
    held.wait(10)
    with pytest.raises(UserError, match="in use by another lstm-jax process"):
        score(first, "test")
    assert score(first, "validation", size=32)["split"] == "validation"  # reading is allowed
    lines = []
    timer = threading.Timer(0.5, release.set)
    timer.start()
    res = collect(proto, out, log=lines.append)
    thread.join()
    assert any(x.startswith("  waiting for PID") for x in lines)
    assert not any(f"scoring test once: {first}" in x for x in lines)
    assert len(read_jsonl(first / "test_log.jsonl")) == 1
    assert res["rows"][0]["test_times_scored"] == 1


def test_a_point_let_go_unfinished_by_another_process_is_taken_over(smoke_one_lr, tmp_path):
    """The other process holds the first point, then stops (its lock goes) while this one trains
    the second: this process comes back for the first instead of calling it someone else's."""
    import threading

    from lstm_jax.io import run_lock

    out = tmp_path / "cmp"
    first, second = (run_dir(out, p) for p in load_protocol(smoke_one_lr).points())
    first.mkdir(parents=True)
    held, second_started = threading.Event(), threading.Event()

    def other_process():
        with run_lock(first):
            held.set()
            second_started.wait(30)  # it stops while this process trains the second point

    thread = threading.Thread(target=other_process)
    thread.start()
    held.wait(10)
    lines = []

    def log(msg):
        lines.append(msg)
        if msg.startswith("[2/2]"):
            second_started.set()
            thread.join()

    res = run_comparison(smoke_one_lr, out, log=log)
    assert (res["status"], res["trained"]) == ("completed", 2)
    assert [x[:5] for x in lines if x.startswith("[")] == ["[2/2]", "[1/2]"]
    assert [r["status"] for r in res["results"]["rows"]] == ["done", "done"]
