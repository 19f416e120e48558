"""Initialisers that must not run LAPACK inside a compiled program.

:func:`orthogonal` draws a Haar-distributed orthogonal matrix like
``jax.nn.initializers.orthogonal`` does (the Q of a QR factorisation of a standard normal matrix,
columns multiplied by the signs of R's diagonal; Mezzadri 2007, "How to generate random matrices
from the classical compact groups"), but factorises on the host with NumPy.

Why not in the compiled program: jaxlib 0.10.2's CPU QR (``lapack_sgeqrf_ffi``) splits a *batched*
QR into sub-tasks on the same thread pool it runs on and blocks until they finish. With two such
QRs running at once on a 2-thread pool, both threads wait for sub-tasks that nobody runs: the
process hangs at 0 % CPU and ignores signals. ``jax.vmap`` over seeds of a cell's initialiser,
which holds one QR per gate block, produces exactly that (docs/robustness.md has the JAX-only
reproduction). The normal draws stay in JAX (so the same key gives the same matrix on every
backend and under ``vmap``); only the factorisation leaves it, through ``jax.pure_callback``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np


def _haar_q(a: np.ndarray, dtype=None) -> np.ndarray:
    """Q·diag(sign(diag R)) of ``a = QR`` for a stack ``(..., m, n)`` with m ≥ n, in float64,
    returned in ``dtype`` (default ``a``'s)."""
    q, r = np.linalg.qr(np.asarray(a, np.float64))
    signs = np.sign(np.diagonal(r, axis1=-2, axis2=-1))
    signs = np.where(signs == 0, 1.0, signs)
    return (q * signs[..., None, :]).astype(a.dtype if dtype is None else dtype)


# One callable per dtype, so that jit's cache recognises the callback of a second call. The
# result dtype is bound here, not read from the argument: under the thread-local
# ``jax.enable_x64`` context a callback that runs on another thread can receive its argument
# canonicalised to float32, and returning that dtype then fails the result check.
_HAAR_Q = {np.dtype(t): partial(_haar_q, dtype=np.dtype(t)) for t in (np.float32, np.float64)}


def orthogonal(key: jax.Array, shape: tuple[int, int], dtype=jnp.float32) -> jax.Array:
    """A Haar-distributed ``(rows, cols)`` matrix with orthonormal columns (rows ≥ cols) or rows.

    Args:
      key: a ``jax.random`` key; works under ``jit`` and ``vmap`` (the host factorises the whole
        batch in one call, one matrix at a time, so a vmapped draw equals the unbatched draws).
      shape: ``(rows, cols)``.
      dtype: the result's dtype. The factorisation is done in float64.

    Returns:
      ``(rows, cols)`` array ``Q`` with ``QᵀQ = I`` (rows ≥ cols) or ``QQᵀ = I`` (rows < cols).
    """
    rows, cols = shape
    tall = (max(rows, cols), min(rows, cols))
    draw_dtype = jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32
    a = jax.random.normal(key, tall, draw_dtype)
    if isinstance(a, jax.core.Tracer):
        q = jax.pure_callback(_HAAR_Q[np.dtype(draw_dtype)], jax.ShapeDtypeStruct(tall, draw_dtype),
                              a, vmap_method="expand_dims")
    else:  # eager: the same NumPy factorisation, without compiling a callback program per call
        q = jnp.asarray(_haar_q(np.asarray(a), dtype=np.dtype(draw_dtype)))
    if rows < cols:
        q = q.T
    return q.astype(dtype)
