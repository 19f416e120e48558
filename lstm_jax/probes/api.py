"""Model-level probes: functions of (model, inputs), jitted, no hidden state.

Every function takes a :class:`~lstm_jax.recurrence.Recurrence` (its parameters are read, never
changed) or a ``flax.nnx.RNN`` of any ``nnx.RNNCellBase`` (routed to
:mod:`lstm_jax.probes.flax_rnn`; anything else is a ``UserError``), inputs ``x`` ``(B, T, D)``
and an optional mask ``(B, T)``, and runs the forward recurrence training runs
(:mod:`lstm_jax.probes.layer`). Results are NumPy arrays;
norms are **log10** (finite far below float32's range), per row and per lag ``k = 0..T−1``
(``NaN`` where ``k`` exceeds the row's anchor step).

:func:`probe` runs them all and returns a JSON-able record with batch means and spreads.
"""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from lstm_jax.cells import cell_class, step_fn
from lstm_jax.errors import UserError, check_choice, check_positive
from lstm_jax.probes import flax_probes, flax_rnn
from lstm_jax.probes.gates import gate_stats_from_sequences
from lstm_jax.probes.jacobian import (
    JACOBIAN_PROBES,
    METHODS,
    forget_product_log_norm,
    jacobian_log_norms,
    spectral_log_norms,
)
from lstm_jax.probes.layer import check_layer, layer_view, resolve_anchor, stack_params
from lstm_jax.probes.loss import last_step_readout_loss, loss_grad_log_norms
from lstm_jax.recurrence import check_inputs

LN10 = math.log(10.0)
BATCH_AVERAGE = ("geometric mean over rows: log10_<name> is the mean over rows of the per-row "
                 "log10 norm, log10_<name>_std its standard deviation; at lag k only rows whose "
                 "last real step is at least k count (padded rows drop out of the long lags)")
"""How :func:`probe` averages a norm over the rows of the batch (recorded in every record)."""


def _setup(model, x, mask, initial_carry, layer):
    check_inputs(x, mask, model.in_features)
    check_layer(model, layer)
    if initial_carry is None:  # NumPy zeros: no eager device ops on every probe call
        initial_carry = [{name: np.zeros((x.shape[0], cell.hidden), x.dtype)
                          for name in cell.carry_names} for cell in model.cells]
    return step_fn(model.config), stack_params(model), initial_carry


@functools.cache
def _default_key():
    return jax.random.key(0)


def default_probes(arch) -> tuple[str, ...]:
    """The probes a cell supports, asked of the cell (``arch``: a registered name or a
    :class:`~lstm_jax.cells.CellStep`): ``"hidden"`` always, ``"cell"`` when the carry has a
    cell state ``c``, ``"cec"`` (the forget-gate product ∏f_j) when the cell has a forget gate.
    The LSTM gets ``("hidden", "cell", "cec")``, the tanh RNN ``("hidden",)``."""
    step = cell_class(arch).kernel() if isinstance(arch, str) else arch
    return (("hidden",) + (("cell",) if "c" in step.carry_names else ())
            + (("cec",) if step.forget_gate is not None else ()))


@functools.partial(jax.jit, static_argnames=("step", "layer", "probes", "method", "samples",
                                             "with_cec"))
def _jacobian_core(params_list, x, mask, carry0_list, anchor, key, *, step, layer, probes,
                   method, samples, with_cec):
    gate = getattr(step, "forget_gate", None) if with_cec else None
    view = layer_view(step, (gate,) if gate else (), params_list, x, mask, carry0_list, layer)
    out = (jacobian_log_norms(step, view, anchor, probes, method=method, samples=samples, key=key)
           if probes else {})
    if with_cec:
        out["cec"] = {"ln_sq": 2.0 * forget_product_log_norm(view, anchor, gate), "ln_se": None}
    return out


def jacobian_norms(model, x, mask=None, *, layer: int = 0, anchor=None, probes=None,
                   method: str = "exact", samples: int = 8, key=None,
                   initial_carry=None) -> dict:
    """log10 ‖∂h_T/∂h_{T−k}‖_F, ‖∂C_T/∂C_{T−k}‖_F and ‖diag(∏f)‖_F for every lag k.

    Args:
      model: a ``Recurrence``; layer: which layer's recurrence to probe.
      x: ``(B, T, D)``; mask: ``(B, T)`` bool or None.
      anchor: step T per row: None (each row's last valid step), an int, or ``(B,)`` ints.
      probes: subset of ``("hidden", "cell", "cec")`` (``cell`` for cells with a cell state,
        ``cec`` for cells with a forget gate); default :func:`default_probes`.
      method: ``"exact"`` (H basis vectors) or ``"hutchinson"`` (``samples`` Rademacher
        vectors from ``key``; default key 0). See :mod:`lstm_jax.probes.jacobian` for cost.

    Returns:
      ``{"k": (T,), "anchor": (B,), name: {"log10": (B, T), "log10_se": (B, T) | None}}``.
      ``log10`` is the log10 Frobenius norm per row and lag (for ``hutchinson`` the square root
      of the estimate of ‖J‖_F²); ``log10_se`` the log10 standard error of that ‖J‖_F² estimate.
      For an ``nnx.RNN`` the probes are its carry leaves and ``"total"``
      (:func:`lstm_jax.probes.flax_probes.jacobian_norms`).
    """
    if flax_rnn.routes_here(model):
        return flax_probes.jacobian_norms(model, x, mask, layer=layer, anchor=anchor, probes=probes,
                                          method=method, samples=samples, key=key,
                                          initial_carry=initial_carry)
    supported = default_probes(step_fn(model.config))
    probes = supported if probes is None else tuple(probes)
    for name in probes:
        check_choice("probe", name, supported)
    check_choice("method", method, METHODS)
    if method == "hutchinson":
        check_positive("samples", samples, maximum=1 << 16)
    step, params_list, carry0 = _setup(model, x, mask, initial_carry, layer)
    B, T = x.shape[:2]
    anchor = resolve_anchor(anchor, mask, B, T)
    key = _default_key() if key is None else key
    jac = tuple(p for p in probes if p in JACOBIAN_PROBES)
    out = _jacobian_core(params_list[: layer + 1], x, mask, carry0[: layer + 1], anchor, key,
                         step=step, layer=layer, probes=jac, method=method, samples=samples,
                         with_cec="cec" in probes)
    result = {"k": np.arange(T), "anchor": np.asarray(anchor)}
    for name in probes:
        r = out[name]
        result[name] = {"log10": np.asarray(r["ln_sq"]) / (2 * LN10),
                        "log10_se": None if r["ln_se"] is None else np.asarray(r["ln_se"]) / LN10}
    return result


@functools.partial(jax.jit, static_argnames=("step", "layer", "loss_fn"))
def _loss_core(params_list, x, mask, carry0_list, readout, *, step, layer, loss_fn):
    if loss_fn is None:  # the default loss, rebuilt from arrays so its compile is reused
        key, anchor = readout
        loss_fn = last_step_readout_loss(key, carry0_list[-1]["h"].shape[-1], anchor)
    return loss_grad_log_norms(step, params_list, x, mask, carry0_list, layer, loss_fn)


def loss_grad(model, x, mask=None, loss_fn=None, *, layer: int | None = None, key=None,
              initial_carry=None) -> dict:
    """log10 ‖∂L/∂h_t‖ per row for every step t of one layer (default: the top layer).

    ``loss_fn(outputs (B, T, H)) -> scalar`` is any loss of the top layer's outputs; default
    :func:`~lstm_jax.probes.loss.last_step_readout_loss` (drawn from ``key``, default key 0).
    Computed with one backward pass and a log-scale sweep (:mod:`lstm_jax.probes.loss`). A new
    ``loss_fn`` object means a new compile: reuse one function across calls where possible.

    Returns ``{"t": (T,), "log10": (B, T)}``; NaN after a row's last valid step (padding).
    For an ``nnx.RNN``: ‖∂L/∂carry_t‖ (:func:`lstm_jax.probes.flax_probes.loss_grad`).
    """
    if flax_rnn.routes_here(model):
        return flax_probes.loss_grad(model, x, mask, loss_fn, layer=layer, key=key,
                                     initial_carry=initial_carry)
    layer = model.layers - 1 if layer is None else layer
    step, params_list, carry0 = _setup(model, x, mask, initial_carry, layer)
    B, T = x.shape[:2]
    anchor = resolve_anchor(None, mask, B, T)
    readout = (_default_key() if key is None else key, anchor) if loss_fn is None else None
    ln = _loss_core(params_list, x, mask, carry0, readout, step=step, layer=layer,
                    loss_fn=loss_fn)
    after_last = np.arange(T)[None, :] > np.asarray(anchor)[:, None]
    return {"t": np.arange(T), "log10": np.where(after_last, np.nan, np.asarray(ln) / LN10)}


@functools.partial(jax.jit, static_argnames=("step", "layer", "iters"))
def _spectral_core(params_list, x, mask, carry0_list, anchor, lags, key, *, step, layer, iters):
    view = layer_view(step, (), params_list, x, mask, carry0_list, layer)
    return spectral_log_norms(step, view, anchor, lags, iters=iters, key=key)


def default_spectral_lags(length: int, count: int = 12) -> np.ndarray:
    """About ``count`` lags spread geometrically over 0..length−1."""
    lags = np.unique(np.round(np.geomspace(1, length, count)).astype(int) - 1)
    return lags[lags < length]


def spectral_norms(model, x, mask=None, *, layer: int = 0, anchor=None, lags=None,
                   iters: int = 20, key=None, initial_carry=None) -> dict:
    """log10 σ_max(∂h_T/∂h_{T−k}) for the chosen ``lags`` by power iteration (jvp + vjp).

    Cost: ``iters`` × (one reverse and one forward sweep carrying ``len(lags)`` vectors per row).
    Returns ``{"k": (L,), "log10": (B, L)}`` (a lower bound converging to σ_max from below).
    For an ``nnx.RNN``: σ_max of the whole carry's Jacobian.
    """
    if flax_rnn.routes_here(model):
        return flax_probes.spectral_norms(model, x, mask, layer=layer, anchor=anchor, lags=lags,
                                          iters=iters, key=key, initial_carry=initial_carry)
    check_positive("iters", iters, maximum=10_000)
    step, params_list, carry0 = _setup(model, x, mask, initial_carry, layer)
    B, T = x.shape[:2]
    anchor = resolve_anchor(anchor, mask, B, T)
    lags = default_spectral_lags(T) if lags is None else np.asarray(lags, int)
    if lags.ndim != 1 or lags.size == 0 or lags.min() < 0 or lags.max() >= T:
        raise UserError(f"lags must be a non-empty list of steps in 0..{T - 1}; got {lags!r}")
    key = _default_key() if key is None else key
    ln = _spectral_core(params_list[: layer + 1], x, mask, carry0[: layer + 1], anchor,
                        jnp.asarray(lags, jnp.int32), key, step=step, layer=layer, iters=iters)
    return {"k": lags, "log10": np.asarray(ln) / LN10}


@functools.partial(jax.jit, static_argnames=("step", "names", "layer"))
def _gates_core(params_list, x, mask, carry0_list, *, step, names, layer):
    view = layer_view(step, names, params_list, x, mask, carry0_list, layer)
    return gate_stats_from_sequences(view.gates, view.mask)


def gate_statistics(model, x, mask=None, *, layer: int = 0, initial_carry=None) -> dict:
    """Per step: mean of each gate and fraction of saturated units (< 0.05 or > 0.95).

    Returns ``{gate: {"mean": (T,), "saturated": (T,)}}`` (empty for the tanh RNN and for an
    ``nnx.RNN``, whose cell exposes no gates).
    """
    if flax_rnn.routes_here(model):
        return flax_probes.gate_statistics(model, x, mask, layer=layer, initial_carry=initial_carry)
    step, params_list, carry0 = _setup(model, x, mask, initial_carry, layer)
    names = type(model.cells[0]).gate_names
    if not names:
        return {}
    stats = _gates_core(params_list[: layer + 1], x, mask, carry0[: layer + 1], step=step,
                        names=names, layer=layer)
    return {g: {k: np.asarray(v) for k, v in s.items()} for g, s in stats.items()}


def batch_summary(log10: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over rows of per-row log10 values ``(B, K)``, NaN-aware."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(log10, axis=0), np.nanstd(log10, axis=0)


def jacobian_record(jac: dict) -> dict:
    """The JSON entries of a :func:`jacobian_norms` result: lags, anchors, and per probe the
    batch summary of log10 (``log10_<probe>``, ``log10_<probe>_std``) and, for Hutchinson, the
    mean relative standard error of the squared norm (``<probe>_rel_se``)."""
    rec = {"k": jac["k"].tolist(), "anchor": jac["anchor"].tolist()}
    for name, r in jac.items():
        if name in ("k", "anchor"):
            continue
        mean, std = batch_summary(r["log10"])
        rec[f"log10_{name}"], rec[f"log10_{name}_std"] = mean.tolist(), std.tolist()
        if r["log10_se"] is not None:
            with np.errstate(invalid="ignore", over="ignore"):
                rel = 10.0 ** (r["log10_se"] - 2 * r["log10"])
            rec[f"{name}_rel_se"] = batch_summary(rel)[0].tolist()  # NaN where no row reaches
    return rec


def probe(model, x, mask=None, *, layer: int = 0, probes=None, method: str = "exact",
          samples: int = 8, loss_fn=None, spectral: bool = False, spectral_iters: int = 20,
          key=None, initial_carry=None) -> dict:
    """All probes of one layer, summarised over the batch: a JSON-able record.

    Keys: ``arch``, ``layer``, ``method``, ``samples``, ``batch_average`` (:data:`BATCH_AVERAGE`),
    ``k`` (lags), ``t`` (steps); per Jacobian probe ``log10_<name>`` and ``log10_<name>_std``
    (mean and standard deviation over rows of the per-row log10 norm, per lag: so
    ``10**log10_<name>`` is the batch's *geometric* mean norm, not the arithmetic mean),
    for ``hutchinson`` ``<name>_rel_se`` (mean over rows of the
    standard error of the ‖J‖_F² estimate relative to the estimate); ``log10_loss_grad`` and
    ``log10_loss_grad_std`` per step t of layer ``layer`` (loss ``loss_fn`` or the default);
    ``gates`` (per step); with ``spectral``, ``spectral_k`` and ``log10_spectral[_std]``.
    An ``nnx.RNN`` gets the record of :func:`lstm_jax.probes.flax_probes.probe`.
    """
    if flax_rnn.routes_here(model):
        return flax_probes.probe(model, x, mask, layer=layer, probes=probes, method=method,
                                 samples=samples, loss_fn=loss_fn, spectral=spectral,
                                 spectral_iters=spectral_iters, key=key, initial_carry=initial_carry)
    key = _default_key() if key is None else key
    k_jac, k_loss, k_spec = jax.random.split(key, 3)
    arch = model.config.arch
    rec = {"arch": arch, "layer": layer, "method": method,
           "samples": samples if method == "hutchinson" else None,
           "hidden_size": model.config.hidden, "seq_len": int(x.shape[1]),
           "batch": int(x.shape[0]), "batch_average": BATCH_AVERAGE}
    rec |= jacobian_record(jacobian_norms(model, x, mask, layer=layer, probes=probes,
                                          method=method, samples=samples, key=k_jac,
                                          initial_carry=initial_carry))
    lg = loss_grad(model, x, mask, loss_fn, layer=layer, key=k_loss,
                   initial_carry=initial_carry)
    rec["t"] = lg["t"].tolist()
    mean, std = batch_summary(lg["log10"])
    rec["log10_loss_grad"], rec["log10_loss_grad_std"] = mean.tolist(), std.tolist()
    rec["gates"] = {g: {k: v.tolist() for k, v in s.items()}
                    for g, s in gate_statistics(model, x, mask, layer=layer,
                                                initial_carry=initial_carry).items()}
    if spectral:
        sp = spectral_norms(model, x, mask, layer=layer, iters=spectral_iters, key=k_spec,
                            initial_carry=initial_carry)
        mean, std = batch_summary(sp["log10"])
        rec["spectral_k"] = sp["k"].tolist()
        rec["log10_spectral"], rec["log10_spectral_std"] = mean.tolist(), std.tolist()
    return rec
