"""What one point's validation curve says: success per seed and steps-to-success, within budget.

A point's ``metrics.jsonl`` holds one line per evaluation with ``eval/<metric>`` as a list over
seeds. Only lines with ``step ≤ budget`` count (a point resumed past its declared budget is
flagged, never credited for the extra steps). Per seed:

* ``success``: ``when="any"``: the criterion was met at some evaluation ≤ budget;
  ``when="final"``: it is met at the last evaluation ≤ budget;
* ``steps_to_success``: for a seed that succeeded, the first evaluated step whose value meets
  the criterion; None for a seed that did not (a ``when="final"`` seed that met it early and
  lost it again is a failure, and its early step is no success time);
* ``final``: the value at the last evaluation ≤ budget (NaN if there is none, and for every seed
  of a run that diverged: its last finite evaluation is not where the budget ends, so it neither
  succeeds under ``when="final"`` nor wins a learning-rate choice).
"""

from __future__ import annotations

import math

from lstm_jax.compare.protocol import Criterion


def _credited(records: list[dict], key: str, budget: int) -> list[dict]:
    """The evaluation lines that count: those holding ``key`` at a step ≤ ``budget``, in step
    order."""
    return sorted((r for r in records if key in r and r["step"] <= budget), key=lambda r: r["step"])


def point_outcome(records: list[dict], criterion: Criterion, budget: int, seeds: int,
                  diverged: bool = False) -> dict:
    """Per-seed success, steps-to-success and final value (see the module docstring);
    ``diverged``: the run stopped on a non-finite value (its summary says so).

    Returns ``{"success": [bool]*S, "steps_to_success": [int|None]*S, "final": [float]*S,
    "last_step": int|None, "past_budget": bool, "evaluations": int}``.
    """
    key = f"eval/{criterion.metric}"
    kept = _credited(records, key, budget)
    past = any(r.get("step", 0) > budget for r in records)
    first: list[int | None] = [None] * seeds
    for r in kept:
        for i, v in enumerate(r[key]):
            if first[i] is None and criterion.met(v):
                first[i] = int(r["step"])
    final = [float(v) for v in kept[-1][key]] if kept and not diverged else [math.nan] * seeds
    if criterion.when == "final":
        success = [criterion.met(v) for v in final]
        first = [f if ok else None for f, ok in zip(first, success, strict=True)]
    else:
        success = [s is not None for s in first]
    return {"success": success, "steps_to_success": first, "final": final,
            "last_step": kept[-1]["step"] if kept else None, "past_budget": past,
            "evaluations": len(kept)}


def validation_curve(records: list[dict], metric: str, budget: int):
    """One point's validation curve within budget, from its ``metrics.jsonl`` records.

    Returns ``(steps, values)``: ``steps`` (n,) the evaluated steps ≤ ``budget`` in order,
    ``values`` (n, seeds) ``eval/<metric>`` at those steps (the lines :func:`point_outcome`
    credits; later lines of a point resumed past its budget are left out).
    """
    import numpy as np

    key = f"eval/{metric}"
    kept = _credited(records, key, budget)
    steps = np.array([int(r["step"]) for r in kept], dtype=int)
    if not kept:
        return steps, np.zeros((0, 0))
    return steps, np.array([np.atleast_1d(r[key]) for r in kept], dtype=float)


def selection_key(outcome: dict, criterion: Criterion) -> tuple[float, float]:
    """Learning-rate selection on validation: most successes, then the best mean final value
    in the criterion's direction (non-finite = worst). Larger keys are better."""
    finite = [v for v in outcome["final"] if math.isfinite(v)]
    if len(finite) < len(outcome["final"]) or not finite:
        score = -math.inf
    else:
        score = criterion.sign() * sum(finite) / len(finite)
    return float(sum(outcome["success"])), score
