"""Checks every added cell must pass, against a reference step from ``tests/reference_cells.py``.

* outputs and final carry of ``Recurrence`` (float64, a padded row) = the NumPy loop;
* ``jax.grad`` of a loss through ``Recurrence`` (which falls back to ``lax.scan`` + ``jax.grad``
  for a cell without a fused path) = central finite differences of the NumPy loop;
* the probes' exact ‖∂y_T/∂x_{T−k}‖_F (the generic ``jax.vjp`` sweep) = ``jax.jacrev`` of the
  reference loop written with ``jax.numpy``, every lag, every row; and, for a cell with a forget
  gate, the ``cec`` probe ‖∏f‖ = a plain loop over the reference's forget gates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lstm_jax import CellConfig, Recurrence
from lstm_jax.probes import jacobian_norms
from tests.reference_cells import FORGET_GATES, finite_difference_grad, forget_product_log10, run

B, T, D, H = 2, 7, 3, 4
PARTS = {"hidden": "h", "cell": "c"}


def random_model(arch, seed=0, scale=0.5, **cfg):
    """A float64 one-layer model whose every parameter is random (no structure hides bugs)."""
    model = Recurrence(D, CellConfig(arch=arch, hidden=H, **cfg), rngs=nnx.Rngs(seed),
                       dtype=jnp.float64)
    rng = np.random.default_rng(seed)
    cell = model.cells[0]
    for name, value in cell.params().items():
        getattr(cell, name)[...] = jnp.asarray(rng.normal(0, scale, value.shape), jnp.float64)
    return model


def inputs(seed=1):
    x = np.random.default_rng(seed).normal(size=(B, T, D))
    mask = np.ones((B, T), bool)
    mask[1, 5:] = False
    mask[1, 2] = False
    return x, mask


def _numpy_params(model):
    return {k: np.asarray(v, np.float64) for k, v in model.cells[0].params().items()}


def check_outputs(arch, step_ref, **cfg):
    with jax.enable_x64(True):
        model = random_model(arch, **cfg)
        x, mask = inputs()
        out = model(jnp.asarray(x), jnp.asarray(mask))
        carry0 = {k: np.zeros((B, H)) for k in model.cells[0].carry_names}
        hs, final = run(np, step_ref, _numpy_params(model), x, carry0, mask)
        np.testing.assert_allclose(out.outputs, hs, rtol=1e-12, atol=1e-12)
        for k, v in final.items():
            np.testing.assert_allclose(out.final_carry[0][k], v, rtol=1e-12, atol=1e-12)


def check_gradients(arch, step_ref, **cfg):
    """jax.grad through the model (generic scan fallback) vs finite differences of NumPy."""
    with jax.enable_x64(True):
        model = random_model(arch, **cfg)
        x, mask = inputs()
        r = np.random.default_rng(5).normal(size=(B, T, H))
        names = model.cells[0].carry_names

        def ref_loss(p):
            carry0 = {k: np.zeros((B, H)) for k in names}
            hs, final = run(np, step_ref, p, x, carry0, mask)
            return float(np.sum(hs * r) + sum(np.sum(v ** 2) for v in final.values()))

        want = finite_difference_grad(ref_loss, _numpy_params(model))
        graphdef, state = nnx.split(model)

        def loss(state):
            out = nnx.merge(graphdef, state)(jnp.asarray(x), jnp.asarray(mask))
            return (jnp.sum(out.outputs * r)
                    + sum(jnp.sum(v ** 2) for v in out.final_carry[0].values()))

        got = jax.jit(jax.grad(loss))(state)
        cell = got["cells"][0]
        for name, g in want.items():
            np.testing.assert_allclose(cell[name][...], g, rtol=1e-6, atol=1e-8,
                                       err_msg=f"{arch}: d loss / d {name}")


def reference_log10(step_ref, p, x, mask, carry0, part_in, part_out):
    """log10 ‖∂part_out_T/∂part_in_{T−k}‖_F per row and lag by jax.jacrev of the jnp loop, with
    a zero perturbation added to ``part_in`` after every step (so the other carry parts are held
    fixed at T−k); anchor = each row's last valid step."""
    x, mask = jnp.asarray(x), jnp.asarray(mask)
    p = {k: jnp.asarray(v) for k, v in p.items()}

    def outputs(eps):  # eps (T, B, H) -> part_out after every step (T, B, H)
        carry, outs = {k: jnp.asarray(v) for k, v in carry0.items()}, []
        for t in range(T):
            new = step_ref(jnp, p, carry, x[:, t])
            carry = {k: jnp.where(mask[:, t][:, None], new[k], carry[k]) for k in carry}
            carry[part_in] = carry[part_in] + eps[t]
            outs.append(carry[part_out])
        return jnp.stack(outs)

    J = np.asarray(jax.jacrev(outputs)(jnp.zeros((T, B, H))))  # (T, B, H, T, B, H)
    out = np.full((B, T), np.nan)
    for b in range(B):
        anchor = int(np.max(np.nonzero(np.asarray(mask[b]))[0]))
        for k in range(anchor + 1):
            with np.errstate(divide="ignore"):  # an exactly zero Jacobian: −inf
                out[b, k] = np.log10(np.linalg.norm(J[anchor, b, :, anchor - k, b, :]))
    return out


def check_probes(arch, step_ref, adjust=None, **cfg):
    """The generic probe sweep = jacrev of the reference loop, every row and lag (float64).

    ``adjust(cell)`` may change the random parameters first (e.g. keep ReLU units alive)."""
    with jax.enable_x64(True):
        model = random_model(arch, scale=0.4, **cfg)
        if adjust is not None:
            adjust(model.cells[0])
        x, mask = inputs()
        got = jacobian_norms(model, jnp.asarray(x), jnp.asarray(mask), method="exact")
        carry0 = {k: np.zeros((B, H)) for k in model.cells[0].carry_names}
        p = _numpy_params(model)
        for name in ("hidden", "cell"):
            if name not in got:
                continue
            part = PARTS[name]
            want = reference_log10(step_ref, p, x, mask, carry0, part, part)
            np.testing.assert_allclose(got[name]["log10"], want, rtol=0, atol=1e-9,
                                       err_msg=f"{arch} {name}")
        assert ("cec" in got) == (arch in FORGET_GATES), (arch, sorted(got))
        if "cec" in got:  # the forget-gate product, against a plain loop over the gates
            want = forget_product_log10(step_ref, FORGET_GATES[arch], p, x, mask, carry0,
                                        np.asarray(got["anchor"]))
            np.testing.assert_allclose(got["cec"]["log10"], want, rtol=0, atol=1e-9,
                                       err_msg=f"{arch} cec")
        return model, got
