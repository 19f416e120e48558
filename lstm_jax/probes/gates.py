"""Gate statistics per step: mean gate value and fraction of saturated units.

LSTM gates ``i, f, o`` (Hochreiter & Schmidhuber 1997; Gers et al. 2000), GRU ``r, z``
(Cho et al. 2014). A unit is *saturated* when its gate is below ``low`` or above ``high``
(default 0.05 / 0.95): there the sigmoid's derivative is < 0.05, so gradient through the gate's
pre-activation nearly stops, while a forget gate near 1 keeps the cell path open.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gate_stats_from_sequences(gates: dict[str, jax.Array], mask: jax.Array, *,
                              low: float = 0.05, high: float = 0.95) -> dict:
    """``gates``: ``{name: (T, B, H)}``; ``mask``: ``(T, B)`` bool.

    Returns ``{name: {"mean": (T,), "saturated": (T,)}}``: averages over valid rows and all
    units at each step (NaN at a step where no row is valid).
    """
    m = mask.astype(jnp.float32)
    rows = jnp.sum(m, axis=1)
    denom = jnp.where(rows > 0, rows, jnp.nan)
    out = {}
    for name, g in gates.items():
        sat = ((g < low) | (g > high)).astype(jnp.float32)
        out[name] = {"mean": jnp.sum(jnp.mean(g, -1) * m, 1) / denom,
                     "saturated": jnp.sum(jnp.mean(sat, -1) * m, 1) / denom}
    return out
