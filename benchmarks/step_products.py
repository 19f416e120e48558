"""The per-step products of a recurrence alone: XLA:CPU inside ``lax.scan`` against ``torch.mm``.

A recurrent layer does 2T small products per training step, ``h_t W_hh`` forward,
``(B, H) × (H, G·H)``, and ``dz_t W_hhᵀ`` backward, ``(B, G·H) × (G·H, H)``, one after another.
This times T of each alone: in JAX a jitted ``lax.scan`` whose body is the product (and adds one
element of it to a scalar carry, so that it is used), in PyTorch T ``torch.mm`` calls into one
preallocated output. Both on the same threads, alternating inside one repetition loop. The
scan also copies its (B, ·) row of the stacked input each step, as the fused loops do (~5 µs);
the optimised HLO keeps the full (B, G·H) product although one element of it is used.

``--dtype bfloat16`` rounds both operands to bfloat16: JAX accumulates in float32
(``preferred_element_type``, as ``matmul_dtype="bfloat16"`` in :mod:`lstm_jax.fused` does),
``torch.mm`` multiplies bfloat16 tensors. Run it under different ``XLA_FLAGS`` to compare XLA's
dot libraries, e.g.
``XLA_FLAGS=--xla_cpu_use_onednn=true python -m benchmarks.step_products``; the flags are
recorded in the result.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks.timing import interleaved_medians, paired_ratio_quartiles
from benchmarks.torch_setup import cpu_threads, setup_torch

OUT = Path(__file__).parent / "results" / "step_products.json"


def _products(torch, B: int, H: int, G: int, T: int, dtype: str = "float32") -> dict:
    """``{name: callable}`` for the forward and backward products of one width H."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((H, G * H)) / np.sqrt(H)).astype(np.float32)
    forward_in = rng.standard_normal((T, B, H), dtype=np.float32)
    backward_in = rng.standard_normal((T, B, G * H), dtype=np.float32)

    def scan_of(product):
        def loop(w, xs):
            if dtype != "float32":
                w = w.astype(dtype)  # once, outside the loop, as the fused layer does
            def body(acc, x):
                return acc + product(x, w)[0, 0], None

            return jax.lax.scan(body, jnp.float32(0), xs)[0]

        return jax.jit(loop)

    def dot(a, w, contract):
        return jax.lax.dot_general(a.astype(w.dtype), w, (contract, ((), ())),
                                   preferred_element_type=jnp.float32)

    fwd = scan_of(lambda h, w: dot(h, w, ((1,), (0,))))
    bwd = scan_of(lambda dz, w: dot(dz, w, ((1,), (1,))))
    wj, fj, bj = jnp.asarray(w), jnp.asarray(forward_in), jnp.asarray(backward_in)
    fns = {"jax_forward": lambda: fwd(wj, fj).block_until_ready(),
           "jax_backward": lambda: bwd(wj, bj).block_until_ready()}
    if torch is not None:
        tdt = getattr(torch, dtype)
        wt, ft, bt = (torch.from_numpy(a).to(tdt) for a in (w, forward_in, backward_in))
        wt_t = wt.t()
        out_f, out_b = torch.empty(B, G * H, dtype=tdt), torch.empty(B, H, dtype=tdt)

        def torch_forward():
            for t in range(T):
                torch.mm(ft[t], wt, out=out_f)

        def torch_backward():
            for t in range(T):
                torch.mm(bt[t], wt_t, out=out_b)

        fns |= {"torch_forward": torch_forward, "torch_backward": torch_backward}
    return fns


def run(torch, *, hidden=(128, 256), batch=64, gates=4, steps=100, reps=21, dtype="float32",
        log=print) -> dict:
    rows = []
    for H in hidden:
        timed = interleaved_medians(_products(torch, batch, H, gates, steps, dtype), reps=reps)
        row = {"B": batch, "H": H, "G": gates, "T": steps, "dtype": dtype,
               "timings": {k: {"median_s": v["median_s"], "min_s": v["min_s"],
                               "times_s": v["times_s"]} for k, v in timed.items()}}
        if torch is not None:
            row["jax_vs_torch_paired"] = {
                d: paired_ratio_quartiles(timed[f"jax_{d}"]["times_s"],
                                          timed[f"torch_{d}"]["times_s"])
                for d in ("forward", "backward")}
        rows.append(row)
        log(f"H={H:4d}  " + "  ".join(f"{k} {v['median_s'] * 1e3:6.2f} ms"
                                       for k, v in timed.items()))
    return {"xla_flags": os.environ.get("XLA_FLAGS", ""), "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", default="128,256")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                    help="the products' operand dtype (JAX accumulates in float32)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    torch = None if args.no_torch else setup_torch(cpu_threads())
    from lstm_jax.io import write_json
    from lstm_jax.machine import machine_info

    res = run(torch, hidden=tuple(int(h) for h in args.hidden.split(",")), batch=args.batch,
              steps=args.steps, reps=args.reps, dtype=args.dtype)
    write_json(args.out, {"machine": machine_info(), "threads": cpu_threads(),
                          "argv": ["python", "-m", "benchmarks.step_products",
                                   *(sys.argv[1:] if argv is None else argv)],
                          **res})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
