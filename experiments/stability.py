"""Training stability: how many seeds diverge without gradient clipping, and what clipping changes.

The essay says exploding gradients are "easily mitigated with gradient clipping" and calls the
RNN's training "poor on long sequences", the LSTM's "stable". We train each architecture on the
adding problem with plain SGD + momentum (the setting of Pascanu et al. 2013, where clipping was
proposed; Adam's per-coordinate normalisation hides most explosions) at a deliberately high
learning rate, each seed as its own run (so one seed's divergence does not stop the others),
once with ``clip=None`` and once with global-norm clipping at 1.0. The tanh RNN starts from a
recurrent matrix of scale 1.5 (spectral norm 1.5: the regime where ‖∂h_T/∂h_{T−k}‖ may grow).

A run *diverged* when the training loop stopped it on a non-finite loss or gradient
(``summary.json`` status ``"diverged"``, :class:`lstm_jax.train.Diverged`); a run that finished
*failed* when its final eval loss is not below the task's baseline (1/6 for adding).

Writes ``OUT/results.json`` (config, one row per (arch, clip, seed): status, diverged-at step,
final loss / baseline) and ``OUT/stability.png``. Completed runs under ``OUT/runs`` are reused.

    python experiments/stability.py --out runs/reproduce/stability            # T=100, 3 seeds, 500 steps
    python experiments/stability.py --quick --out runs/reproduce/stability    # T=50, 2 seeds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

SETTINGS = {"rnn": {"arch": "rnn", "recurrent_scale": 1.5}, "lstm": {"arch": "lstm"},
            "gru": {"arch": "gru"}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="rnn,lstm,gru")
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (momentum 0.9)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--clips", default="none,1.0", help="comma-separated: none or a max norm")
    p.add_argument("--quick", action="store_true", help="T=50, 200 steps, H=32, 2 seeds")
    p.add_argument("--out", default="runs/reproduce/stability")
    args = p.parse_args(argv)
    if args.quick:
        args.seq_len, args.steps, args.hidden, args.seeds = 50, 200, 32, 2
    return args


def run_one(args, name: str, clip: float | None, seed: int, out: Path) -> dict:
    from lstm_jax.config import TrainConfig
    from lstm_jax.io import read_json
    from lstm_jax.train import Diverged, train

    cfg = TrainConfig(task="adding", seq_len=args.seq_len, hidden=args.hidden, steps=args.steps,
                      batch=args.batch, optimizer="sgd", lr=args.lr, momentum=0.9, clip=clip,
                      seed=seed, eval_every=max(args.steps // 4, 1), eval_size=256,
                      checkpoint_every=args.steps, keep_checkpoints=1, **SETTINGS[name])
    run_dir = out / "runs" / f"{name}_clip{clip or 'none'}_seed{seed}"
    path = run_dir / "summary.json"
    t0 = time.perf_counter()
    if not (path.is_file() and read_json(path).get("status") in ("completed", "diverged")):
        try:
            train(cfg, run_dir, resume=(run_dir / "checkpoints").is_dir()
                  and any((run_dir / "checkpoints").iterdir()), progress=False,
                  log=lambda s: None)
        except Diverged:
            pass
    s = read_json(path)
    ratio = s.get("eval_loss_over_baseline")
    return {"arch": name, "clip": clip, "seed": seed, "status": s["status"],
            "diverged_at_step": s.get("diverged_at_step"),
            "loss_over_baseline": ratio if s["status"] == "completed" else None,
            "failed": s["status"] != "completed" or ratio is None or ratio >= 1.0,
            "seconds": round(time.perf_counter() - t0, 2), "config": cfg.to_dict()}


def summarise(rows: list[dict]) -> list[dict]:
    """Per (arch, clip): fraction diverged, fraction failed, median loss/baseline of finished."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["arch"], r["clip"]), []).append(r)
    out = []
    for (arch, clip), rs in groups.items():
        fin = sorted(r["loss_over_baseline"] for r in rs if r["loss_over_baseline"] is not None)
        out.append({"arch": arch, "clip": clip, "seeds": len(rs),
                    "diverged": sum(r["status"] == "diverged" for r in rs),
                    "diverged_fraction": sum(r["status"] == "diverged" for r in rs) / len(rs),
                    "failed_fraction": sum(r["failed"] for r in rs) / len(rs),
                    "median_loss_over_baseline": fin[len(fin) // 2] if fin else None})
    return out


def plot(res: dict, path: Path) -> Path:
    import numpy as np

    from lstm_jax.plots.common import ARCH_COLORS, save
    from lstm_jax.plots.style import legend_outside, new_figure, title

    fig, ax = new_figure(8, 3.8)
    ax.grid(False)
    summ = res["summary"]
    archs = list(dict.fromkeys(s["arch"] for s in summ))
    w = 0.38
    for j, clip in enumerate((None, 1.0)):
        found = [next((s for s in summ if s["arch"] == a and s["clip"] == clip), None)
                 for a in archs]
        vals = [np.nan if s is None else s["diverged_fraction"] for s in found]
        xs = np.arange(len(archs)) + (j - 0.5) * w
        ax.bar(xs, vals, w, color=[ARCH_COLORS[a] for a in archs],
               alpha=1.0 if clip is None else 0.45, hatch=None if clip is None else "//",
               edgecolor="k", label="no clipping" if clip is None else "clip global norm 1.0")
        for x, s in zip(xs, found, strict=True):
            if s is not None:
                ax.text(x, s["diverged_fraction"] + 0.02, f"{s['diverged']}/{s['seeds']}"
                        + ("" if clip is None else " (clip)"), ha="center", fontsize=8)
    c = res["config"]
    ax.set_xticks(np.arange(len(archs)),
                  [("tanh RNN (scale 1.5)" if a == "rnn" else a.upper()) for a in archs])
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("architecture")
    ax.set_ylabel("fraction of seeds diverged")
    ax.set_title(title(f"Divergence on adding, SGD lr={c['lr']} momentum 0.9", T=c["seq_len"],
                       H=c.get("hidden"), init="RNN recurrent scale 1.5",
                       extra=f"{c['steps']} steps, {c['seeds']} seeds"))
    legend_outside(ax)
    return save(fig, path)


def main(argv=None) -> int:
    from lstm_jax.io import ensure_out_dir, write_json
    from lstm_jax.machine import machine_info

    args = parse_args(argv)
    out = ensure_out_dir(args.out)
    rows = []
    for name in args.archs.split(","):
        for clip in [None if c == "none" else float(c) for c in args.clips.split(",")]:
            for seed in range(args.seeds):
                r = run_one(args, name, clip, seed, out)
                rows.append(r)
                print(f"  {name:>4} clip={clip!s:>4} seed={seed}: {r['status']:>9} "
                      f"loss/baseline {r['loss_over_baseline']} ({r['seconds']} s)", flush=True)
    res = {"config": vars(args), "machine": machine_info(), "rows": rows,
           "summary": summarise(rows)}
    write_json(out / "results.json", res)
    print(f"wrote {plot(res, out / 'stability.png')}")
    for s in res["summary"]:
        print(f"{s['arch']:>4} clip={s['clip']!s:>4}: diverged {s['diverged']}/{s['seeds']}, "
              f"failed {s['failed_fraction']:.2f}, median loss/baseline "
              f"{s['median_loss_over_baseline']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
