"""Each step's carry Jacobian ``∂carry_t/∂carry_{t−1}`` in factored form, for the probe sweeps.

For the three standard cells the Jacobian of one step is diagonal factors around one matrix,
``W_hh``. Computed once for all steps from the forward loop's residuals
(:func:`lstm_jax.fused.forward_with_residuals`), vectorised over T, the factors make pulling a
vector back through step t (:func:`carry_vjp`) cost one matmul and a few multiplies; ``jax.vjp``
of the step would recompute the step's matmul and activations at every step of every sweep.

Each cell's factors and its one-step pull-back live with the cell (its
:class:`~lstm_jax.cells.JacobianPath`, derivations in ``lstm_jax/cells/lstm.py`` etc.); this
module applies them and the mask. A padded step (mask False) is the identity. Tests compare
sweeps built on these against ``jax.jacrev`` of an unrolled loop and the chain rule of per-step
``jax.jacfwd`` Jacobians.
"""

from __future__ import annotations

import jax.numpy as jnp

from lstm_jax.cells.kernel import CellStep, JacobianPath, StepJacobian, StepResiduals
from lstm_jax.cells.registry import cell_class

__all__ = ["StepJacobian", "StepResiduals", "carry_vjp", "step_jacobians"]


def _path(cell) -> JacobianPath:
    step: CellStep = cell_class(cell).kernel() if isinstance(cell, str) else cell
    return step.jacobian


def step_jacobians(cell, res: StepResiduals) -> StepJacobian:
    """The factors of every step at once from the forward loop's residuals (time-vectorised).

    ``cell``: a :class:`~lstm_jax.cells.CellStep` with a Jacobian path, or a registered name.
    """
    return _path(cell).factors(res)


def carry_vjp(cell, w_hh, jac: StepJacobian, v: dict) -> dict:
    """``vᵀ ∂carry_t/∂carry_{t−1}`` for one step.

    ``jac`` is step t's factors (``(B, ·)``); ``v`` ``{"h": (…, B, H)[, "c": …]}`` cotangents of
    carry_t, with any leading axes (probe vectors). Returns carry_{t−1}'s, same shapes.
    """
    out = _path(cell).pullback(w_hh, jac, v)
    if jac.mask is not None:
        m = jac.mask[:, None]
        out = {k: jnp.where(m, out[k], v[k]) for k in out}
    return out
