"""What does a whole decay curve cost, in training steps of the same shape?

For each architecture, side by side in one run at B=64, D=64, H=128, T=100 (defaults):

* ``train_step``: one jitted forward+backward of the same ``Recurrence`` with a last-step linear
  readout and MSE, gradient w.r.t. all parameters (no optimiser update);
* ``hutchinson`` K=4 and ``exact``: :func:`lstm_jax.probes.jacobian_norms` for every lag, for the
  ``hidden`` probe alone and for the architecture's default probes (LSTM: hidden, cell, cec),
  through the public API (results copied to host).

Median of ``--reps`` timed calls after warm-up (compile excluded and reported separately).
Writes ``benchmarks/results/probe_cost.json`` with :func:`lstm_jax.cli.info.machine_info`.

    .venv/bin/python benchmarks/probe_cost.py [--arch lstm,rnn,gru] [--reps 7]

Targets (issue 3): hutchinson K=4 ≤ 1.5 train steps, exact ≤ H/4 train steps.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import jax
import optax
from flax import nnx

from lstm_jax import CellConfig, Recurrence
from lstm_jax.cli.info import machine_info
from lstm_jax.io import write_json
from lstm_jax.probes import default_probes, jacobian_norms

OUT = Path(__file__).parent / "results" / "probe_cost.json"


def make_train_step(model, x, y, w_out):
    graphdef, state = nnx.split(model)

    @jax.jit
    def train_step(state, x, y):
        def loss(state):
            m = nnx.merge(graphdef, state)
            h = m(x).outputs[:, -1]
            return optax.l2_loss(h @ w_out, y).mean()

        return jax.value_and_grad(loss)(state)

    return lambda: jax.block_until_ready(train_step(state, x, y))


def timed(fn, reps: int) -> dict:
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    fn()  # second warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times,
            "first_call_s": first}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="lstm,rnn,gru")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    B, D, H, T = args.batch, args.features, args.hidden, args.seq_len
    key = jax.random.key(0)
    x = jax.random.normal(key, (B, T, D))
    y = jax.random.normal(jax.random.fold_in(key, 1), (B, 1))
    w_out = jax.random.normal(jax.random.fold_in(key, 2), (H, 1)) / H ** 0.5
    results = {"config": {"batch": B, "features": D, "hidden": H, "seq_len": T,
                          "samples": args.samples, "reps": args.reps},
               "targets": {"hutchinson_train_steps_max": 1.5, "exact_train_steps_max": H / 4},
               "machine": machine_info(), "archs": {}}
    for arch in [a.strip() for a in args.arch.split(",") if a.strip()]:
        model = Recurrence(D, CellConfig(arch=arch, hidden=H), rngs=nnx.Rngs(0))
        rows = {"train_step": timed(make_train_step(model, x, y, w_out), args.reps)}
        for probes in (("hidden",), default_probes(arch)):
            tag = "+".join(probes)
            rows[f"hutchinson_k{args.samples}[{tag}]"] = timed(
                lambda probes=probes, model=model: jacobian_norms(
                    model, x, probes=probes, method="hutchinson", samples=args.samples), args.reps)
            rows[f"exact[{tag}]"] = timed(
                lambda probes=probes, model=model: jacobian_norms(model, x, probes=probes),
                args.reps)
            if probes == default_probes(arch):
                break
        base = rows["train_step"]["median_s"]
        ratios = {name: r["median_s"] / base for name, r in rows.items() if name != "train_step"}
        results["archs"][arch] = {"timings": rows, "ratio_to_train_step": ratios}
        print(f"{arch}: train step {base * 1e3:.1f} ms; " +
              "; ".join(f"{n} {v:.2f}x" for n, v in ratios.items()), flush=True)
    write_json(args.out, results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
