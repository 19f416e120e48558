"""The adapter that lets the probes read any ``flax.nnx.RNN`` of an ``nnx.RNNCellBase``.

The probes of :mod:`lstm_jax.probes.api` accept such a model besides the package's
:class:`~lstm_jax.recurrence.Recurrence` (:func:`routes_here` decides) and run it through
:mod:`lstm_jax.probes.flax_probes`, which computes the quantities below from what this module
builds. Flax's ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell``, ``SimpleCell`` and a user's own
``RNNCellBase`` subclass all work: the probes only call the cell,
``cell(carry, x_t) -> (carry, y_t)``.

How. The carry pytree is flattened into named parts ``{name: (B, n)}`` (each leaf's feature axes
raveled), and the cell becomes a pure step ``(state, parts, x_t) -> (parts, y_t)`` through
``nnx.split``/``nnx.merge``. The generic sweeps of :mod:`lstm_jax.probes.sweep` then run as for
the reset-before GRU: ``jax.vjp`` of the masked step map, probe vectors carried in log scale (finite
norms down to 1e-300), one reverse sweep for every lag.

Quantities (T the anchor step, per row, for every lag k = 0 … T):

* per leaf ``p``: ``‖∂p_T/∂p_{T−k}‖_F``, perturbing leaf p of the carry after step T−k with the
  other leaves held fixed, through every path (for Flax's LSTM, ``c`` and ``h``);
* ``total``: ``‖∂carry_T/∂carry_{T−k}‖_F`` with all leaves as one vector (the full Jacobian,
  off-diagonal blocks included);
* loss gradient: ``‖∂L/∂carry_t‖`` per leaf and in total, for a loss of the RNN's outputs ``y``.
  ``∂L/∂carry_t`` is the zero-perturbation derivative: a zero ``ε_t`` added to the carry after
  step t reaches L through the later steps' outputs ``y_{t+1}, …`` (not ``y_t``, which step t
  computed already). Computed as the direct gradients ``∂L/∂y`` pulled through the step's output
  map, then accumulated backwards in log scale as in :mod:`lstm_jax.probes.loss`;
* spectral: ``σ_max(∂carry_T/∂carry_{T−k})`` of the whole carry by power iteration.

Leaf names: the cell's ``carry_names`` attribute if it has one (a tuple, one name per leaf in
``jax.tree_util`` order); ``("c", "h")`` for Flax's two LSTM cells (their carry is ``(c, h)``);
``"h"`` for a carry that is one array; otherwise the leaf's pytree path (``"slow"`` for a dict
key, ``"0"`` for a tuple index, ``"a/0"`` nested).

Inputs are ``x`` ``(B, T, *features)`` (``(T, B, *features)`` if the RNN is ``time_major``) and
an optional mask ``(B, T)``: a padded step leaves the carry unchanged (as in ``Recurrence``;
``nnx.RNN`` itself has no mask). The initial carry is the cell's ``initialize_carry`` called with
a fixed explicit key (``nnx.Rngs(carry=0)``; zeros for Flax's cells), never the RNN's own carry
RNG stream; pass ``initial_carry=`` (a pytree like the cell's carry) to choose another.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lstm_jax.errors import UserError
from lstm_jax.probes.sweep import masked_step

TOTAL = "total"
ACCEPTED = ("lstm_jax.Recurrence, or flax.nnx.RNN wrapping an nnx.RNNCellBase (nnx.LSTMCell, "
            "nnx.OptimizedLSTMCell, nnx.GRUCell, nnx.SimpleCell or your own subclass)")


def routes_here(model) -> bool:
    """True for an ``nnx.RNN`` of an ``nnx.RNNCellBase``, False for a ``Recurrence``.

    Raises:
      UserError: for anything else (naming what the probes accept).
    """
    from lstm_jax.recurrence import Recurrence

    if isinstance(model, Recurrence):
        return False
    if isinstance(model, nnx.RNN):
        if not isinstance(model.cell, nnx.RNNCellBase):
            raise UserError(f"model is an nnx.RNN of {type(model.cell).__name__}, which is not an "
                            f"nnx.RNNCellBase; the probes accept {ACCEPTED}")
        return True
    hint = (" (wrap the cell: nnx.RNN(cell))" if isinstance(model, nnx.RNNCellBase) else "")
    raise UserError(f"model={type(model).__name__!r} cannot be probed{hint}; the probes accept "
                    f"{ACCEPTED}")


class CarrySpec(NamedTuple):
    """How a carry pytree maps to named parts ``{name: (B, n)}`` (static, hashable)."""

    treedef: Any
    names: tuple[str, ...]  # one per leaf, in treedef order
    features: tuple[tuple[int, ...], ...]  # each leaf's shape after the batch axis

    def parts(self, carry) -> dict[str, jax.Array]:
        leaves = self.treedef.flatten_up_to(carry)
        return {n: leaf.reshape(leaf.shape[0], -1) for n, leaf in zip(self.names, leaves,
                                                                         strict=True)}

    def tree(self, parts: dict[str, jax.Array]):
        return self.treedef.unflatten([parts[n].reshape(parts[n].shape[:1] + f)
                                       for n, f in zip(self.names, self.features, strict=True)])

    def sizes(self) -> dict[str, int]:
        return {n: math.prod(f) for n, f in zip(self.names, self.features, strict=True)}


def _path_name(path) -> str:
    return jax.tree_util.keystr(path, simple=True, separator="/") or "h"


def _leaf_names(cell, paths) -> tuple[str, ...]:
    names = getattr(cell, "carry_names", None)
    if names is None and isinstance(cell, nnx.LSTMCell | nnx.OptimizedLSTMCell):
        names = ("c", "h")
    if names is None:
        names = tuple(_path_name(p) for p in paths)
    names = tuple(names)
    if len(names) != len(paths) or not all(isinstance(n, str) and n for n in names):
        raise UserError(f"{type(cell).__name__}.carry_names={names!r} must name each of the "
                        f"carry's {len(paths)} leaves with a non-empty string")
    if len(set(names)) != len(names) or TOTAL in names:
        raise UserError(f"carry leaf names {names!r} must be unique and not {TOTAL!r}; set "
                        f"carry_names on {type(cell).__name__} to rename them")
    return names


def carry_spec(cell, carry, batch: int) -> CarrySpec:
    """The :class:`CarrySpec` of ``carry`` (a pytree of ``(batch, *features)`` float arrays)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(carry)
    if not flat:
        raise UserError(f"{type(cell).__name__}'s carry has no arrays; there is nothing to probe")
    names = _leaf_names(cell, [p for p, _ in flat])
    for name, (_, leaf) in zip(names, flat, strict=True):
        shape = tuple(np.shape(leaf))
        if not shape or shape[0] != batch:
            raise UserError(f"carry leaf {name!r} has shape {shape}; the probes need the batch "
                            f"({batch}) as its first axis")
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            raise UserError(f"carry leaf {name!r} has dtype {jnp.result_type(leaf)}; the probes "
                            "differentiate the carry, so every leaf must be floating point")
    return CarrySpec(treedef, names, tuple(tuple(np.shape(leaf))[1:] for _, leaf in flat))


def make_step(graphdef, spec: CarrySpec):
    """The cell as a pure step ``(state, parts, x_t) -> (parts, y_t)`` for the sweeps."""

    def step(state, parts, x_t):
        new, y = nnx.merge(graphdef, state)(spec.tree(parts), x_t)
        return spec.parts(new), y

    return step


class Setup(NamedTuple):
    graphdef: Any
    state: Any
    spec: CarrySpec
    xs: jax.Array  # (T, B, *features)
    mask: jax.Array | None  # (T, B) bool or None
    carry0: dict[str, jax.Array]  # {name: (B, n)}
    outputs: Any  # ShapeDtypeStruct pytree of one step's y_t


def setup(model, x, mask, initial_carry, layer: int) -> Setup:
    """Check the inputs and build what every core needs (eager, cheap)."""
    if layer != 0:
        raise UserError(f"layer={layer!r}: an nnx.RNN has a single layer, layer 0")
    if model.reverse:
        raise UserError("the probes run an nnx.RNN forwards; reverse=True is not supported "
                        "(build it with reverse=False and pass the flipped sequence)")
    cell = model.cell
    try:
        feature_axes = int(cell.num_feature_axes)
    except NotImplementedError:
        feature_axes = 1
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise UserError(f"x has dtype {x.dtype}; the probes need floating-point inputs (embed "
                        "token ids before the RNN)")
    want = "(time, batch, features)" if model.time_major else "(batch, time, features)"
    if x.ndim != 2 + feature_axes:
        raise UserError(f"x must have shape {want} with {feature_axes} feature axis/axes for "
                        f"{type(cell).__name__}; got shape {tuple(x.shape)}")
    xs = x if model.time_major else jnp.swapaxes(x, 0, 1)
    T, B = xs.shape[:2]
    if T < 1:
        raise UserError("x must have at least one time step")
    in_features = getattr(cell, "in_features", None)
    if isinstance(in_features, int) and xs.shape[-1] != in_features:
        raise UserError(f"x has {xs.shape[-1]} features per step but {type(cell).__name__} was "
                        f"built for in_features={in_features}")
    if mask is not None:
        if tuple(np.shape(mask)) != (B, T):
            raise UserError(f"mask must have shape (batch, time)={(B, T)}; "
                            f"got {tuple(np.shape(mask))}")
        mask = jnp.swapaxes(jnp.asarray(mask).astype(bool), 0, 1)
    if initial_carry is None:  # an explicit key, never the RNN's carry RNG stream
        initial_carry = cell.initialize_carry((B,) + tuple(xs.shape[2:]),
                                              rngs=nnx.Rngs(carry=0))
    initial_carry = jax.tree.map(jnp.asarray, initial_carry)
    spec = carry_spec(cell, initial_carry, B)
    graphdef, state = nnx.split(cell)
    carry0 = spec.parts(initial_carry)
    new, y = jax.eval_shape(make_step(graphdef, spec), state, carry0, xs[0])
    got = {n: (tuple(v.shape), v.dtype) for n, v in new.items()}
    want_c = {n: (tuple(v.shape), v.dtype) for n, v in carry0.items()}
    if got != want_c:
        raise UserError(f"{type(cell).__name__} returned a carry with parts {got}; the initial "
                        f"carry has {want_c} (shapes after raveling each leaf's feature axes)")
    return Setup(graphdef, state, spec, xs, mask, carry0, y)


def run_forward(step, state, xs, mask_t, carry0):
    """Run the masked step over time: carries entering each step ``{name: (T, B, n)}`` and the
    step outputs ``y`` (time-major)."""
    fstep = masked_step(step, state)

    def body(c, inputs):
        new, y = fstep(c, *inputs)
        return new, (new, y)

    _, (carries, ys) = jax.lax.scan(body, carry0, (xs, mask_t))
    prev = {p: jnp.concatenate([carry0[p][None], carries[p][:-1]], axis=0) for p in carry0}
    return prev, ys


def mask_or_ones(mask_t, xs):
    return jnp.ones(xs.shape[:2], bool) if mask_t is None else mask_t
