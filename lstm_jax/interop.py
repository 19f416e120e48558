"""Weights to and from PyTorch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (no torch import needed).

A PyTorch ``state_dict`` (arrays, e.g. ``{k: v.numpy() for k, v in m.state_dict().items()}``)
holds, for layer ``l``::

    weight_ih_l{layer}  (G·H, D)     weight_hh_l{layer}  (G·H, H)
    bias_ih_l{layer}    (G·H,)       bias_hh_l{layer}    (G·H,)

with gate blocks in the same order as ours (LSTM ``i, f, g, o``; GRU ``r, z, n``). The mapping:

* kernels are transposed: ``w_ih = weight_ih.T``, ``w_hh = weight_hh.T``;
* RNN and LSTM: both biases sit outside any product, so ``bias = bias_ih + bias_hh``;
  exporting writes ``bias_ih = bias`` and ``bias_hh = 0`` (the same function);
* GRU: the recurrent candidate bias sits inside ``r ⊙ (·)``, so ``bias[r,z] = bias_ih[r,z] +
  bias_hh[r,z]``, ``bias[n] = bias_ih[n]`` and ``b_hn = bias_hh[n]`` (exported back exactly).
  PyTorch's GRU is the reset-after variant (``gru_reset_after=True``).

Only unidirectional, ``batch_first``-agnostic, ``bias=True`` modules without projections map.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lstm_jax.errors import UserError
from lstm_jax.recurrence import Recurrence


def _get(state_dict, key):
    if key not in state_dict:
        raise UserError(f"state_dict has no {key!r}; keys are {sorted(state_dict)}")
    return np.asarray(state_dict[key])


def load_torch_state_dict(model: Recurrence, state_dict: dict) -> None:
    """Copy a PyTorch RNN/LSTM/GRU ``state_dict`` into ``model`` in place (see module doc)."""
    H = model.config.hidden
    if model.config.arch == "gru" and not model.config.gru_reset_after:
        raise UserError("PyTorch's GRU is the reset-after variant; build with gru_reset_after=True")
    for layer, cell in enumerate(model.cells):
        w_ih, w_hh = _get(state_dict, f"weight_ih_l{layer}"), _get(state_dict, f"weight_hh_l{layer}")
        b_ih, b_hh = _get(state_dict, f"bias_ih_l{layer}"), _get(state_dict, f"bias_hh_l{layer}")
        want = (cell.blocks * H, cell.in_features)
        if w_ih.shape != want:
            raise UserError(f"weight_ih_l{layer} has shape {w_ih.shape}; expected {want} for "
                            f"arch={model.config.arch}, hidden={H}")
        dtype = cell.w_ih[...].dtype
        cell.w_ih[...] = jnp.asarray(w_ih.T, dtype)
        cell.w_hh[...] = jnp.asarray(w_hh.T, dtype)
        if model.config.arch == "gru":
            bias = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H:]])
            cell.b_hn[...] = jnp.asarray(b_hh[2 * H:], dtype)
        else:
            bias = b_ih + b_hh
        cell.bias[...] = jnp.asarray(bias, dtype)


def to_torch_state_dict(model: Recurrence) -> dict[str, np.ndarray]:
    """Export ``model`` as a PyTorch ``state_dict`` of NumPy arrays (see module doc)."""
    H = model.config.hidden
    out = {}
    for layer, cell in enumerate(model.cells):
        p = {k: np.asarray(v) for k, v in cell.params().items()}
        out[f"weight_ih_l{layer}"] = p["w_ih"].T.copy()
        out[f"weight_hh_l{layer}"] = p["w_hh"].T.copy()
        out[f"bias_ih_l{layer}"] = p["bias"].copy()
        b_hh = np.zeros_like(p["bias"])
        if model.config.arch == "gru":
            b_hh[2 * H:] = p["b_hn"]
        out[f"bias_hh_l{layer}"] = b_hh
    return out
