"""Paired differences between one arm of one comparison and one arm of another, by seed.

Two comparisons (``lstm-jax compare``) that share seeds, budget, task lengths and test set (the
same ``eval_seed`` and test size, hence the same test sequences) can be paired seed by seed:
for each T both finished, the test metric of arm A minus arm B per seed and its percentile
bootstrap CI (:func:`lstm_jax.compare.stats.paired_bootstrap`), and the difference in successes.
Refused when the two points' configurations differ in anything that changes the test set or the
seeds. Writes a JSON file.

    python experiments/paired_across.py \\
        experiments/results/compare_adding_indrnn_paper:indrnn2+paper \\
        experiments/results/compare_adding_indrnn_paper_init:indrnn2+paper_init \\
        --out experiments/results/compare_adding_indrnn_paper_init/paired_vs_uniform_init.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lstm_jax.compare.stats import paired_bootstrap
from lstm_jax.errors import UserError
from lstm_jax.io import read_json, write_json

#: config fields that decide the seeds and the test sequences: they must agree to pair
MUST_AGREE = ("task", "seq_len", "seed", "seeds", "eval_seed", "steps", "batch")


def _rows(spec: str) -> tuple[str, dict[int, dict]]:
    """``DIR:ARM`` → (spec, {T: row}) for the arm's finished points."""
    folder, _, arm = spec.rpartition(":")
    if not folder or not arm:
        raise UserError(f"{spec!r} must be COMPARISON_DIR:ARM")
    rows = read_json(Path(folder) / "results.json")["rows"]
    mine = {r["T"]: r for r in rows if r["arm"] == arm and r["status"] == "done"}
    if not any(r["arm"] == arm for r in rows):
        raise UserError(f"{folder} has no arm {arm!r}; it has "
                        f"{sorted({r['arm'] for r in rows})}")
    return spec, mine


def _config(row: dict) -> dict:
    return read_json(Path(row["run_dir"]) / "config.json")


def paired(a_spec: str, b_spec: str) -> dict:
    """Per T both finished: A − B test metric by seed (mean, CI), successes of each."""
    a_name, a = _rows(a_spec)
    b_name, b = _rows(b_spec)
    out = {"a": a_name, "b": b_name, "by_T": []}
    for T in sorted(set(a) & set(b)):
        ra, rb = a[T], b[T]
        ca, cb = _config(ra), _config(rb)
        differ = [f for f in MUST_AGREE if ca.get(f) != cb.get(f)]
        if differ or ra["test_examples"] != rb["test_examples"]:
            raise UserError(f"T={T}: the two points differ in {differ or ['test_examples']}; "
                            "their seeds or test sets are not the same, so they cannot be paired")
        if ra["test_metric"] != rb["test_metric"]:
            raise UserError(f"T={T}: test metrics differ ({ra['test_metric']} vs "
                            f"{rb['test_metric']})")
        diffs = [x - y for x, y in zip(ra["test_per_seed"], rb["test_per_seed"], strict=True)]
        out["by_T"].append({
            "T": T, "metric": ra["test_metric"], "a_per_seed": ra["test_per_seed"],
            "b_per_seed": rb["test_per_seed"], "difference": paired_bootstrap(diffs),
            "successes": {"a": ra["successes"], "b": rb["successes"], "seeds": ra["seeds"]},
            "median_steps_to_success": {"a": ra["median_steps_to_success"],
                                        "b": rb["median_steps_to_success"]},
        })
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="COMPARISON_DIR:ARM (the minuend)")
    p.add_argument("b", help="COMPARISON_DIR:ARM (the subtrahend)")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args(argv)
    res = paired(args.a, args.b)
    write_json(args.out, res)
    for r in res["by_T"]:
        d = r["difference"]
        print(f"T={r['T']}: A − B {r['metric']} {d['mean']:+.4g} (95 % CI {d['low']:+.4g} to "
              f"{d['high']:+.4g}); successes {r['successes']['a']}/{r['successes']['seeds']} vs "
              f"{r['successes']['b']}/{r['successes']['seeds']}")
    return res


if __name__ == "__main__":
    main()
