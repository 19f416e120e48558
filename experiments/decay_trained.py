"""Gradient decay after training on the adding problem, and its evolution over training.

Trains RNN, LSTM and GRU on the adding problem (Le et al. 2015) with ``--probe-every``, so the
training loop records :func:`lstm_jax.probes.probe` (Hutchinson estimates of ‖∂h_T/∂h_{T−k}‖_F,
for the LSTM also ‖∂C_T/∂C_{T−k}‖_F and ‖diag ∏f‖_F, on the first held-out chunk, per seed) into
each run's ``probes.jsonl``. From those files:

* ``OUT/decay_trained.png``: the curves at the last recorded step for every architecture
  (:func:`lstm_jax.plots.probes.plot_decay`), beside the same curves at step 0 (init);
* ``OUT/heatmap_<arch>.png``: log10 ‖∂h_T/∂h_{T−k}‖ over lag × training step
  (:func:`lstm_jax.plots.probes.plot_training_heatmap`);
* ``OUT/results.json``: config, per arch the final eval loss / baseline, and the log10 norm
  ratio ‖J(k)‖/‖J(0)‖ at k = 100 (or the largest lag when T ≤ 100) at init and after training:
  every seed's (``per_seed``) and their median (``*_log10_ratio``). The figures show seed 0.

The trained tanh RNN's ratio varies by orders of magnitude across seeds at the default budget
(10^−28.3 to 10^−6.2 at k=99 over 5 seeds; a 2-seed run had one seed at 10^0.0, where
‖J(k)‖ ≈ ‖J(0)‖), so quote its per-seed values, not one seed's.

On IMDB the same curves for trained models come from ``experiments/imdb_gradients.py`` (read by
the report). Completed runs under ``OUT/runs`` are reused (not retrained).

    python experiments/decay_trained.py --out runs/reproduce_full/decay_trained       # T=100
    python experiments/decay_trained.py --quick --out runs/reproduce/decay_trained    # T=50
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="rnn,lstm,gru")
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--probe-every", type=int, default=100)
    p.add_argument("--seeds", type=int, default=5, help="models per architecture (vmapped)")
    p.add_argument("--quick", action="store_true", help="T=50, H=32, 300 steps, probe every 50")
    p.add_argument("--out", default="runs/reproduce/decay_trained")
    args = p.parse_args(argv)
    if args.quick:
        args.seq_len, args.hidden, args.steps, args.batch = 50, 32, 300, 32
        args.lr, args.probe_every, args.seeds = 1e-2, 50, 1
    return args


def run_arch(args, arch: str, out: Path) -> Path:
    from lstm_jax.config import TrainConfig
    from lstm_jax.errors import UserError
    from lstm_jax.io import read_json
    from lstm_jax.train import default_probe_fn, train

    cfg = TrainConfig(task="adding", arch=arch, seq_len=args.seq_len, hidden=args.hidden,
                      steps=args.steps, batch=args.batch, lr=args.lr, seeds=args.seeds,
                      probe_every=args.probe_every, eval_every=args.probe_every, eval_size=128,
                      checkpoint_every=args.steps, keep_checkpoints=1)
    run_dir = out / "runs" / arch
    s = run_dir / "summary.json"
    saved = run_dir / "config.json"
    if saved.is_file() and read_json(saved) != cfg.to_dict():
        raise UserError(f"{run_dir} holds a run with other settings (e.g. --seeds); use another "
                        "--out or delete it")
    if not (s.is_file() and read_json(s).get("status") == "completed"):
        train(cfg, run_dir, resume=(run_dir / "checkpoints").is_dir(),
              probe_fn=default_probe_fn(method="hutchinson", samples=4), progress=False)
    return run_dir


def retained(rec: dict, name: str = "hidden", k: int = 100) -> tuple[int, float]:
    """``(k, log10 ‖J(k)‖ − log10 ‖J(0)‖)`` at lag ``k`` (or the largest lag)."""
    v = np.array([np.nan if x is None else x for x in rec[f"log10_{name}"]])
    k = min(k, len(v) - 1)
    return k, float(v[k] - v[0])


def main(argv=None) -> int:
    from lstm_jax.errors import UserError
    from lstm_jax.io import ensure_out_dir, read_json, write_json
    from lstm_jax.plots.probes import load_probe_records, plot_decay, plot_training_heatmap

    args = parse_args(argv)
    out = ensure_out_dir(args.out)
    res = {"config": vars(args), "archs": {}}
    first, last = {}, {}
    for arch in args.archs.split(","):
        try:
            run_dir = run_arch(args, arch, out)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        every = load_probe_records(run_dir / "probes.jsonl")
        seeds = sorted({r.get("seed", 0) for r in every})
        by_seed = {i: sorted((r for r in every if r.get("seed", 0) == i), key=lambda r: r["step"])
                   for i in seeds}
        recs = by_seed[seeds[0]]
        first[arch], last[arch] = recs[0], recs[-1]
        plot_training_heatmap(recs, out / f"heatmap_{arch}.png")
        summ = read_json(run_dir / "summary.json")
        entry = {"run_dir": str(run_dir), "final_step": recs[-1]["step"],
                 "loss_over_baseline": summ["eval_loss_over_baseline"],
                 "parameters_per_model": summ["parameters_per_model"],
                 "seeds": seeds, "ratio_statistic": "median over seeds", "per_seed": {}}
        for when, pick in (("init", 0), ("trained", -1)):
            for name in ("hidden", "cell", "cec"):
                if f"log10_{name}" in recs[0]:
                    vals = [retained(by_seed[i][pick], name) for i in seeds]
                    entry["ratio_k"] = vals[0][0]
                    entry["per_seed"][f"{when}_{name}"] = [v for _, v in vals]
                    entry[f"{when}_{name}_log10_ratio"] = float(np.median([v for _, v in vals]))
        res["archs"][arch] = entry
        per = entry["per_seed"]["trained_hidden"]
        print(f"  {arch}: loss/baseline {entry['loss_over_baseline']:.3g}; log10 ‖J(k)‖/‖J(0)‖ "
              f"at k={entry['ratio_k']}, median over {len(seeds)} seeds: init "
              f"{entry['init_hidden_log10_ratio']:.2f}, trained "
              f"{entry['trained_hidden_log10_ratio']:.2f} (seeds: "
              f"{', '.join(f'{v:.1f}' for v in per)})", flush=True)
    T = args.seq_len
    plot_decay({"archs": last}, out / "decay_trained.png",
               title=f"after {args.steps} steps on adding (T={T}, H={args.hidden}, seed 0)")
    plot_decay({"archs": first}, out / "decay_trained_step0.png",
               title=f"the same networks at step 0 (T={T}, H={args.hidden}, seed 0)")
    write_json(out / "results.json", res)
    print(f"wrote {out}/results.json, decay_trained.png, heatmap_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
