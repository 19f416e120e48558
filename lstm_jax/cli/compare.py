"""``lstm-jax compare PROTOCOL.toml --out DIR``: arms × tasks × lengths × seeds under one protocol.

Trains every (task, T, arm, lr) point declared in the protocol (the same budget and batch for every
arm, the seeds vmapped in one program), picks each arm's learning rate on validation, scores test
once per selected configuration, and writes results.md/.csv/.json, differences.csv,
success_vs_T.png and a copy of the protocol into DIR. Run the same command again to continue an
interrupted comparison; finished points are read, not retrained. Run it in two terminals to
share the points between two processes (each claims the points it trains). See docs/compare.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lstm_jax.cli.common import nonneg_int


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare arms under one declared protocol (TOML or YAML)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("protocol", help="the protocol file (TOML or YAML), e.g. "
                                          "experiments/protocols/adding.toml")
    p.add_argument("--out", required=True, help="comparison directory (resumable)")
    p.add_argument("--max-points", type=nonneg_int,
                   help="train at most N points in this call, then stop (run again to "
                        "continue; 0: only rewrite the tables and figures; default: all)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="each point's progress: a bar on a terminal, a line every 10 %% of its "
                        "steps in a log (default: on)")
    p.add_argument("--status", action="store_true",
                   help="print every point's state and an estimate of the wall time left; "
                        "train nothing, write nothing")
    p.set_defaults(func=run)


def run(args) -> int:
    from lstm_jax.compare import run_comparison
    from lstm_jax.compare.report import by_length

    if args.status:
        return status(args)
    res = run_comparison(args.protocol, args.out, max_points=args.max_points,
                         progress=args.progress)
    rows = res["results"]["rows"]
    done = sum(r["status"] == "done" for r in rows)
    for task in dict.fromkeys(r["task"] for r in rows):
        print(f"{task}: seeds that succeeded · test mean, per arm and T", *by_length(task, rows),
              sep="\n")
    print(f"{res['status']}: {res['trained']} point(s) trained now; {done}/{len(rows)} "
          f"(task, T, arm) configurations done")
    print(f"wrote {args.out}/results.md, results.csv, results.json, differences.csv, "
          f"success_vs_T.png, final_by_arm.png, curves.png, protocol{Path(args.protocol).suffix.lower()}")
    return 130 if res["status"] == "interrupted" else 0


def status(args) -> int:
    from lstm_jax.compare import load_protocol
    from lstm_jax.compare.status import format_status, status_rows
    from lstm_jax.errors import UserError

    proto = load_protocol(args.protocol)
    out = Path(args.out)
    if not out.is_dir():
        raise UserError(f"--out={args.out!r} is not a directory; nothing has been run there yet")
    print(format_status(proto, status_rows(proto, out)))
    return 0
