"""The statistics of a comparison: Wilson score intervals and paired percentile bootstrap CIs.

* Success rates ``k/n`` get the Wilson (1927) score interval, which stays inside [0, 1] and is
  not degenerate at 0/n or n/n (the Wald interval ``p̂ ± z·sqrt(p̂(1−p̂)/n)`` is, and 5 seeds are
  common here)::

      p̂ = k/n,   centre = (p̂ + z²/2n) / (1 + z²/n),
      half = z / (1 + z²/n) · sqrt(p̂(1 − p̂)/n + z²/4n²)

* Differences between two arms on the same seeds (same data stream, validation and test sets)
  get a percentile bootstrap CI of the mean paired difference (Efron & Tibshirani 1993, ch. 13):
  resample the seeds' differences with replacement ``n_resamples`` times and take the
  ``(1 ± conf)/2`` quantiles of the resampled means. With 5 seeds the bootstrap distribution has
  few distinct values, so the interval is coarse; it is reported beside the per-seed numbers.
  The same function bootstraps the REVIEWS of a test split (IMDB: per-review correctness averaged
  over seeds, one difference per review). Such a sample is large with few distinct values, and it
  is resampled through the counts of its distinct values, one Multinomial(n, p̂) draw per resample:
  the same bootstrap distribution without an ``(n_resamples, n)`` index matrix.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from lstm_jax.errors import UserError


def z_value(conf: float = 0.95) -> float:
    """The two-sided standard-normal quantile: 1.959964 at ``conf = 0.95``."""
    if not 0 < conf < 1:
        raise UserError(f"conf={conf!r} must be in (0, 1)")
    return NormalDist().inv_cdf(0.5 + conf / 2)


def wilson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` of a success rate ``k/n`` (Wilson 1927)."""
    if n <= 0 or not 0 <= k <= n:
        raise UserError(f"wilson: need 0 ≤ k ≤ n and n > 0; got k={k}, n={n}")
    z = z_value(conf)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_bootstrap(diffs, conf: float = 0.95, n_resamples: int = 10_000,
                     seed: int = 0) -> dict:
    """Mean of paired differences ``diffs`` ``(n,)`` and its percentile bootstrap CI.

    Returns ``{"mean", "low", "high", "n", "conf", "n_resamples"}`` (None bounds for n < 2).
    """
    d = np.asarray(list(diffs), dtype=float)
    if d.ndim != 1 or d.size == 0:
        raise UserError("paired_bootstrap needs a non-empty list of differences")
    out = {"mean": float(d.mean()), "low": None, "high": None, "n": int(d.size), "conf": conf,
           "n_resamples": n_resamples}
    if d.size < 2 or not np.all(np.isfinite(d)):
        return out
    rng = np.random.default_rng(seed)
    values, counts = np.unique(d, return_counts=True)
    if d.size > 1000 and values.size <= 64:
        means = rng.multinomial(d.size, counts / d.size, size=n_resamples) @ values / d.size
    else:
        means = d[rng.integers(0, d.size, size=(n_resamples, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - conf) / 2, (1 + conf) / 2])
    out["low"], out["high"] = float(lo), float(hi)
    return out
