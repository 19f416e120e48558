"""What does a whole decay curve cost, in training steps of the same shape?

For each architecture at B=64, D=64, H=128, T=100 (defaults), timed side by side: the calls
alternate inside one repetition loop (:func:`benchmarks.timing.interleaved_medians`), and each
architecture runs in a fresh process (``--same-process`` opts out), as the training-step suite does.

* ``train_step``: the training step of the training-step suite (:func:`benchmarks.steps.jax_step`:
  one jitted forward+backward of the same ``Recurrence``, default fused recurrence, with a
  last-step linear readout and MSE, gradients of all parameters, no optimiser update);
* ``hutchinson_k4[…]`` and ``exact[…]``: :func:`lstm_jax.probes.jacobian_norms` for every lag,
  for the ``hidden`` probe alone and for the architecture's default probes (LSTM: hidden, cell,
  cec), through the public API (results copied to host).

The Hutchinson probes alternate with training steps in one loop, the exact ones in a second
loop with training steps of their own; each ratio is that of medians in its loop. Medians of
``--reps`` calls after warm-up; the first call (compile) is reported separately.
Writes ``probe_cost.json`` with :func:`lstm_jax.machine.machine_info`, in ``benchmarks/results``
by default (``make bench`` runs it as the ``probe_cost`` section of :mod:`benchmarks.run`)::

    .venv/bin/python -m benchmarks.probe_cost [--arch lstm,rnn,gru] [--reps 9]

Targets (issue 7): Hutchinson K=4 ≤ 1.5 train steps; exact ≤ H/4 train steps (issue 3).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jax.numpy as jnp
from flax import nnx

from benchmarks import steps
from benchmarks.timing import in_fresh_process, interleaved_medians
from lstm_jax import CellConfig, Recurrence
from lstm_jax.io import write_json
from lstm_jax.machine import machine_info
from lstm_jax.probes import default_probes, jacobian_norms

OUT = Path(__file__).parent / "results" / "probe_cost.json"


def bench_arch(arch: str, B: int, D: int, H: int, T: int, samples: int, reps: int) -> dict:
    """Time one training step and the probes of ``arch``, interleaved. Returns the JSON row."""
    x, y = steps.make_data(B, T, D)
    model = Recurrence(D, CellConfig(arch=arch, hidden=H), rngs=nnx.Rngs(0))
    train_step = steps.jax_step(model, steps.readout_init(H), x, y)  # as in the train suite
    x = jnp.asarray(x)
    groups = {"hutchinson": {}, "exact": {}}
    for probes in dict.fromkeys((("hidden",), default_probes(arch))):
        tag = "+".join(probes)
        groups["hutchinson"][f"hutchinson_k{samples}[{tag}]"] = lambda probes=probes: (
            jacobian_norms(model, x, probes=probes, method="hutchinson", samples=samples))
        groups["exact"][f"exact[{tag}]"] = lambda probes=probes: jacobian_norms(model, x,
                                                                                probes=probes)
    first = {}
    for name, fn in {"train_step": train_step, **groups["hutchinson"], **groups["exact"]}.items():
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
    # Each group alternates with its own training steps: an exact call keeps both cores busy for
    # seconds, and the short calls timed right after one ran slower and more variably.
    row = {"timings": {}, "ratio_to_train_step": {}, "train_step_by_group": {}}
    for group, fns in groups.items():
        timed = interleaved_medians({"train_step": train_step, **fns}, reps=reps)
        base = timed["train_step"]["median_s"]
        row["train_step_by_group"][group] = timed.pop("train_step")
        for name, r in timed.items():
            row["timings"][name] = {**r, "first_call_s": first[name]}
            row["ratio_to_train_step"][name] = r["median_s"] / base
    row["timings"]["train_step"] = {**row["train_step_by_group"]["hutchinson"],
                                    "first_call_s": first["train_step"]}
    return row


def run(archs, *, batch=64, features=64, hidden=128, seq_len=100, samples=4, reps=9,
        isolate=True, log=print) -> dict:
    """All architectures; with ``isolate`` each in a fresh process. Returns the JSON record."""
    results = {"config": {"batch": batch, "features": features, "hidden": hidden,
                          "seq_len": seq_len, "samples": samples, "reps": reps,
                          "process_per_arch": isolate, "interleaved": True},
               "targets": {"hutchinson_train_steps_max": 1.5, "exact_train_steps_max": hidden / 4},
               "machine": machine_info(), "loadavg_start": os.getloadavg(), "archs": {}}
    for arch in archs:
        args = (arch, batch, features, hidden, seq_len, samples, reps)
        row = in_fresh_process(bench_arch, *args) if isolate else bench_arch(*args)
        results["archs"][arch] = row
        base = row["timings"]["train_step"]["median_s"]
        log(f"{arch}: train step {base * 1e3:.1f} ms; " + "; ".join(
            f"{n} {v:.2f}x" for n, v in row["ratio_to_train_step"].items()))
    results["loadavg_end"] = os.getloadavg()
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="lstm,rnn,gru")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--same-process", action="store_true",
                    help="time all architectures in this process (default: a fresh one each)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    results = run(archs, batch=args.batch, features=args.features, hidden=args.hidden,
                  seq_len=args.seq_len, samples=args.samples, reps=args.reps,
                  isolate=not args.same_process, log=lambda m: print(m, flush=True))
    write_json(args.out, results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
