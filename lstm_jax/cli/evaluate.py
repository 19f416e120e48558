"""``lstm-jax evaluate RUN_DIR --split test``: score a trained run on a held-out split, once.

Training reports validation metrics only; this scores the final configuration on the test split
and writes ``RUN_DIR/test_metrics.json`` (checkpoint step, mean ± sd over seeds, how many times
test was scored). A second test scoring is refused unless ``--force`` (and is counted).
"""

from __future__ import annotations

import argparse

from lstm_jax.cli.common import positive_int


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score a trained run on the test (or validation) split",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run directory written by lstm-jax train")
    p.add_argument("--split", default="test", help="test (default; once) or validation")
    p.add_argument("--step", type=positive_int, help="checkpoint step (default: the newest)")
    p.add_argument("--size", type=positive_int,
                   help="held-out examples (default: the whole split of a data set, else the "
                        "run's --eval-size)")
    p.add_argument("--force", action="store_true", help="score test again (counted)")
    p.set_defaults(func=run)


def run(args) -> int:
    from lstm_jax.evaluate import metrics_path, score

    rec = score(args.run_dir, args.split, step=args.step, size=args.size, force=args.force)
    for k, v in rec["metrics"].items():
        print(f"{args.split}/{k}: {v['mean']:.4g} ± {v['sd']:.2g} over {len(v['per_seed'])} "
              f"seed(s) (step {rec['step']}, {rec['examples']} examples)")
    if rec["times_scored"] and rec["times_scored"] > 1:
        print(f"note: test has now been scored {rec['times_scored']} times for this run")
    print(f"wrote {metrics_path(args.run_dir, args.split)}")
    return 0
