"""The GRU of Cho et al. (2014), "Learning phrase representations using RNN encoder–decoder"::

    r, z = σ(W_· x_t + U_· h_{t−1} + b_·)
    n = tanh(W_n x_t + b_n + r ⊙ (U_n h_{t−1} + b_hn))     (reset-after, default: cuDNN, PyTorch)
    n = tanh(W_n x_t + b_n + U_n (r ⊙ h_{t−1}) + b_hn)     (Cho et al.'s original, reset-before)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

Three blocks ``(r, z, n)``; carry ``{"h"}``; gates ``r, z``; extra parameter ``b_hn (H,)``, the
recurrent candidate bias inside ``r ⊙ (·)``. Chrono init (Tallec & Ollivier 2018):
``b_z ~ log U[1, T_max−1]``.

Fast paths (reset-after only; the reset-before GRU runs the generic scan and ``jax.vjp``).
Fused: with ``u = h U + [0, 0, b_hn]`` blockwise, the gradient w.r.t. ``x W_ih`` is
``[dr̂, dẑ, dn̂]`` but w.r.t. ``h U`` it is ``[dr̂, dẑ, dn̂ ⊙ r]``, so the GRU keeps two; the
backward reads the step's input h. Probe factors, ``u = h_{t−1} U_n + b_hn``::

    dh_{t−1} = ([dh, dh, dh] ⊙ [(1−z)(1−n²) u r(1−r), (h_{t−1}−n) z(1−z), (1−z)(1−n²) r]) Uᵀ
               + dh ⊙ z                   (the direct path through the update gate)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lstm_jax.cells.base import RecurrentCell, chrono_bias, class_kernel, matmul
from lstm_jax.cells.kernel import CellStep, FusedPath, JacobianPath, StepJacobian
from lstm_jax.cells.registry import register


def _forward(xw_t, h, c, w_hh, extra, mm=None):
    (b_hn,) = extra
    xr, xz, xn = jnp.split(xw_t, 3, axis=-1)
    hr, hz, hn = jnp.split(matmul(h, w_hh, mm), 3, axis=-1)
    r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
    u = hn + b_hn
    n = jnp.tanh(xn + r * u)
    h_new = (1.0 - z) * n + z * h
    return h_new, None, jnp.concatenate([r, z, n], axis=-1), (u,)


def _backward(big, small, h_t, c_new, dh, dc, extra):
    (u,) = small
    h_prev = h_t
    r, z, n = jnp.split(big, 3, axis=-1)
    dn = dh * (1.0 - z)
    dan = dn * (1.0 - n * n)
    dar = dan * u * r * (1.0 - r)
    daz = dh * (h_prev - n) * z * (1.0 - z)
    dz_x = jnp.concatenate([dar, daz, dan], axis=-1)
    dz_h = jnp.concatenate([dar, daz, dan * r], axis=-1)
    return dz_x, dz_h, dh * z, None


def _b_hn_grad(dz_x, dz_h, small, cN):
    H = dz_h.shape[-1] // 3
    return (dz_h[..., 2 * H:].sum((0, 1)),)


def _factors(res) -> StepJacobian:
    r, z, n = jnp.split(res.big, 3, axis=-1)
    (u,) = res.small
    dn = (1.0 - z) * (1.0 - n * n)
    scale = jnp.concatenate([dn * u * r * (1.0 - r), (res.h - n) * z * (1.0 - z), dn * r],
                            axis=-1)
    return StepJacobian(scale, z, None, res.mask)


def _pullback(w_hh, jac, v):
    dh = v["h"]
    tiled = jnp.concatenate([dh, dh, dh], axis=-1)
    dh_prev = matmul(tiled * jac.scale, w_hh, None, ((dh.ndim - 1,), (1,)))
    return {"h": dh_prev + dh * jac.direct}


@register("gru", "GRU: h_t = (1−z)⊙n + z⊙h_{t−1}, reset gate r inside the candidate n",
          "Cho et al. (2014), Learning phrase representations using RNN encoder-decoder")
class GRUCell(RecurrentCell):
    """GRU of Cho et al. (2014)::

        r, z = σ(·)
        n = tanh(W_n x_t + b_n + r ⊙ (U_n h_{t−1} + b_hn))     (reset_after, default)
        n = tanh(W_n x_t + b_n + U_n (r ⊙ h_{t−1}) + b_hn)     (Cho et al.'s original)
        h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
    """

    blocks = 3
    gate_names = ("r", "z")
    recurrent_names = ("w_hh", "b_hn")
    options = frozenset({"chrono_tmax", "gru_reset_after"})
    torch_module = "GRU"
    fused = FusedPath(_forward, _backward, h_residual="prev", extra=("b_hn",),
                      extra_grad=_b_hn_grad, gate_blocks=(("r", 0), ("z", 1)))
    jacobian = JacobianPath(_factors, _pullback)

    def _init_bias(self, key, dtype):
        H, cfg = self.hidden, self.config
        b = jnp.zeros((3, H), dtype)
        if cfg.chrono_tmax is not None:
            b = b.at[1].set(chrono_bias(key, H, cfg.chrono_tmax, dtype))
        return b.reshape(-1)

    def extra_params(self, key, dtype):
        return {"b_hn": jnp.zeros((self.hidden,), dtype)}

    @classmethod
    def kernel(cls, config=None) -> CellStep:
        if config is not None and not config.gru_reset_after:
            return _RESET_BEFORE
        return class_kernel(cls)

    @staticmethod
    def _gates(params, carry, xw, reset_after: bool):
        h = carry["h"]
        H = h.shape[-1]
        xr, xz, xn = jnp.split(xw, 3, axis=-1)
        w_hh = params["w_hh"]
        if reset_after:
            hr, hz, hn = jnp.split(h @ w_hh, 3, axis=-1)
            r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
            n = jnp.tanh(xn + r * (hn + params["b_hn"]))
        else:
            hr, hz = jnp.split(h @ w_hh[:, : 2 * H], 2, axis=-1)
            r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
            n = jnp.tanh(xn + (r * h) @ w_hh[:, 2 * H:] + params["b_hn"])
        h = (1.0 - z) * n + z * h
        return {"h": h}, {"r": r, "z": z}

    @staticmethod
    def step(params, carry, xw):
        return GRUCell._gates(params, carry, xw, reset_after=True)

    @staticmethod
    def step_reset_before(params, carry, xw):
        return GRUCell._gates(params, carry, xw, reset_after=False)

    # PyTorch's GRU is the reset-after variant; its b_hh[n] sits inside r ⊙ (·).
    def from_torch(self, w_ih, w_hh, b_ih, b_hh) -> None:
        from lstm_jax.errors import UserError

        if not self.config.gru_reset_after:
            raise UserError("PyTorch's GRU is the reset-after variant; build with "
                            "gru_reset_after=True")
        H = self.hidden
        super().from_torch(w_ih, w_hh, np.concatenate([b_ih[: 2 * H], b_ih[2 * H:]]),
                           np.concatenate([b_hh[: 2 * H], np.zeros(H, b_hh.dtype)]))
        self.b_hn[...] = jnp.asarray(b_hh[2 * H:], self.b_hn[...].dtype)

    def to_torch(self) -> dict:
        out = super().to_torch()
        out["bias_hh"][2 * self.hidden:] = np.asarray(self.b_hn[...])
        return out


_RESET_BEFORE = CellStep(GRUCell.step_reset_before, ("h",), ("r", "z"))
