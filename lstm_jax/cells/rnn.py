"""Elman's tanh RNN (Elman 1990, "Finding structure in time")::

    h_t = tanh(W x_t + U h_{t−1} + b)

One block (G = 1); carry ``{"h": (B, H)}``; no gates.

Fast paths: fused backward ``da = dh' ⊙ (1 − h'²)`` (the backward reads the step's output h');
probe factors ``dh_{t−1} = (dh ⊙ (1 − h_t²)) Uᵀ``.
"""

from __future__ import annotations

import jax.numpy as jnp

from lstm_jax.cells.base import RecurrentCell, matmul
from lstm_jax.cells.kernel import FusedPath, JacobianPath, StepJacobian
from lstm_jax.cells.registry import register


def _forward(xw_t, h, c, w_hh, extra, mm=None):
    return jnp.tanh(xw_t + matmul(h, w_hh, mm)), None, None, ()


def _backward(big, small, h_t, c_new, dh, dc, extra):
    return dh * (1.0 - h_t * h_t), None, None, None


def _factors(res) -> StepJacobian:
    return StepJacobian(1.0 - res.h * res.h, None, None, res.mask)


def _pullback(w_hh, jac, v):
    dh = v["h"]
    return {"h": matmul(dh * jac.scale, w_hh, None, ((dh.ndim - 1,), (1,)))}


@register("rnn", "tanh RNN: h_t = tanh(W x_t + U h_{t−1} + b), no gates",
          "Elman (1990), Finding structure in time")
class RNNCell(RecurrentCell):
    """Elman's tanh RNN: ``h_t = tanh(W_x x_t + W_h h_{t−1} + b)`` (Elman 1990)."""

    blocks = 1
    torch_module = "RNN"
    fused = FusedPath(_forward, _backward, h_residual="new")
    jacobian = JacobianPath(_factors, _pullback)

    @staticmethod
    def step(params, carry, xw):
        h = jnp.tanh(xw + carry["h"] @ params["w_hh"])
        return {"h": h}, {}
