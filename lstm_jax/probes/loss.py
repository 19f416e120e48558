"""∂L/∂h_t for every step t of one layer, for a scalar loss of the stack's outputs.

Two ways, which agree where float32 can represent the answer (tests check it):

* :func:`loss_grad_autodiff`: the zero-perturbation trick. A zero tensor ``ε_t`` is added to the
  layer's ``h_t`` after each step (``perturb=`` of :func:`~lstm_jax.recurrence.scan_layer`), and
  ``∂L/∂ε_t = ∂L/∂h_t`` (through every later path) for every t comes out of one ``jax.grad``.
  Plain float32: far from the loss the gradient underflows to exact zeros.
* :func:`loss_grad_log_norms` (what the probes report): one ``jax.grad`` gives the *direct*
  gradients ``g_t`` (the loss's dependence on ``h_t`` through the layers above and the loss,
  this layer's recurrence held fixed), then one reverse sweep through this layer accumulates
  ``∂L/∂h_t = g_t + (∂L/∂carry_{t+1}) ∂carry_{t+1}/∂h_t`` in log scale
  (:mod:`lstm_jax.probes.sweep`), so the norm stays finite at 1e-300. (Only this layer's
  recurrence is carried in log scale; the direct gradients from the layers above are float32.)

A loss is any ``loss_fn(outputs) -> scalar`` of the top layer's ``(B, T, H)`` outputs (close over
a head's parameters and the targets); :func:`last_step_readout_loss` is the default when there is
no task.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from lstm_jax.probes.layer import layer_view
from lstm_jax.probes.sweep import reverse_sweep
from lstm_jax.recurrence import scan_layer

LossFn = Callable[[jax.Array], jax.Array]


def last_step_readout_loss(key, hidden: int, anchor: jax.Array, out_dim: int = 1) -> LossFn:
    """The default loss when there is no task: a fixed random linear readout of the last h.

    ``L = ½ · mean_b ‖h_{T_b} W − y_b‖²`` with ``W ~ N(0, 1/H)`` of shape ``(H, out_dim)``,
    targets ``y ~ N(0, 1)`` of shape ``(B, out_dim)``, both drawn from ``key``, and ``T_b`` the
    anchor step of row b (``(B,)``). Only ``h_{T_b}`` enters, so ∂L/∂h_t is
    ``(h_{T_b}W − y_b)Wᵀ ∂h_{T_b}/∂h_t / B``: one vector through the hidden Jacobians.
    """
    kw, ky = jax.random.split(key)
    w = jax.random.normal(kw, (hidden, out_dim)) / jnp.sqrt(hidden)
    y = jax.random.normal(ky, (anchor.shape[0], out_dim))

    def loss_fn(outputs):
        h_last = jnp.take_along_axis(outputs, anchor[:, None, None], axis=1)[:, 0]
        return 0.5 * jnp.mean(jnp.sum((h_last @ w.astype(outputs.dtype) - y) ** 2, axis=-1))

    return loss_fn


def _run_above(step, params_list, hs, mask_t, carry0_list, layer):
    for params, carry0 in zip(params_list[layer + 1:], carry0_list[layer + 1:], strict=True):
        hs = scan_layer(step, params, hs, mask_t, carry0).sequences["h"]
    return jnp.swapaxes(hs, 0, 1)


def loss_grad_autodiff(step, params_list, x, mask, carry0_list, layer: int,
                       loss_fn: LossFn) -> jax.Array:
    """``∂L/∂h_t`` of layer ``layer`` for every t, ``(B, T, H)``, by the zero-perturbation trick."""
    xs = jnp.swapaxes(x, 0, 1)
    T, B = xs.shape[:2]
    mask_t = jnp.ones((T, B), bool) if mask is None else jnp.swapaxes(mask.astype(bool), 0, 1)
    H = carry0_list[layer]["h"].shape[-1]

    def loss_of(eps):
        hs = xs
        for i, (params, carry0) in enumerate(zip(params_list, carry0_list, strict=True)):
            pert = {"h": eps} if i == layer else None
            hs = scan_layer(step, params, hs, mask_t, carry0, perturb=pert).sequences["h"]
        return loss_fn(jnp.swapaxes(hs, 0, 1))

    return jnp.swapaxes(jax.grad(loss_of)(jnp.zeros((T, B, H), xs.dtype)), 0, 1)


def loss_grad_log_norms(step, params_list, x, mask, carry0_list, layer: int,
                        loss_fn: LossFn) -> jax.Array:
    """``ln ‖∂L/∂h_t‖`` per row and step, ``(B, T)``, carried in log scale (see module doc)."""
    view = layer_view(step, (), params_list[: layer + 1], x, mask, carry0_list[: layer + 1], layer)

    def upper_loss(hs):
        return loss_fn(_run_above(step, params_list, hs, view.mask, carry0_list, layer))

    g = jax.grad(upper_loss)(view.carries["h"])  # (T, B, H) direct gradients
    per_step, _ = reverse_sweep(view.pullback, view.pull_inputs, view.mask, view.carry0,
                                inject={"h": g[:, None]}, n=1,
                                reduce=lambda logs: logs["h"][0])
    return per_step.T


def head_loss(model, batch, loss) -> LossFn:
    """The hook for trained models and tasks: a loss of the recurrence's top outputs through a
    model's readout and head.

    ``model`` has ``read(outputs, last, mask)`` and ``head`` (:class:`lstm_jax.model.SequenceModel`),
    ``batch`` has ``mask`` and whatever ``loss(head_outputs, batch) -> scalar`` reads (a task's
    loss). Returns ``loss_fn(outputs (B, T, H)) -> scalar`` for :func:`loss_grad_log_norms`;
    dropout is off. The readout of the last valid step is taken from ``outputs`` (padded steps
    carry the state, so it equals the scan's final carry).
    """
    from lstm_jax.errors import UserError
    from lstm_jax.probes.layer import last_valid

    if getattr(model, "bidirectional", False):
        raise UserError("the loss-gradient probe reads one direction's states; a bidirectional "
                        "model's head also reads the backward recurrence (not supported)")

    def loss_fn(outputs):
        B, T = outputs.shape[:2]
        idx = last_valid(batch.mask, B, T)
        last = jnp.take_along_axis(outputs, idx[:, None, None], axis=1)[:, 0]
        return loss(model.head(model.read(outputs, last, batch.mask)), batch)

    return loss_fn
