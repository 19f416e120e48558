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

import numpy as np

from lstm_jax.errors import UserError
from lstm_jax.recurrence import Recurrence


def _get(state_dict, key):
    if key not in state_dict:
        raise UserError(f"state_dict has no {key!r}; keys are {sorted(state_dict)}")
    return np.asarray(state_dict[key])


def load_torch_state_dict(model: Recurrence, state_dict: dict) -> None:
    """Copy a PyTorch RNN/LSTM/GRU ``state_dict`` into ``model`` in place (see module doc).

    Each cell maps its own biases (:meth:`lstm_jax.cells.RecurrentCell.from_torch`); a cell
    without a ``torch.nn`` counterpart refuses.
    """
    H = model.config.hidden
    for layer, cell in enumerate(model.cells):
        w_ih, w_hh = _get(state_dict, f"weight_ih_l{layer}"), _get(state_dict, f"weight_hh_l{layer}")
        b_ih, b_hh = _get(state_dict, f"bias_ih_l{layer}"), _get(state_dict, f"bias_hh_l{layer}")
        want = (cell.blocks * H, cell.in_features)
        if w_ih.shape != want:
            raise UserError(f"weight_ih_l{layer} has shape {w_ih.shape}; expected {want} for "
                            f"arch={model.config.arch}, hidden={H}")
        cell.from_torch(w_ih, w_hh, b_ih, b_hh)


def to_torch_state_dict(model: Recurrence) -> dict[str, np.ndarray]:
    """Export ``model`` as a PyTorch ``state_dict`` of NumPy arrays (see module doc)."""
    out = {}
    for layer, cell in enumerate(model.cells):
        for name, value in cell.to_torch().items():
            out[f"{name}_l{layer}"] = value
    return out
