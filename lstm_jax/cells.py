"""Recurrent cells: the tanh RNN, the LSTM with forget gate, and the GRU.

Each cell is a Flax NNX module that owns its parameters and a *pure* one-step update
``step(params, carry, xw_t) -> (carry, gates)``. The input projection ``xw_t = x_t @ w_ih + bias``
is computed for all steps at once by :mod:`lstm_jax.recurrence`, so ``step`` only does the
recurrent matmul and the element-wise gate arithmetic.

Parameter layout (``G`` gate blocks: RNN 1, LSTM 4, GRU 3; ``D`` input width, ``H`` hidden size)::

    w_ih  (D, G·H)   input kernel
    w_hh  (H, G·H)   recurrent kernel
    bias  (G·H,)     one bias per gate (PyTorch's b_ih + b_hh folded into one)
    b_hn  (H,)       GRU only: recurrent bias of the candidate, inside r ⊙ (·)

Gate blocks along the last axis follow PyTorch's order, so weights interchange block by block
(:mod:`lstm_jax.interop`): LSTM ``(i, f, g=C̃, o)``, GRU ``(r, z, n)``.

Carries are dicts: ``{"h": (B, H)}`` for the RNN and GRU, ``{"h": (B, H), "c": (B, H)}`` for the
LSTM. Gates are returned as a dict of ``(B, H)`` arrays for the probes (empty for the RNN).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from lstm_jax.errors import UserError, check_choice, check_positive
from lstm_jax.initializers import orthogonal

ARCHS = ("rnn", "lstm", "gru")
RECURRENT_INITS = ("orthogonal", "normal", "identity")


@dataclasses.dataclass(frozen=True)
class CellConfig:
    """Everything that defines a recurrent layer's architecture and initialisation.

    Attributes:
      arch: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
      hidden: hidden size H.
      forget_bias: LSTM forget-gate bias at init (+1 after Jozefowicz et al. 2015; Gers et al. 2000
        introduced the gate). Ignored when ``chrono_tmax`` is set.
      chrono_tmax: if set, chrono initialisation (Tallec & Ollivier 2018): LSTM
        ``b_f ~ log U[1, T_max−1]``, ``b_i = −b_f``; GRU ``b_z ~ log U[1, T_max−1]``.
      recurrent_init: ``"orthogonal"`` (each H×H gate block orthogonal) or ``"normal"``
        (entries N(0, 1/H), spectral radius ≈ 1 by the circular law) or ``"identity"`` (each block
        I, as in Le et al. 2015's IRNN; here with the tanh nonlinearity, not their ReLU).
      recurrent_scale: multiplies the recurrent kernel. With orthogonal init every eigenvalue of the
        tanh RNN's W_hh has modulus exactly ``recurrent_scale``, so it *is* the spectral radius
        (Pascanu et al. 2013: < 1 is sufficient for vanishing gradients, > 1 necessary for
        exploding ones).
      gru_reset_after: GRU variant. True (default): ``n = tanh(W_n x + r ⊙ (U_n h + b_hn))`` as in
        cuDNN, PyTorch and Flax (one fused recurrent matmul). False: Cho et al. (2014)'s original
        ``n = tanh(W_n x + U_n (r ⊙ h) + b_hn)``.
    """

    arch: str = "lstm"
    hidden: int = 128
    forget_bias: float = 1.0
    chrono_tmax: float | None = None
    recurrent_init: str = "orthogonal"
    recurrent_scale: float = 1.0
    gru_reset_after: bool = True

    def __post_init__(self):
        check_choice("arch", self.arch, ARCHS)
        check_positive("hidden", self.hidden, maximum=65536)
        check_choice("recurrent_init", self.recurrent_init, RECURRENT_INITS)
        if not (isinstance(self.recurrent_scale, int | float) and math.isfinite(self.recurrent_scale)
                and self.recurrent_scale >= 0):
            raise UserError(f"recurrent_scale={self.recurrent_scale!r} must be a finite number ≥ 0")
        if not (isinstance(self.forget_bias, int | float) and math.isfinite(self.forget_bias)):
            raise UserError(f"forget_bias={self.forget_bias!r} must be a finite number")
        if self.chrono_tmax is not None:
            if self.arch == "rnn":
                raise UserError("chrono_tmax applies to arch=lstm or gru, not rnn (it has no gates)")
            if not (isinstance(self.chrono_tmax, int | float) and self.chrono_tmax > 2):
                raise UserError(f"chrono_tmax={self.chrono_tmax!r} must be a number > 2 "
                                "(the longest dependency the gates should span, in steps)")


def _recurrent_kernel(key, hidden: int, blocks: int, config: CellConfig, dtype) -> jax.Array:
    keys = jax.random.split(key, blocks)
    if config.recurrent_init == "orthogonal":
        mats = [orthogonal(k, (hidden, hidden), dtype) for k in keys]
    elif config.recurrent_init == "identity":
        mats = [jnp.eye(hidden, dtype=dtype)] * blocks
    else:
        mats = [jax.random.normal(k, (hidden, hidden), dtype) / math.sqrt(hidden) for k in keys]
    return config.recurrent_scale * jnp.concatenate(mats, axis=1)


def _chrono_bias(key, hidden: int, tmax: float, dtype) -> jax.Array:
    """log U[1, T_max − 1] (Tallec & Ollivier 2018, eq. 16)."""
    return jnp.log(jax.random.uniform(key, (hidden,), dtype, minval=1.0, maxval=tmax - 1.0))


class RecurrentCell(nnx.Module):
    """Base class: parameters and initialisation shared by the three cells."""

    arch: ClassVar[str]
    blocks: ClassVar[int]
    carry_names: ClassVar[tuple[str, ...]] = ("h",)
    gate_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, in_features: int, config: CellConfig, *, rngs: nnx.Rngs,
                 dtype=jnp.float32):
        check_positive("in_features", in_features)
        if config.arch != self.arch:
            raise UserError(f"config.arch={config.arch!r} does not match {type(self).__name__}")
        self.config = config
        self.in_features = in_features
        self.hidden = H = config.hidden
        G = self.blocks
        self.w_ih = nnx.Param(jax.nn.initializers.lecun_normal()(rngs.params(), (in_features, G * H),
                                                                dtype))
        self.w_hh = nnx.Param(_recurrent_kernel(rngs.params(), H, G, config, dtype))
        self.bias = nnx.Param(self._init_bias(rngs.params(), dtype))

    def _init_bias(self, key, dtype) -> jax.Array:
        return jnp.zeros((self.blocks * self.hidden,), dtype)

    def params(self) -> dict[str, jax.Array]:
        """The parameters as a plain dict of arrays, the form :meth:`step` takes."""
        return {name: value[...] for name, value in vars(self).items() if isinstance(value, nnx.Param)}

    def init_carry(self, batch: int, dtype=jnp.float32) -> dict[str, jax.Array]:
        return {name: jnp.zeros((batch, self.hidden), dtype) for name in self.carry_names}

    @staticmethod
    def step(params, carry, xw):
        raise NotImplementedError


class RNNCell(RecurrentCell):
    """Elman's tanh RNN: ``h_t = tanh(W_x x_t + W_h h_{t−1} + b)`` (Elman 1990)."""

    arch = "rnn"
    blocks = 1

    @staticmethod
    def step(params, carry, xw):
        h = jnp.tanh(xw + carry["h"] @ params["w_hh"])
        return {"h": h}, {}


class LSTMCell(RecurrentCell):
    """LSTM of Hochreiter & Schmidhuber (1997) with the forget gate of Gers et al. (2000)::

        f, i, o = σ(·),  C̃ = tanh(·)      (each of W x_t + U h_{t−1} + b)
        C_t = f ⊙ C_{t−1} + i ⊙ C̃
        h_t = o ⊙ tanh(C_t)

    No peepholes, so ∂C_t/∂C_{t−1} = diag(f_t) when h_{t−1} is held fixed.
    """

    arch = "lstm"
    blocks = 4
    carry_names = ("h", "c")
    gate_names = ("i", "f", "o")

    def _init_bias(self, key, dtype):
        H, cfg = self.hidden, self.config
        b = jnp.zeros((4, H), dtype)
        if cfg.chrono_tmax is not None:
            bf = _chrono_bias(key, H, cfg.chrono_tmax, dtype)
            b = b.at[1].set(bf).at[0].set(-bf)
        else:
            b = b.at[1].set(cfg.forget_bias)
        return b.reshape(-1)

    @staticmethod
    def step(params, carry, xw):
        z = xw + carry["h"] @ params["w_hh"]
        zi, zf, zg, zo = jnp.split(z, 4, axis=-1)
        i, f, o = jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jax.nn.sigmoid(zo)
        c = f * carry["c"] + i * jnp.tanh(zg)
        h = o * jnp.tanh(c)
        return {"h": h, "c": c}, {"i": i, "f": f, "o": o}


class GRUCell(RecurrentCell):
    """GRU of Cho et al. (2014)::

        r, z = σ(·)
        n = tanh(W_n x_t + b_n + r ⊙ (U_n h_{t−1} + b_hn))     (reset_after, default)
        n = tanh(W_n x_t + b_n + U_n (r ⊙ h_{t−1}) + b_hn)     (Cho et al.'s original)
        h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
    """

    arch = "gru"
    blocks = 3
    gate_names = ("r", "z")

    def __init__(self, in_features: int, config: CellConfig, *, rngs: nnx.Rngs,
                 dtype=jnp.float32):
        super().__init__(in_features, config, rngs=rngs, dtype=dtype)
        self.b_hn = nnx.Param(jnp.zeros((self.hidden,), dtype))

    def _init_bias(self, key, dtype):
        H, cfg = self.hidden, self.config
        b = jnp.zeros((3, H), dtype)
        if cfg.chrono_tmax is not None:
            b = b.at[1].set(_chrono_bias(key, H, cfg.chrono_tmax, dtype))
        return b.reshape(-1)

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


CELL_CLASSES: dict[str, type[RecurrentCell]] = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


def make_cell(in_features: int, config: CellConfig, *, rngs: nnx.Rngs, dtype=jnp.float32):
    """Build the cell named by ``config.arch``."""
    return CELL_CLASSES[config.arch](in_features, config, rngs=rngs, dtype=dtype)


def step_fn(config: CellConfig):
    """The pure step function for a config (the GRU variant depends on ``gru_reset_after``)."""
    if config.arch == "gru" and not config.gru_reset_after:
        return GRUCell.step_reset_before
    return CELL_CLASSES[config.arch].step
