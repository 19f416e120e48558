"""The measurement of :mod:`imdb_retention` for one model: ∂L/∂e_t and ∂L/∂C_t of its own loss,
their per-review log10 retention by distance, occlusion scores, and summaries over seeds
(the equations are in ``imdb_retention``'s docstring)."""

from __future__ import annotations

import numpy as np

QUANTITIES = ("embedding", "cell")
LOGIT_TOLERANCE = 1e-3  # fused (model) vs plain scan (perturbed) float32 logits


# -- the gradients -----------------------------------------------------------------------------


def logits_from_embeddings(model, inputs, mask, perturb=None):
    """``(B, K)`` logits of ``model`` from its embedded inputs ``(B, T, E)``, without dropout
    (:meth:`SequenceModel.run_inputs`); ``perturb`` goes to the forward recurrence."""
    return model.run_inputs(inputs, mask, perturb=perturb)[0]


def has_cell_state(model) -> bool:
    return "c" in model.recurrence.cells[0].carry_names


def loss_gradients(model, tokens, labels, mask) -> dict:
    """∂L/∂e_t and (cells with a cell state) ∂L/∂C_t of ``L = Σ_b CE(logits_b, y_b)``.

    Args:
      model: a :class:`~lstm_jax.model.SequenceModel` with symbol inputs.
      tokens: ``(B, T)`` int ids; labels ``(B,)``; mask ``(B, T)`` bool.

    Returns:
      ``{"embedding": (B, T, E), "cell": (B, T, H) or None, "logits": (B, K),
      "nll": (B,)}``.
    """
    import jax
    import jax.numpy as jnp
    import optax

    inputs = model.inputs(tokens)
    with_cell = has_cell_state(model)
    B, T = tokens.shape
    H = model.recurrence.config.hidden

    def loss(inputs, eps):
        perturb = None if eps is None else [{"c": eps}] + [None] * (model.recurrence.layers - 1)
        logits = logits_from_embeddings(model, inputs, mask, perturb)
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        return jnp.sum(nll), (logits, nll)

    eps = jnp.zeros((B, T, H), inputs.dtype) if with_cell else None
    (_, (logits, nll)), (g_inputs, g_cell) = jax.value_and_grad(
        loss, argnums=(0, 1), has_aux=True)(inputs, eps)
    return {"embedding": g_inputs, "cell": g_cell, "logits": logits, "nll": nll}


def scaled_norm(g):
    """``(..., F)`` → ``(...)`` Euclidean norms as ``m·‖g/m‖`` with ``m = max|g|``, so no square
    underflows in float32 (a zero vector gives 0)."""
    import jax.numpy as jnp

    m = jnp.max(jnp.abs(g), axis=-1, keepdims=True)
    safe = jnp.where(m > 0, m, 1.0)
    return jnp.where(m[..., 0] > 0, m[..., 0] * jnp.linalg.norm(g / safe, axis=-1), 0.0)


def make_seed_program(graphdef):
    """One compiled function for an arm: ``(params, tokens, occluded, labels) -> dict`` of
    ``(B, T)`` gradient norms (``embedding``, ``cell`` or absent), ``(B, K)`` logits from the
    embeddings, the model's own logits (``reference``) and on the occluded tokens, and ``(B,)``
    cross-entropies of the model's own logits (``nll``, ``occluded_nll``)."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    @jax.jit
    def program(params, tokens, occluded, labels):
        model = nnx.merge(graphdef, params)
        mask = jnp.ones(tokens.shape, bool)  # every review fills the window
        grads = loss_gradients(model, tokens, labels, mask)
        reference, occluded_logits = model(tokens, mask), model(occluded, mask)
        out = {"embedding": scaled_norm(grads["embedding"]), "logits": grads["logits"],
               "reference": reference, "occluded_logits": occluded_logits,
               "nll": optax.softmax_cross_entropy_with_integer_labels(reference, labels),
               "occluded_nll": optax.softmax_cross_entropy_with_integer_labels(occluded_logits,
                                                                               labels)}
        if grads["cell"] is not None:
            out["cell"] = scaled_norm(grads["cell"])
        return out

    return program


def run_in_chunks(program, params, tokens, occluded, labels, chunk: int) -> dict[str, np.ndarray]:
    """``program`` over the reviews in chunks of ``chunk`` (the last one padded with copies of
    its first row, whose results are dropped), outputs concatenated on the host."""
    n = len(labels)
    size = min(chunk, n)
    parts: dict[str, list] = {}
    for start in range(0, n, size):
        rows = np.arange(start, min(start + size, n))
        padded = np.concatenate([rows, np.full(size - len(rows), rows[0])])
        got = program(params, tokens[padded], occluded[padded], labels[padded])
        for k, v in got.items():
            parts.setdefault(k, []).append(np.asarray(v)[:len(rows)])
    return {k: np.concatenate(v) for k, v in parts.items()}


def check_logits(got: dict[str, np.ndarray], where: str) -> None:
    """The logits from the embeddings must be the model's own (``model(tokens, mask)``)."""
    a, b = got["logits"], got["reference"]
    if not np.allclose(a, b, rtol=LOGIT_TOLERANCE, atol=LOGIT_TOLERANCE):
        raise AssertionError(f"{where}: logits from the embeddings differ from model(tokens, "
                             f"mask) by up to {np.max(np.abs(a - b)):.3g}")


# -- the statistics ----------------------------------------------------------------------------


def log10_retention(norms: np.ndarray, max_distance: int,
                    norm_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-review log10 retention by distance.

    Args:
      norms: ``(N, W)`` gradient norms per review and step t (``d = W − 1 − t``).
      max_distance: the largest d kept.
      norm_range: ``(lo, hi)``: each review is divided by its median over ``lo ≤ d ≤ hi``.

    Returns:
      ``(log10 (N, D+1), zeros (D+1,))``: ``log10(norm_d / median)`` (NaN where the norm is
      exactly zero or the review's median is not positive) and the count of zero norms per d.
    """
    by_distance = np.asarray(norms, np.float64)[:, ::-1]
    lo, hi = norm_range
    scale = np.median(by_distance[:, lo:hi + 1], axis=1, keepdims=True)
    kept = by_distance[:, :max_distance + 1]
    ok = (kept > 0) & (scale > 0) & np.isfinite(kept)
    out = np.full(kept.shape, np.nan)
    out[ok] = np.log10((kept / np.where(scale > 0, scale, 1.0))[ok])
    return out, np.sum(kept == 0, axis=0)


def nan_mean_sd(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample sd (``ddof = 1``) over ``axis`` ignoring NaN, without warnings: NaN where
    no value (mean) or fewer than two (sd) are finite."""
    v = np.asarray(values, np.float64)
    finite = np.isfinite(v)
    n = finite.sum(axis)
    filled = np.where(finite, v, 0.0)
    mean = filled.sum(axis) / np.maximum(n, 1)
    dev = np.where(finite, v - np.expand_dims(mean, axis), 0.0)
    sd = np.sqrt((dev ** 2).sum(axis) / np.maximum(n - 1, 1))
    return np.where(n > 0, mean, np.nan), np.where(n > 1, sd, np.nan)


def occlusion_scores(got: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """Accuracy and mean loss as they are and occluded, and their differences."""
    acc = float(np.mean(np.argmax(got["reference"], -1) == labels))
    acc_occ = float(np.mean(np.argmax(got["occluded_logits"], -1) == labels))
    loss, loss_occ = float(np.mean(got["nll"])), float(np.mean(got["occluded_nll"]))
    return {"accuracy": acc, "accuracy_occluded": acc_occ, "delta_accuracy": acc_occ - acc,
            "loss": loss, "loss_occluded": loss_occ, "delta_loss": loss_occ - loss}


def seed_record(got: dict[str, np.ndarray], labels: np.ndarray, args) -> dict:
    """One seed's curves (log10 retention per d, zero counts, the normaliser's geometric mean)
    and occlusion scores."""
    rec = {}
    for q in QUANTITIES:
        if q not in got:
            continue
        log, zeros = log10_retention(got[q], args.max_distance, args.norm_range)
        scale = np.median(got[q][:, ::-1][:, args.norm_range[0]:args.norm_range[1] + 1], axis=1)
        rec[q] = {"log10_retention": nan_mean_sd(log)[0], "zeros": zeros,
                  "log10_scale": float(np.mean(np.log10(scale[scale > 0])))
                  if np.any(scale > 0) else None}
    rec["occlusion"] = occlusion_scores(got, labels)
    return rec


def summarise(per_seed: list[dict], distances: list[int]) -> dict:
    """Mean, sd and per-seed values over seeds: curves, R(d) at ``distances``, Δaccuracy."""
    out = {}
    for q in QUANTITIES:
        if q not in per_seed[0]:
            continue
        curves = np.array([s[q]["log10_retention"] for s in per_seed], np.float64)
        mean, sd = nan_mean_sd(curves)
        out[q] = {"log10_mean": mean, "log10_sd": sd,
                  "zeros": np.sum([s[q]["zeros"] for s in per_seed], axis=0),
                  "at": {str(d): {"mean": mean[d], "sd": sd[d], "per_seed": curves[:, d]}
                         for d in distances}}
    occ = {}
    for key in ("delta_accuracy", "accuracy", "accuracy_occluded", "delta_loss"):
        v = np.array([s["occlusion"][key] for s in per_seed])
        m, s = nan_mean_sd(v)
        occ[key] = {"mean": float(m), "sd": float(s), "per_seed": v}
    out["occlusion"] = occ
    return out


