"""Run the benchmark suite and write ``benchmarks/results/*.json`` and ``results/README.md``.

    python -m benchmarks.run                 # the full suite (make bench)
    python -m benchmarks.run --quick         # a tiny smoke run, results under runs/bench-quick
    python -m benchmarks.run --only train --archs lstm --hidden 128 --seq 100
    python -m benchmarks.run --only train --impls fused --cpu-devices 2   # one JAX device per core

``imdb_pipeline`` (:mod:`benchmarks.imdb_pipeline`) and ``imdb_buckets``
(:mod:`benchmarks.imdb_buckets`, the training step at L=800 with and without length buckets) need
the IMDB archive (``$LSTM_JAX_IMDB`` or the default path) and are skipped, with the reason
printed, without it or with ``--quick``.

PyTorch is imported first and configured (flush-to-zero, threads = this process's cores) before
anything else can start a thread pool; see :mod:`benchmarks.torch_setup`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmarks.torch_setup import cpu_threads, setup_torch, torch_settings

SECTIONS = ("train", "compile_memory", "probe_cost", "imdb_pipeline", "imdb_buckets")
RESULTS = Path(__file__).resolve().parent / "results"


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny shapes, 2 reps (a smoke test)")
    p.add_argument("--out", type=Path, default=None,
                   help="results directory (default benchmarks/results; --quick: runs/bench-quick)")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {SECTIONS}")
    p.add_argument("--archs", default="rnn,lstm,gru")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--hidden", default="128,256")
    p.add_argument("--seq", default="100,1000")
    p.add_argument("--impls", default="scan,fused,fused_bf16",
                   help="JAX variants to time: scan, fused, fused_bf16 (fused with bfloat16 "
                        "products; adds a PyTorch autocast-bfloat16 row)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--compile-seq", default="100,1000,10000")
    p.add_argument("--compile-arch", default="lstm")
    p.add_argument("--compile-hidden", type=int, default=128)
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    p.add_argument("--same-process", action="store_true",
                   help="time all training-step shapes in this process (default: a fresh process "
                        "per shape, so one shape's heap state does not carry into the next)")
    p.add_argument("--numpy-roofline", action="store_true",
                   help="also time the roofline with NumPy's BLAS (PyTorch's is faster here)")
    p.add_argument("--cpu-devices", type=int, default=None, metavar="N",
                   help="split the CPU into N JAX devices (JAX_NUM_CPU_DEVICES, also in each fresh "
                        "process); every JAX training step splits its batch over them, as "
                        "'lstm-jax --cpu-devices N train' does")
    p.add_argument("--cores", type=int, default=None,
                   help="pin this process to its first N allowed cores before JAX and PyTorch "
                        "start threads (both then use N threads)")
    args = p.parse_args(argv)
    from benchmarks.steps import IMPLS

    bad = [i for i in args.impls.split(",") if i not in IMPLS]
    if bad:
        p.error(f"--impls: {', '.join(map(repr, bad))} not allowed; choose from {', '.join(IMPLS)}")
    if args.quick:
        args.batch, args.features, args.hidden, args.seq = 4, 4, "8", "12"
        args.reps, args.compile_seq, args.compile_hidden = 2, "10,100", 8
        args.out = args.out or Path("runs/bench-quick")
    args.out = args.out or RESULTS
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.cores:
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(allowed[: args.cores]))
    if args.cpu_devices:  # before JAX's backend starts here, and inherited by spawned processes
        from lstm_jax.sharding import set_cpu_devices

        os.environ["JAX_NUM_CPU_DEVICES"] = str(args.cpu_devices)
        set_cpu_devices(args.cpu_devices)
    torch = None if args.no_torch else setup_torch(cpu_threads())
    from benchmarks import report
    from lstm_jax.io import ensure_out_dir, write_json
    from lstm_jax.machine import machine_info

    out = ensure_out_dir(args.out)
    only = [s for s in args.only.split(",") if s]
    meta = {"machine": machine_info(), "torch_settings": torch_settings(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "argv": sys.argv, "quick": args.quick,
            "threads": cpu_threads(), "cores_pinned": args.cores,
            "cpu_devices": args.cpu_devices,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES"), "loadavg_start": os.getloadavg()}

    def log(msg):
        print(msg, flush=True)

    if "train" in only:
        from benchmarks import train

        shapes = [(a, args.batch, T, args.features, H) for a in args.archs.split(",")
                  for H in _ints(args.hidden) for T in _ints(args.seq)]
        t0 = time.time()
        rows = train.run(torch, shapes, impls=tuple(args.impls.split(",")), reps=args.reps,
                         numpy_roofline=args.numpy_roofline, isolate=not args.same_process,
                         log=log)
        write_json(out / "train_step.json", {**meta, "loadavg_end": os.getloadavg(),
                                            "process_per_shape": not args.same_process,
                                            "wall_s": time.time() - t0, "rows": rows})
    if "compile_memory" in only:
        from benchmarks import compile_memory

        t0 = time.time()
        rows = compile_memory.run(args.compile_arch, args.batch, args.features,
                                  args.compile_hidden, _ints(args.compile_seq),
                                  impls=tuple(i for i in args.impls.split(",")
                                              if i != "fused_bf16"),
                                  reps=min(args.reps, 3),
                                  log=log)
        write_json(out / "compile_memory.json", {**meta, "loadavg_end": os.getloadavg(),
                                                "wall_s": time.time() - t0, "rows": rows})
    if "probe_cost" in only:
        from benchmarks import probe_cost

        res = probe_cost.run(args.archs.split(","), batch=args.batch, features=args.features,
                             hidden=args.compile_hidden, seq_len=min(_ints(args.seq)),
                             reps=max(args.reps, 5) if not args.quick else args.reps,
                             isolate=not args.same_process, log=log)
        write_json(out / "probe_cost.json", {**meta, **res})
    if "imdb_pipeline" in only and not args.quick:
        from benchmarks import imdb_pipeline
        from lstm_jax.errors import UserError

        try:
            res = imdb_pipeline.run(vectors=True)
            write_json(out / "imdb_pipeline.json", {**meta, **res})
        except UserError as e:
            log(f"imdb_pipeline skipped: {e}")
    if "imdb_buckets" in only and not args.quick:
        from benchmarks import imdb_buckets
        from lstm_jax.errors import UserError

        try:
            write_json(out / "imdb_buckets.json", {**meta, **imdb_buckets.run()})
        except UserError as e:
            log(f"imdb_buckets skipped: {e}")
    path = report.write(out)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
