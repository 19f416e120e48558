"""Training-step throughput: JAX (plain scan, fused) vs PyTorch vs the matmul roofline, side by side."""

from __future__ import annotations

import time

import jax

from benchmarks import roofline, steps
from benchmarks.timing import in_fresh_process, interleaved_medians, paired_ratio_quartiles
from benchmarks.torch_setup import cpu_threads, setup_torch


def bench_shape(torch, arch: str, B: int, T: int, D: int, H: int, *, impls=("scan", "fused"),
                reps: int = 5, unroll: int = 1, numpy_roofline: bool = False) -> dict:
    """Time every implementation of one shape, alternating them in one loop. Returns a row."""
    x, y = steps.make_data(B, T, D)
    ro = steps.readout_init(H)
    fns, compile_s, skipped = {}, {}, {}
    for impl in impls:
        model = steps.make_model(arch, D, H, impl=impl, unroll=unroll)
        fn = steps.jax_step(model, ro, x, y)
        t0 = time.perf_counter()
        fn()  # compile + first run
        compile_s[f"jax_{impl}"] = time.perf_counter() - t0
        fns[f"jax_{impl}"] = fn
    base = steps.make_model(arch, D, H)
    try:
        fns["jax_cudnn"] = steps.cudnn_step(base, ro, x, y)
        fns["jax_cudnn"]()
    except Exception as e:  # noqa: BLE001 - recorded as the row's skip reason
        fns.pop("jax_cudnn", None)
        skipped["jax_cudnn"] = f"{type(e).__name__}: {e}"
    if torch is not None:
        fns["torch"] = steps.torch_step(torch, base, ro, x, y)
        if any(steps.IMPLS[i][1] == "bfloat16" for i in impls):
            autocast = steps.torch_step(torch, base, ro, x, y, autocast=True)
            try:
                autocast()
                fns["torch_bf16"] = autocast
            except RuntimeError as e:  # oneDNN builds no bfloat16 LSTM on CPUs without AVX512-BF16
                skipped["torch_bf16"] = f"{type(e).__name__}: {e}"
        fns["roofline_torch"] = roofline.torch_roofline(torch, arch, B, T, D, H)
    if torch is None or numpy_roofline:
        fns["roofline_numpy"] = roofline.numpy_roofline(arch, B, T, D, H)
    timed = interleaved_medians(fns, reps=reps, warmup=1)
    roof_keys = [k for k in timed if k.startswith("roofline_")]
    roof = min(timed[k]["median_s"] for k in roof_keys)
    roof_lib = min(roof_keys, key=lambda k: timed[k]["median_s"])[len("roofline_"):]
    row = {"arch": arch, "B": B, "T": T, "D": D, "H": H, "dtype": "float32", "unroll": unroll,
           "jax_devices": len(jax.devices()),
           "tokens": B * T, "matmul_gflop": roofline.matmul_flops(arch, B, T, D, H) / 1e9,
           "roofline_s": roof, "roofline_library": roof_lib, "compile_and_first_run_s": compile_s,
           "skipped": skipped, "timings": timed, "impls": {}}
    torch_t, torch_bf16 = timed.get("torch"), timed.get("torch_bf16")
    for name, t in timed.items():
        if name.startswith("roofline_"):
            continue
        s = t["median_s"]
        row["impls"][name] = {
            "median_s": s, "tokens_per_s": B * T / s,
            "vs_torch": None if torch_t is None else s / torch_t["median_s"],
            "vs_torch_paired": None if torch_t is None
            else paired_ratio_quartiles(t["times_s"], torch_t["times_s"]),
            "vs_roofline": s / roof,
        }
        if torch_bf16 is not None:
            row["impls"][name] |= {
                "vs_torch_bf16": s / torch_bf16["median_s"],
                "vs_torch_bf16_paired": paired_ratio_quartiles(t["times_s"],
                                                               torch_bf16["times_s"])}
    return row


def _vs_torch(impl: dict) -> str:
    """``"0.82× torch, "``, or nothing when PyTorch was not timed."""
    return "" if impl.get("vs_torch") is None else f"{impl['vs_torch']:.2f}× torch, "


def _bench_shape_fresh(use_torch: bool, threads: int, shape: tuple, kwargs: dict) -> dict:
    """:func:`bench_shape` in a fresh interpreter (PyTorch configured first, as in ``run.py``)."""
    torch = setup_torch(threads) if use_torch else None
    return bench_shape(torch, *shape, **kwargs)


def run(torch, shapes, *, impls, reps, numpy_roofline=False, isolate=True, log=print) -> list[dict]:
    """Time every shape; with ``isolate`` each shape runs in its own fresh process.

    Isolation matters on a CPU: glibc's malloc adapts its mmap and trim thresholds to the
    allocations it has seen, so a shape timed after larger ones runs on a heap that no longer
    page-faults, and by how much differs between the libraries (``benchmarks/README.md``). A fresh
    process per shape is what a training run of that shape sees.
    """
    rows = []
    kwargs = {"impls": impls, "reps": reps, "numpy_roofline": numpy_roofline}
    for shape in shapes:
        if isolate:
            row = in_fresh_process(_bench_shape_fresh, torch is not None, cpu_threads(), shape,
                                   kwargs)
        else:
            row = bench_shape(torch, *shape, **kwargs)
        arch, B, T, D, H = shape
        cells = "  ".join(f"{k} {v['median_s'] * 1e3:8.1f} ms ({_vs_torch(v)}"
                          f"{v['vs_roofline']:.2f}× roof, {row['timings'][k]['minor_faults']:.0f}"
                          " faults)" for k, v in row["impls"].items())
        log(f"{arch:4s} B={B} T={T:5d} D={D} H={H:4d}  roof {row['roofline_s'] * 1e3:7.1f} ms  "
            + cells)
        rows.append(row)
    return rows
