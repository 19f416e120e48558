"""lstm_jax: measure and plot how gradients flow through tanh RNNs, LSTMs and GRUs.

Public API (see README.md)::

    from lstm_jax import CellConfig, Recurrence
    model = Recurrence(in_features=8, config=CellConfig(arch="lstm", hidden=64), rngs=nnx.Rngs(0))
    result = model(x, mask)          # x: (B, T, 8) -> result.outputs: (B, T, 64)

The names below are imported on first use, so ``import lstm_jax.cli`` does not start JAX: the
command line checks the environment that JAX reads at import (``JAX_NUM_CPU_DEVICES``, ...)
first, and reports a bad value as one line instead of a traceback.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ARCHS": "lstm_jax.cells", "CellConfig": "lstm_jax.cells", "GRUCell": "lstm_jax.cells",
    "LSTMCell": "lstm_jax.cells", "RNNCell": "lstm_jax.cells", "make_cell": "lstm_jax.cells",
    "UserError": "lstm_jax.errors",
    "Recurrence": "lstm_jax.recurrence", "StackResult": "lstm_jax.recurrence",
    "scan_layer": "lstm_jax.recurrence",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lstm_jax' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])
