"""Recurrent cells: one module per cell, one registry (``lstm-jax archs`` lists it).

Each cell is a Flax NNX module that owns its parameters and a *pure* one-step update
``step(params, carry, xw_t) -> (carry, gates)``. The input projection ``xw_t = x_t @ w_ih + bias``
is computed for all steps at once by :mod:`lstm_jax.recurrence`, so ``step`` only does the
recurrent matmul and the element-wise gate arithmetic. The NNX base class is in
:mod:`lstm_jax.cells.base`, the registry in :mod:`~lstm_jax.cells.registry`, the configuration in
:mod:`~lstm_jax.cells.config`, the pure step and its fast paths in :mod:`~lstm_jax.cells.kernel`;
``docs/cells.md`` shows how to add a cell.

Parameter layout (``G`` gate blocks; ``D`` input width, ``H`` hidden size)::

    w_ih  (D, G·H)   input kernel
    w_hh  (H, G·H)   recurrent kernel
    bias  (G·H,)     one bias per gate (PyTorch's b_ih + b_hh folded into one)
    ...              cell-specific extras (GRU b_hn, peephole p_i/p_f/p_o)

Gate blocks along the last axis follow PyTorch's order where PyTorch has the cell, so weights
interchange block by block (:mod:`lstm_jax.interop`): LSTM ``(i, f, g=C̃, o)``, GRU ``(r, z, n)``.
"""

from lstm_jax.cells.base import RecurrentCell, make_cell, step_fn
from lstm_jax.cells.config import (
    INDRNN_INITS,
    INPUT_INITS,
    RECURRENT_INITS,
    CellConfig,
    cell_accepts,
    cell_config_for,
)
from lstm_jax.cells.kernel import (
    CellStep,
    FusedPath,
    JacobianPath,
    StepJacobian,
    StepResiduals,
    fused_path,
    jacobian_path,
)
from lstm_jax.cells.registry import ARCHS, CellEntry, cell_class, register, registered

# Import order is registration order, the order ``lstm-jax archs`` lists.
# isort: off
from lstm_jax.cells.rnn import RNNCell
from lstm_jax.cells.lstm import LSTMCell
from lstm_jax.cells.gru import GRUCell
from lstm_jax.cells.peephole import PeepholeLSTMCell
from lstm_jax.cells.cifg import CIFGCell
from lstm_jax.cells.janet import JANETCell
from lstm_jax.cells.indrnn import IndRNNCell
from lstm_jax.cells.exprnn import ExpRNNCell
from lstm_jax.cells.lru import LRUCell
# isort: on

#: name -> class, for the cells registered so far (prefer :func:`cell_class`).
CELL_CLASSES = {name: entry.cls for name, entry in registered().items()}

__all__ = [
    "ARCHS", "CELL_CLASSES", "CIFGCell", "ExpRNNCell", "IndRNNCell", "JANETCell",
    "INDRNN_INITS", "INPUT_INITS", "PeepholeLSTMCell", "RECURRENT_INITS",
    "CellConfig", "CellEntry", "CellStep",
    "FusedPath", "GRUCell", "JacobianPath", "LRUCell", "LSTMCell", "RNNCell", "RecurrentCell",
    "StepJacobian", "StepResiduals", "cell_accepts", "cell_class", "cell_config_for", "fused_path",
    "jacobian_path", "make_cell", "register", "registered", "step_fn",
]
