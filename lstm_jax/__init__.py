"""lstm_jax: measure and plot how gradients flow through tanh RNNs, LSTMs and GRUs.

Public API (see README.md)::

    from lstm_jax import CellConfig, Recurrence
    model = Recurrence(in_features=8, config=CellConfig(arch="lstm", hidden=64), rngs=nnx.Rngs(0))
    result = model(x, mask)          # x: (B, T, 8) -> result.outputs: (B, T, 64)
"""

from lstm_jax.cells import ARCHS, CellConfig, GRUCell, LSTMCell, RNNCell, make_cell
from lstm_jax.errors import UserError
from lstm_jax.recurrence import Recurrence, StackResult, scan_layer

__version__ = "0.1.0"

__all__ = [
    "ARCHS", "CellConfig", "GRUCell", "LSTMCell", "RNNCell", "Recurrence", "StackResult",
    "UserError", "make_cell", "scan_layer", "__version__",
]
