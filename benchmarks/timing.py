"""Side-by-side timing: implementations alternate inside the repetition loop, so load on a shared
machine falls on all of them alike; every figure is a median over repetitions after warm-up."""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor


def in_fresh_process(fn: Callable, *args):
    """``fn(*args)`` in a fresh (spawned) interpreter; ``fn`` must be a module-level function.

    On a CPU, glibc's malloc adapts its mmap and trim thresholds to the allocations it has seen,
    so what was timed before changes how often a step page-faults (``benchmarks/README.md``).
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def interleaved_medians(fns: dict[str, Callable[[], object]], *, reps: int = 5,
                        warmup: int = 1, pause: float = 0.05) -> dict[str, dict]:
    """Time each zero-argument callable ``reps`` times, alternating between them.

    Each callable must block until its work is done (``block_until_ready`` / a host value).
    ``pause`` seconds of sleep before each timed call let the previous library's spinning worker
    threads (OpenMP, OpenBLAS) go idle, so they do not steal cores from the next one.
    Also counts the minor page faults of each call (``getrusage``): fresh pages of freshly
    allocated temporaries, which cost a fault and zeroing each, are a large part of a CPU step.
    Returns ``{name: {"median_s", "min_s", "times_s", "minor_faults"}}`` (faults: median per call).
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    faults: dict[str, list[int]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            time.sleep(pause)
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return {name: {"median_s": statistics.median(ts), "min_s": min(ts), "times_s": ts,
                   "minor_faults": statistics.median(faults[name])}
            for name, ts in times.items()}


def paired_ratio_quartiles(times: list[float], reference: list[float]) -> dict[str, float]:
    """Quartiles of ``times[i] / reference[i]`` over the repetitions of :func:`interleaved_medians`.

    Both calls of a pair ran in the same repetition, back to back, so load that changes between
    repetitions cancels in their ratio; the quartiles show how far the ratio of medians can be
    trusted (on a shared VM, a 1.05× with quartiles 0.98–1.12 does not tell 1.05 from 1.0).
    """
    if len(times) != len(reference) or not times:
        raise ValueError(f"need equally many repetitions, got {len(times)} and {len(reference)}")
    ratios = [a / b for a, b in zip(times, reference, strict=True)]
    if len(ratios) == 1:
        return {"q25": ratios[0], "median": ratios[0], "q75": ratios[0]}
    q25, median, q75 = statistics.quantiles(ratios, n=4, method="inclusive")
    return {"q25": q25, "median": median, "q75": q75}
