"""experiments/paired_across.py on two hand-written comparison folders: differences by seed,
and the refusal to pair points whose seeds or test sets differ."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import paired_across  # noqa: E402

from lstm_jax.errors import UserError  # noqa: E402


def _comparison(root: Path, arm: str, per_seed: dict[int, list[float]], **config) -> Path:
    rows = []
    for T, values in per_seed.items():
        run = root / f"T{T}"
        run.mkdir(parents=True)
        cfg = {"task": "adding", "seq_len": T, "seed": 0, "seeds": len(values),
               "eval_seed": 1_000_003, "steps": 100, "batch": 8, **config}
        (run / "config.json").write_text(json.dumps(cfg))
        rows.append({"task": "adding", "T": T, "arm": arm, "status": "done", "run_dir": str(run),
                     "test_metric": "loss", "test_per_seed": values, "test_examples": 64,
                     "successes": sum(v < 0.01 for v in values), "seeds": len(values),
                     "median_steps_to_success": 50})
    (root / "results.json").write_text(json.dumps({"rows": rows}))
    return root


def test_differences_by_seed_and_refusals(tmp_path):
    a = _comparison(tmp_path / "a", "x", {50: [0.3, 0.2, 0.1], 100: [0.5, 0.5, 0.5]})
    b = _comparison(tmp_path / "b", "y", {50: [0.1, 0.1, 0.1], 200: [0.1, 0.1, 0.1]})
    res = paired_across.paired(f"{a}:x", f"{b}:y")
    (only,) = res["by_T"]  # the lengths both finished
    assert only["T"] == 50 and only["difference"]["mean"] == pytest.approx(0.1)
    assert only["successes"] == {"a": 0, "b": 0, "seeds": 3}
    low, high = only["difference"]["low"], only["difference"]["high"]
    assert 0.0 <= low <= 0.1 <= high <= 0.2  # the bootstrap of (0.2, 0.1, 0.0)
    other = _comparison(tmp_path / "c", "y", {50: [0.1, 0.1, 0.1]}, eval_seed=7)
    with pytest.raises(UserError, match="differ in \\['eval_seed'\\]"):
        paired_across.paired(f"{a}:x", f"{other}:y")
    with pytest.raises(UserError, match="has no arm 'z'"):
        paired_across.paired(f"{a}:z", f"{b}:y")
    out = tmp_path / "p.json"
    paired_across.main([f"{a}:x", f"{b}:y", "--out", str(out)])
    assert json.loads(out.read_text())["by_T"][0]["T"] == 50
