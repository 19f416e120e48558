"""Compile time and peak memory of the training step against T, with and without remat.

Memory is XLA's own buffer assignment for the compiled step
(``jax.jit(f).lower(...).compile().memory_analysis()``): ``temp`` is the scratch the program
allocates (activations saved for the backward pass and work buffers), ``peak_estimate`` is
``argument + output + temp − alias`` bytes. Nothing is executed, so T = 10,000 costs only a
compile. (Process RSS would include the allocator's and the runtime's own overhead.)
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp

from benchmarks import steps


def _compile(arch, B, T, D, H, impl, remat):
    model = steps.make_model(arch, D, H, impl=impl, remat=remat)
    fn, state = steps.jax_loss_and_grad(model)
    params = (state, jax.tree.map(jnp.asarray, steps.readout_init(H)))
    x = jax.ShapeDtypeStruct((B, T, D), jnp.float32)
    y = jax.ShapeDtypeStruct((B,), jnp.float32)
    t0 = time.perf_counter()
    lowered = jax.jit(fn).lower(params, x, y)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, compiled


def run(arch, B, D, H, Ts, *, impls=("scan", "fused"), remats=(False, True), reps=3,
        log=print) -> list[dict]:
    rows = []
    _compile(arch, B, min(Ts), D, H, impls[0], False)  # warm-up: the first compile pays one-off costs
    for impl in impls:
        for remat in remats:
            for T in Ts:
                lower_s, compile_s = [], []
                for _ in range(reps):
                    lo, co, compiled = _compile(arch, B, T, D, H, impl, remat)
                    lower_s.append(lo)
                    compile_s.append(co)
                mem = compiled.memory_analysis()
                m = {k: int(getattr(mem, f"{k}_size_in_bytes", 0) or 0)
                     for k in ("argument", "output", "temp", "alias", "generated_code")}
                m["peak_estimate"] = m["argument"] + m["output"] + m["temp"] - m["alias"]
                row = {"arch": arch, "B": B, "T": T, "D": D, "H": H, "impl": impl, "remat": remat,
                       "lower_s": statistics.median(lower_s),
                       "compile_s": statistics.median(compile_s),
                       "lower_plus_compile_s": statistics.median(
                           [a + b for a, b in zip(lower_s, compile_s, strict=True)]),
                       "memory_bytes": m}
                log(f"{arch} impl={impl:5s} remat={remat!s:5s} T={T:6d}  lower {row['lower_s']:.2f} s"
                    f"  compile {row['compile_s']:.2f} s  temp {m['temp'] / 2**20:9.1f} MiB  "
                    f"peak≈ {m['peak_estimate'] / 2**20:9.1f} MiB")
                rows.append(row)
    return rows
