"""IMDB training step with and without length buckets (``lstm_jax.tasks.imdb``, ``--buckets``).

At ``L = 800`` the mean kept review is 264 tokens, so two thirds of an unbucketed batch's steps are
padding the recurrence still runs over. With ``K`` buckets each batch is cut to its bucket's
longest review. This times the compiled training step (the one ``lstm-jax train`` runs: forward,
backward, Adam update) for both, on the real archive, in one process:

* ``compile_s``: the first call (tracing and compiling every bucket's branch);
* per bucket, the median of ``reps`` steps drawn from that bucket (steps whose
  ``train_bucket`` is that bucket); the epoch's mean step time is the mean over buckets, since
  every bucket has the same number of batches per epoch. Without buckets: the median of ``reps``
  steps.

Writes ``benchmarks/results/imdb_buckets.json`` with the machine's description.

    .venv/bin/python -m benchmarks.imdb_buckets [--seq-len 800] [--buckets 8] [--bidirectional]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "imdb_buckets.json"


def time_config(cfg, reps: int) -> dict:
    """Compile time and per-bucket step times of ``cfg``'s training step."""
    import jax
    import jax.numpy as jnp

    from lstm_jax.sharding import data_mesh, replicated
    from lstm_jax.steps import build_programs, seed_keys

    mesh = data_mesh()
    programs = build_programs(cfg, mesh)
    task = programs.task
    keys = seed_keys(cfg)
    # placed as `lstm-jax train` places them: the step's outputs then have its inputs' sharding,
    # and the second call does not compile again
    state = jax.device_put(programs.init(keys["init"]), replicated(mesh))
    data = jax.device_put(task.device_data(), replicated(mesh))

    def step(state, s):
        t0 = time.perf_counter()
        state, loss = programs.train_step(state, keys["data"], keys["dropout"], jnp.int32(s), data)
        jax.block_until_ready(loss)
        return state, time.perf_counter() - t0

    state, compile_s = step(state, 0)
    lengths = task.bucket_lengths or (cfg.seq_len,)
    picks: dict[int, list[int]] = {k: [] for k in range(len(lengths))}
    s = 1
    while any(len(v) < reps for v in picks.values()):
        k = 0 if task.bucket_lengths is None else int(task.train_bucket(s, cfg.batch))
        if len(picks[k]) < reps:
            picks[k].append(s)
        s += 1
    times: dict[int, list[float]] = {k: [] for k in picks}
    for k, steps in picks.items():
        for s in steps:
            state, t = step(state, s)
            times[k].append(t)
    per_bucket = [{"length": n, "median_s": statistics.median(times[k]), "times_s": times[k]}
                  for k, n in enumerate(lengths)]
    return {"buckets": cfg.buckets, "bidirectional": cfg.bidirectional,
            "compile_s": round(compile_s, 2), "per_bucket": per_bucket,
            "epoch_mean_step_s": statistics.mean(b["median_s"] for b in per_bucket),
            "steps_per_epoch": task.steps_per_epoch(cfg.batch)}


def run(*, seq_len: int = 800, buckets: int = 8, bidirectional: bool = False, reps: int = 3,
        hidden: int = 128, embed_dim: int = 128, vocab_size: int = 30_000, batch: int = 128,
        data=None) -> dict:
    from lstm_jax.config import TrainConfig

    base = TrainConfig(task="imdb", seq_len=seq_len, arch="lstm", hidden=hidden,
                       embed_dim=embed_dim, vocab_size=vocab_size, batch=batch, readout="max",
                       dropout=0.5, input_dropout=0.25, lr=2e-3, warmup=20, schedule="cosine",
                       steps=10_000, bidirectional=bidirectional, data=data)
    res = {"settings": {"seq_len": seq_len, "hidden": hidden, "embed_dim": embed_dim,
                        "vocab_size": vocab_size, "batch": batch, "arch": "lstm",
                        "bidirectional": bidirectional, "reps": reps},
           "loadavg_start": os.getloadavg(), "rows": []}
    for k in (1, buckets):
        res["rows"].append(time_config(base.replace(buckets=k), reps))
    res["speedup"] = res["rows"][0]["epoch_mean_step_s"] / res["rows"][1]["epoch_mean_step_s"]
    res["loadavg_end"] = os.getloadavg()
    return res


def main(argv=None) -> int:
    from lstm_jax.io import write_json
    from lstm_jax.machine import machine_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq-len", type=int, default=800)
    ap.add_argument("--buckets", type=int, default=8)
    ap.add_argument("--bidirectional", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    res = run(seq_len=args.seq_len, buckets=args.buckets, bidirectional=args.bidirectional,
              reps=args.reps, data=args.data)
    res["machine"] = machine_info()
    write_json(args.out, res)
    for r in res["rows"]:
        print(f"buckets={r['buckets']}: compile {r['compile_s']:.1f} s, "
              f"{1000 * r['epoch_mean_step_s']:.0f} ms/step (epoch mean), "
              + ", ".join(f"L={b['length']}: {1000 * b['median_s']:.0f} ms"
                          for b in r["per_bucket"]))
    print(f"speed-up {res['speedup']:.2f}×; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
