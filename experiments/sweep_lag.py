"""Success against sequence length: RNN, LSTM, GRU on the adding and copy problems.

SUPERSEDED by ``lstm-jax compare`` (:mod:`lstm_jax.compare`, docs/compare.md) with the declared
protocols in ``experiments/protocols/`` (adding.toml, copy.toml): validation/test splits, one
budget and learning-rate grid for every arm, initialisations as named arms, success criteria,
Wilson intervals and paired bootstrap CIs. This script is kept so the runs it made can still be
read (``--collect``); its numbers are final *validation* losses at one learning rate, with the
RNN at its defaults and chrono given to the gated cells (``--chrono``), so do not quote them as a
fair comparison.

For every (task, arch, T) this trains ``--seeds`` models in one compiled program
(:func:`lstm_jax.train.train`), then writes into ``--out``::

    sweep_config.json     the sweep's arguments and the machine it ran on
    results.csv/.json     one row per (task, arch, T): final eval loss mean ± sd over seeds, the
                          memoryless baseline, their ratio, recall accuracy (copy), wall time
    results.md            the same as markdown tables (T down, architectures across)
    lag_sweep.png         final loss / baseline against T (from results.json)
    <task>_<arch>_T<T>/   each run's own files (config, metrics, checkpoints, curves)

A run directory that already holds a completed run is read, not retrained; an interrupted one is
resumed. Anchors (issue 4): Bai et al. (2018) report MSE 0.177 (RNN) and 0.164 (LSTM, failed) on
adding at T=600; Hochreiter & Schmidhuber (1997) solved T=1000; Tallec & Ollivier (2018) beat
the copy baseline at T=500 and 2000 with chrono init.

    python experiments/sweep_lag.py --quick                 # minutes: tiny sizes
    python experiments/sweep_lag.py --chrono --out runs/sweep_lag   # the full sweep (hours)
    python experiments/sweep_lag.py --collect --out runs/sweep_lag  # results of every finished run
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="adding,copy")
    p.add_argument("--archs", default="rnn,lstm,gru")
    p.add_argument("--lengths", default="50,100,200,500,1000")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--chrono", action="store_true",
                   help="chrono init (Tallec & Ollivier 2018) of LSTM/GRU with T_max = the lag")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes: T ∈ {10, 20, 50}, 150 steps, H = 16, 2 seeds")
    p.add_argument("--out", default="runs/sweep_lag")
    p.add_argument("--collect", action="store_true",
                   help="train nothing: rebuild the results and the plot from every completed "
                        "run under --out (points from several invocations)")
    p.add_argument("--include", default="",
                   help="with --collect: comma list of other sweep folders whose completed runs "
                        "join the table and the plot (e.g. adding and copy swept separately)")
    args = p.parse_args(argv)
    if args.quick:
        args.lengths, args.steps, args.hidden, args.seeds = "10,20,50", 150, 16, 2
        args.batch, args.eval_every, args.lr = 32, 50, 1e-2
    return args


def run_point(args, task: str, arch: str, T: int, out: Path) -> dict:
    from lstm_jax.config import TrainConfig
    from lstm_jax.train import train

    lag = T + 20 if task == "copy" else T
    cfg = TrainConfig(task=task, seq_len=T, arch=arch, hidden=args.hidden, steps=args.steps,
                      batch=args.batch, lr=args.lr, clip=args.clip, seeds=args.seeds,
                      eval_every=args.eval_every, checkpoint_every=args.eval_every * 4,
                      eval_size=max(256, args.batch),
                      chrono=float(max(lag, 3)) if args.chrono and arch != "rnn" else None)
    run_dir = out / f"{task}_{arch}_T{T}"
    check_same_settings(cfg, run_dir)
    if not is_completed(run_dir):
        resume = (run_dir / "checkpoints").is_dir()
        train(cfg, run_dir, resume=resume, progress=False)
    return row_from_run(run_dir)


def check_same_settings(cfg, run_dir: Path) -> None:
    """Stop if ``run_dir`` holds a run of other settings (a stale point must not be reused).

    ``impl`` may differ: both backward passes compute the same numbers to float rounding.
    """
    from lstm_jax.config import TrainConfig
    from lstm_jax.io import read_json

    path = run_dir / "config.json"
    if not path.is_file():
        return
    saved = TrainConfig.from_dict(read_json(path))
    diff = {f: (getattr(saved, f), getattr(cfg, f)) for f in cfg.to_dict()
            if f != "impl" and getattr(saved, f) != getattr(cfg, f)}
    if diff:
        what = "; ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise SystemExit(f"{run_dir} holds a run with other settings ({what}); "
                         "use another --out or delete it")


def is_completed(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that trained to its last step."""
    from lstm_jax.io import read_json

    path = run_dir / "summary.json"
    return path.is_file() and read_json(path).get("status") == "completed"


def row_from_run(run_dir: Path) -> dict:
    """One results row from a completed run's ``config.json`` and ``summary.json``."""
    from lstm_jax.io import read_json
    from lstm_jax.metrics import mean_sd

    cfg, summary = read_json(run_dir / "config.json"), read_json(run_dir / "summary.json")
    final, base = summary["final"], summary["task"]["baseline"]
    ratio = mean_sd(v / base for v in final["eval/loss"]["per_seed"])
    mean, sd = ratio["mean"], ratio["sd"]
    return {"task": cfg["task"], "arch": cfg["arch"], "seq_len": cfg["seq_len"],
            "seeds": cfg["seeds"], "steps": summary["steps"], "hidden": cfg["hidden"],
            "chrono": cfg["chrono"], "loss_mean": final["eval/loss"]["mean"],
            "loss_sd": final["eval/loss"]["sd"], "baseline": base,
            "loss_over_baseline_mean": mean, "loss_over_baseline_sd": sd,
            "accuracy_mean": final.get("eval/accuracy", {}).get("mean"),
            "wall_time_s": summary["wall_time_s"],
            "first_step_s": summary.get("this_session", {}).get("first_step_s"),
            "steps_per_s": summary.get("this_session", {}).get("steps_per_s_after_first"),
            "run_dir": str(run_dir)}


def main(argv=None) -> int:
    args = parse_args(argv)
    from lstm_jax.io import ensure_out_dir, write_json
    from lstm_jax.machine import machine_info

    out = ensure_out_dir(args.out)
    if args.collect:
        rows = collect_rows(out, *[Path(d) for d in args.include.split(",") if d])
        if not rows:
            raise SystemExit(f"--collect: no completed runs under {out}")
        write_results(out, rows)
        print(f"collected {len(rows)} completed runs; wrote {out}/results.csv, results.json, "
              "results.md, lag_sweep.png")
        return 0
    write_json(out / "sweep_config.json", {"args": vars(args), "machine": machine_info()})
    rows = []
    points = [(t, a, int(T)) for t in args.tasks.split(",") for a in args.archs.split(",")
              for T in args.lengths.split(",")]
    for i, (task, arch, T) in enumerate(points, 1):
        t0 = time.perf_counter()
        row = run_point(args, task, arch, T, out)
        rows.append(row)
        print(f"[{i}/{len(points)}] {task:>6} {arch:>4} T={T:<5} loss/baseline "
              f"{row['loss_over_baseline_mean']:.3g} ± {row['loss_over_baseline_sd']:.2g}  "
              f"({time.perf_counter() - t0:.1f} s incl. compile; train {row['wall_time_s']:.1f} s)",
              flush=True)
        write_results(out, rows, plot=False)
    write_results(out, rows)
    print(f"wrote {out}/results.csv, results.json, results.md, lag_sweep.png")
    return 0


def collect_rows(*dirs: Path) -> list[dict]:
    """Rows for every completed ``<task>_<arch>_T<T>`` run under ``dirs`` (task, arch, T order)."""
    order = {"rnn": 0, "lstm": 1, "gru": 2}
    rows = [row_from_run(d) for out in dirs for d in sorted(out.glob("*_T*")) if is_completed(d)]
    return sorted(rows, key=lambda r: (r["task"], order.get(r["arch"], 9), r["seq_len"]))


def write_results(out: Path, rows: list[dict], plot: bool = True) -> None:
    """``results.json``, ``results.csv`` and (``plot``) ``lag_sweep.png`` from ``rows``."""
    from lstm_jax.io import atomic_write_text, write_json
    from lstm_jax.plots.training import plot_lag_sweep

    write_json(out / "results.json", rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
    atomic_write_text(out / "results.md", markdown_table(rows))
    if plot:
        plot_lag_sweep(json.loads((out / "results.json").read_text()), out / "lag_sweep.png")


def markdown_table(rows: list[dict]) -> str:
    """Per task: final loss / baseline (mean ± sd over seeds; copy adds recall accuracy) and the
    training wall time of each point, T down, architectures across."""
    from lstm_jax.cells import ARCHS

    archs = [a for a in ARCHS if any(r["arch"] == a for r in rows)]  # registry order
    lines = []
    for task in sorted({r["task"] for r in rows}):
        lines += [f"**{task}** — final eval loss / memoryless baseline (mean ± sd over seeds); "
                  "steps, seeds; training wall time", "",
                  "| T | " + " | ".join(archs) + " |", "|---" * (len(archs) + 1) + "|"]
        for T in sorted({r["seq_len"] for r in rows if r["task"] == task}):
            cells = []
            for a in archs:
                r = next((r for r in rows if (r["task"], r["arch"], r["seq_len"]) == (task, a, T)),
                         None)
                if r is None:
                    cells.append("—")
                    continue
                acc = (f", recall {100 * r['accuracy_mean']:.0f} %"
                       if r.get("accuracy_mean") is not None else "")
                cells.append(f"{r['loss_over_baseline_mean']:.3g} ± {r['loss_over_baseline_sd']:.2g}"
                             f"{acc} ({r['steps']} steps, {r['seeds']} seeds; "
                             f"{r['wall_time_s'] / 60:.1f} min)")
            lines.append(f"| {T} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
