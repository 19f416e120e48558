"""Does bfloat16 in the recurrence's products keep accuracy? float32 against ``matmul_dtype="bfloat16"``.

``matmul_dtype="bfloat16"`` (:func:`lstm_jax.fused.fused_layer`) rounds the operands of the input
projection and of the per-step products ``h W_hh`` and ``dz W_hhᵀ`` to bfloat16 (8 significant
bits) and keeps everything else float32. Two checks, each architecture, same seeds:

1. **Gradients at initialisation** on one adding-problem batch at each ``--grad-seq`` length:
   the cosine and the relative error ‖g_bf16 − g_f32‖ / ‖g_f32‖ of the whole model's gradient,
   and ‖∂L/∂x_{T−k}‖ for lags k = 0, 10, 30, 100, 300, 1000 in each dtype: the decay curve this
   project is about, where rounding would compound over k steps.
2. **Training**: the adding problem at ``--seq-len`` with each dtype; eval loss against steps.

Writes ``OUT/results.json`` (config, machine, gradient rows, per-run final eval loss and steps/s)
and ``OUT/mixed_precision.png``. Completed runs under ``OUT/runs`` are reused.

    python experiments/mixed_precision.py --out experiments/results/mixed_precision
    python experiments/mixed_precision.py --quick --out runs/mixed_precision_quick
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

DTYPES = ("float32", "bfloat16")
LAGS = (0, 10, 30, 100, 300, 1000)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="lstm,gru,rnn")
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--grad-seq", default="100,1000", help="comma list of T for the gradient check")
    p.add_argument("--quick", action="store_true", help="T=20, H=16, 60 steps, 1 seed")
    p.add_argument("--out", default="experiments/results/mixed_precision")
    args = p.parse_args(argv)
    if args.quick:
        args.seq_len, args.hidden, args.steps, args.seeds, args.grad_seq = 20, 16, 60, 1, "20"
    return args


def _config(args, arch: str, dtype: str, **changes):
    from lstm_jax.config import TrainConfig

    fields = dict(task="adding", seq_len=args.seq_len, arch=arch, hidden=args.hidden,
                  steps=args.steps, batch=args.batch, seeds=args.seeds,
                  eval_every=max(args.steps // 15, 1), eval_size=512,
                  checkpoint_every=max(args.steps // 3, 1), keep_checkpoints=1, matmul_dtype=dtype)
    return TrainConfig(**{**fields, **changes})


def gradient_rows(args) -> list[dict]:
    """Whole-model gradients and ∂L/∂x_1 of one batch, float32 against bfloat16, at init."""
    import jax
    import numpy as np
    from flax import nnx

    from lstm_jax.steps import build_model
    from lstm_jax.tasks import make_task

    rows = []
    for T in (int(t) for t in args.grad_seq.split(",")):
        for arch in args.archs.split(","):
            grads, dx = {}, {}
            for dtype in DTYPES:
                cfg = _config(args, arch, dtype, seq_len=T)
                task = make_task(cfg.task, cfg.seq_len, **cfg.task_options())
                model = build_model(cfg, task, jax.random.key(0))
                batch = task.sample(jax.random.key(1), args.batch)

                def loss(model, x, batch=batch, task=task):
                    return task.loss(model(x, batch.mask), batch)

                g_model, g_x = jax.jit(nnx.grad(loss, argnums=(0, 1)))(model, batch.x)
                grads[dtype] = np.concatenate([np.ravel(a)
                                               for a in jax.tree.leaves(nnx.state(g_model))])
                norms = np.linalg.norm(np.asarray(g_x, np.float64), axis=(0, 2))  # (T,)
                dx[dtype] = {k: float(norms[T - 1 - k]) for k in LAGS if k < T}
            by_lag = [{"k": k, "float32": dx["float32"][k], "bfloat16": dx["bfloat16"][k],
                       "ratio": dx["bfloat16"][k] / dx["float32"][k] if dx["float32"][k] else None}
                      for k in dx["float32"]]
            rows.append({"arch": arch, "T": T, **_agreement("grad", grads),
                         "dL_dx_norm_by_lag": by_lag})
            lags = ", ".join(f"k={r['k']}: {r['ratio']:.4f}" if r["ratio"] is not None
                             else f"k={r['k']}: both 0" if not r["bfloat16"]
                             else f"k={r['k']}: f32 0, bf16 {r['bfloat16']:.1e}" for r in by_lag)
            print(f"  gradients {arch:>4} T={T:5d}: cosine {rows[-1]['grad_cosine']:.6f}, "
                  f"rel. error {rows[-1]['grad_rel_error']:.2e}; ‖∂L/∂x_(T−k)‖ bf16/f32 {lags}",
                  flush=True)
    return rows


def _agreement(name: str, g: dict) -> dict:
    import numpy as np

    a, b = g["bfloat16"].astype(np.float64), g["float32"].astype(np.float64)
    nb = np.linalg.norm(b)
    return {f"{name}_cosine": float(a @ b / (np.linalg.norm(a) * nb)) if nb else None,
            f"{name}_rel_error": float(np.linalg.norm(a - b) / nb) if nb else None,
            f"{name}_norm_float32": float(nb)}


def _train(cfg_dict: dict, run_dir: Path, resume: bool) -> None:
    from lstm_jax.config import TrainConfig
    from lstm_jax.train import train

    train(TrainConfig.from_dict(cfg_dict), run_dir, resume=resume, progress=True)


def _train_in_fresh_process(cfg_dict: dict, run_dir: Path, resume: bool) -> None:
    """One run per interpreter: a training step hung at its start twice, both times in the
    process that had trained the LSTMs before it (the XLA:CPU hang of README "Robustness")."""
    import multiprocessing

    p = multiprocessing.get_context("spawn").Process(target=_train, args=(cfg_dict, run_dir, resume))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"training {run_dir} failed (exit code {p.exitcode}); re-run to resume")


def train_rows(args, out: Path) -> list[dict]:
    from lstm_jax.io import read_json
    from lstm_jax.metrics import read_jsonl

    rows = []
    for arch in args.archs.split(","):
        for dtype in DTYPES:
            cfg = _config(args, arch, dtype)
            run_dir = out / "runs" / f"{arch}_{dtype}"
            path = run_dir / "summary.json"
            t0 = time.perf_counter()
            if not (path.is_file() and read_json(path).get("status") == "completed"):
                ckpt = run_dir / "checkpoints"
                resume = ckpt.is_dir() and any(ckpt.iterdir())
                if not resume and run_dir.exists():
                    shutil.rmtree(run_dir)  # stopped before its first checkpoint: start afresh
                _train_in_fresh_process(cfg.to_dict(), run_dir, resume)
            s = read_json(path)
            curve = [{"step": r["step"], "eval/loss": r["eval/loss"]}
                     for r in read_jsonl(run_dir / "metrics.jsonl") if "eval/loss" in r]
            rows.append({"arch": arch, "matmul_dtype": dtype, "status": s["status"],
                         "final_eval_loss": s["final"]["eval/loss"],
                         "eval_loss_over_baseline": s.get("eval_loss_over_baseline"),
                         "steps_per_s": s.get("steps_per_s"), "curve": curve,
                         "run_dir": str(run_dir), "seconds": round(time.perf_counter() - t0, 1),
                         "config": cfg.to_dict()})
            print(f"  train {arch:>4} {dtype:>8}: eval loss per seed "
                  f"{[round(v, 5) for v in s['final']['eval/loss']['per_seed']]}", flush=True)
    return rows


def plot(res: dict, path: Path) -> Path:
    import numpy as np

    from lstm_jax.plots.common import ARCH_COLORS, save
    from lstm_jax.plots.style import BASELINE, legend_outside, new_figure, title

    fig, ax = new_figure(8, 4.2)
    for r in res["train"]:
        steps = [p["step"] for p in r["curve"]]
        loss = np.array([p["eval/loss"] for p in r["curve"]])
        bf16 = r["matmul_dtype"] == "bfloat16"
        for s in range(loss.shape[1]):
            ax.plot(steps, loss[:, s], color=ARCH_COLORS[r["arch"]], ls="--" if bf16 else "-",
                    alpha=0.85, lw=1.3,
                    label=f"{r['arch'].upper()} {r['matmul_dtype']}" if s == 0 else None)
    c = res["config"]
    ax.axhline(1 / 6, color="0.5", lw=0.8, ls=":", label=f"{BASELINE} 1/6")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out MSE (each seed a line)")
    ax.set_title(title("Adding problem", T=c["seq_len"], H=c["hidden"], init="default init",
                       extra=f"{c['seeds']} seeds")
                 + "\nfloat32 (solid) vs bfloat16 products (dashed)")
    legend_outside(ax)
    return save(fig, path)


def main(argv=None) -> int:
    from lstm_jax.io import ensure_out_dir, write_json
    from lstm_jax.machine import machine_info

    args = parse_args(argv)
    out = ensure_out_dir(args.out)
    res = {"config": vars(args), "argv": sys.argv, "machine": machine_info(),
           "gradients": gradient_rows(args)}
    res["train"] = train_rows(args, out)
    write_json(out / "results.json", res)
    print(f"wrote {out / 'results.json'} and {plot(res, out / 'mixed_precision.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
