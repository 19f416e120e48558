"""Gradient-flow probes: how far back does a recurrent layer's gradient reach?

For a :class:`~lstm_jax.recurrence.Recurrence`, inputs ``x`` ``(B, T, D)``, a mask ``(B, T)``, a
layer and an anchor step T (default: each row's last valid step), for every lag k = 0 … T−1:

* ``hidden``: ‖∂h_T/∂h_{T−k}‖_F through every path;
* ``cell`` (LSTM): ‖∂C_T/∂C_{T−k}‖_F through every path;
* ``cec`` (LSTM): ‖diag(∏_{j=T−k+1..T} f_j)‖_F, the constant-error-carousel path alone;
* ``loss_grad``: ‖∂L/∂h_t‖ for every step t of a scalar loss;
* ``spectral`` (optional): σ_max(∂h_T/∂h_{T−k}) by power iteration (Pascanu et al. 2013);
* gate statistics per step (mean gate, fraction saturated).

Definitions, methods (``exact`` vs ``hutchinson``) and their cost: :mod:`lstm_jax.probes.jacobian`.
The log-scale sweeps that keep every norm finite down to 1e-300 in float32:
:mod:`lstm_jax.probes.sweep`. All probes are functions of (model, inputs) with no hidden state.
Every probe also takes a ``flax.nnx.RNN`` of any ``nnx.RNNCellBase`` (any pytree carry; norms per
carry leaf and in total): :mod:`lstm_jax.probes.flax_rnn`, ``docs/probing_flax_cells.md``.

Example::

    from lstm_jax.probes import probe, jacobian_norms
    record = probe(model, x, mask, method="hutchinson", samples=4)   # JSON-able, batch means
    jac = jacobian_norms(model, x, mask)                              # per row: (B, T) log10
"""

from lstm_jax.probes.api import (
    default_probes,
    default_spectral_lags,
    gate_statistics,
    jacobian_norms,
    loss_grad,
    probe,
    spectral_norms,
)
from lstm_jax.probes.jacobian import METHODS
from lstm_jax.probes.loss import head_loss, last_step_readout_loss, loss_grad_autodiff

__all__ = [
    "METHODS", "default_probes", "default_spectral_lags", "gate_statistics", "head_loss",
    "jacobian_norms",
    "last_step_readout_loss", "loss_grad", "loss_grad_autodiff", "probe", "spectral_norms",
]
