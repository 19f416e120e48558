"""The cell interface (the NNX base class every cell subclasses) and the maths cells share.

A recurrent cell is two things (after ``flax.nnx.nn.recurrent``: one class per cell, and optax's
one-idea-per-object style):

1. :class:`RecurrentCell`, a Flax NNX module that owns the parameters and initialises them;
2. :class:`CellStep`, its *pure* maths, returned by ``CellClass.kernel(config)``: a hashable
   callable ``step(params, carry, xw_t) -> (carry, gates)`` plus what the rest of the package
   may ask about it. Being hashable, it is a static argument of ``jax.jit``.

The protocol a cell implements (class attributes and methods of :class:`RecurrentCell`):

============================  =====================================================================
``blocks``                    G, the number of ``(·, H)`` blocks of the input projection: the
                              recurrence computes ``xw_t = x_t @ w_ih + bias`` ``(B, G·H)`` for all
                              steps before the loop and hands ``xw_t`` to ``step``.
``carry_names``               the carry's parts, each ``(B, H)``: ``("h",)`` or ``("h", "c")``;
                              ``"h"`` is always the output. :meth:`RecurrentCell.init_carry`
                              gives zeros.
``gate_names``                the gates ``step`` returns (each ``(B, H)``), readable by probes
                              (``collect=``) and the gate statistics.
``forget_gate``               the name of the gate that multiplies the previous state, if any
                              (``"f"``): the probes then report ``∏ f_j`` ("cec").
``step(params, carry, xw)``   the pure one-step update (a staticmethod).
``fused``, ``jacobian``       OPTIONAL fast paths, default None: the forward/backward factors of
                              :mod:`lstm_jax.fused` (:class:`FusedPath`) and the per-step Jacobian
                              factors of :mod:`lstm_jax.probes.step_jacobian`
                              (:class:`JacobianPath`). A cell without them trains through
                              ``lax.scan`` + ``jax.grad`` and is probed by ``jax.vjp`` of its step.
``options``                   the :class:`CellConfig` options the cell reads besides ``hidden``,
                              ``recurrent_init`` and ``recurrent_scale`` (e.g. ``"forget_bias"``,
                              ``"chrono_tmax"``); ``chrono_tmax`` on a cell that does not read it
                              is refused. :meth:`RecurrentCell.check_config` may refuse more.
``sequence``                  OPTIONAL whole-sequence fast path, default None:
                              ``sequence(params, xw (T,B,G·H), mask (T,B) bool, carry0) ->
                              (final_carry, {"h": (T,B,H)})``, used by
                              :func:`lstm_jax.recurrence.scan_layer` for training and evaluation
                              (no ``perturb``/``collect``) instead of the step-by-step scan, e.g.
                              a parallel ``jax.lax.associative_scan`` for a linear recurrence.
                              It must equal the masked ``lax.scan`` of ``step``.
``_init_bias``, ``extra_params``, ``recurrent_params``  initialisation hooks; they may read
                              ``self.last_layer`` (whether the cell tops its stack).
``recurrent_names``           the parameters of the recurrence proper (default ``("w_hh",)``),
                              whose updates ``TrainConfig.recurrent_lr_scale`` scales.
============================  =====================================================================

Parameters are ``w_ih (D, G·H)``, ``w_hh (H, G·H)``, ``bias (G·H,)`` plus any the cell adds
(``extra_params``); a cell without a dense recurrent matrix replaces ``w_hh`` by its own
(``recurrent_params``). A new cell is one module with one ``@register(...)`` line
(``docs/cells.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from lstm_jax.cells.config import CellConfig
from lstm_jax.cells.kernel import CellStep, FusedPath, JacobianPath
from lstm_jax.cells.registry import cell_class
from lstm_jax.errors import UserError, check_positive
from lstm_jax.initializers import orthogonal


class RecurrentCell(nnx.Module):
    """Base class of every cell: parameters ``w_ih``, ``w_hh``, ``bias`` and the protocol above.

    Subclasses set the class attributes and ``step``; ``@register(name, description, paper)``
    makes them available by name.
    """

    arch: ClassVar[str] = ""
    blocks: ClassVar[int] = 1
    carry_names: ClassVar[tuple[str, ...]] = ("h",)
    gate_names: ClassVar[tuple[str, ...]] = ()
    forget_gate: ClassVar[str | None] = None
    options: ClassVar[frozenset[str]] = frozenset()
    fused: ClassVar[FusedPath | None] = None
    jacobian: ClassVar[JacobianPath | None] = None
    sequence: ClassVar[Callable | None] = None
    #: the parameters of the recurrence proper (``TrainConfig.recurrent_lr_scale`` scales them)
    recurrent_names: ClassVar[tuple[str, ...]] = ("w_hh",)
    #: True when the cell initialises ``w_ih`` itself (``CellConfig.input_init`` is then refused)
    own_input_init: ClassVar[bool] = False

    def __init__(self, in_features: int, config: CellConfig, *, rngs: nnx.Rngs,
                 dtype=jnp.float32, last_layer: bool = True):
        check_positive("in_features", in_features)
        if config.arch != self.arch:
            raise UserError(f"config.arch={config.arch!r} does not match {type(self).__name__}")
        self.config = config
        self.last_layer = last_layer  # the top of its stack; an init may differ there (IndRNN)
        self.in_features = in_features
        self.hidden = H = config.hidden
        G = self.blocks
        init = (jax.nn.initializers.glorot_uniform() if config.input_init == "glorot"
                else jax.nn.initializers.lecun_normal())
        self.w_ih = nnx.Param(init(rngs.params(), (in_features, G * H), dtype))
        for name, value in self.recurrent_params(rngs.params(), dtype).items():
            setattr(self, name, nnx.Param(value))
        self.bias = nnx.Param(self._init_bias(rngs.params(), dtype))
        for name, value in self.extra_params(rngs.params(), dtype).items():
            setattr(self, name, nnx.Param(value))

    # -- hooks ---------------------------------------------------------------------------------

    def recurrent_params(self, key, dtype) -> dict[str, jax.Array]:
        """The recurrent parameters at init: by default ``{"w_hh": (H, G·H)}``
        (:func:`recurrent_kernel`). A cell whose recurrence is not a dense matrix returns its own
        (IndRNN a vector ``u``, expRNN a skew-symmetric generator)."""
        return {"w_hh": recurrent_kernel(key, self.hidden, self.blocks, self.config, dtype)}

    def _init_bias(self, key, dtype) -> jax.Array:
        """``(G·H,)`` bias at init (default zeros)."""
        return jnp.zeros((self.blocks * self.hidden,), dtype)

    def extra_params(self, key, dtype) -> dict[str, jax.Array]:
        """Parameters besides ``w_ih``, ``w_hh``, ``bias`` (e.g. peephole weights), at init."""
        return {}

    def project(self) -> None:
        """Put the parameters back into the cell's constraint set, in place; the trainer calls
        it after every optimiser update (e.g. IndRNN's |u| ≤ 2^{1/T}). Default: no constraint,
        and the trainer then leaves its compiled step unchanged."""

    @classmethod
    def constrained(cls) -> bool:
        """Whether this cell overrides :meth:`project`."""
        return cls.project is not RecurrentCell.project

    @classmethod
    def check_config(cls, config: CellConfig) -> None:
        """Refuse options this cell cannot honour (:class:`UserError`); default accepts all."""

    @classmethod
    def kernel(cls, config: CellConfig | None = None) -> CellStep:
        """The pure step with its fast paths. Override when the step depends on the config."""
        return class_kernel(cls)

    # -- the protocol ------------------------------------------------------------------------

    @property
    def has_cell_state(self) -> bool:
        return "c" in self.carry_names

    def params(self) -> dict[str, jax.Array]:
        """The parameters as a plain dict of arrays, the form :meth:`step` takes."""
        return {name: value[...] for name, value in vars(self).items() if isinstance(value, nnx.Param)}

    def init_carry(self, batch: int, dtype=jnp.float32) -> dict[str, jax.Array]:
        return {name: jnp.zeros((batch, self.hidden), dtype) for name in self.carry_names}

    @staticmethod
    def step(params, carry, xw):
        """``(params, carry {part: (B, H)}, xw_t (B, G·H)) -> (carry, gates {name: (B, H)})``."""
        raise NotImplementedError

    # -- PyTorch weights (lstm_jax.interop); cells without a torch.nn counterpart refuse -----

    torch_module: ClassVar[str | None] = None

    def from_torch(self, w_ih, w_hh, b_ih, b_hh) -> None:
        """Load PyTorch-layout weights (``weight_ih (G·H, D)``, ...) for one layer."""
        if self.torch_module is None:
            raise UserError(f"arch={self.arch} has no PyTorch counterpart to load weights from")
        dtype = self.w_ih[...].dtype
        self.w_ih[...] = jnp.asarray(w_ih.T, dtype)
        self.w_hh[...] = jnp.asarray(w_hh.T, dtype)
        self.bias[...] = jnp.asarray(b_ih + b_hh, dtype)

    def to_torch(self) -> dict:
        """``{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}`` as NumPy arrays (PyTorch layout)."""
        import numpy as np

        if self.torch_module is None:
            raise UserError(f"arch={self.arch} has no PyTorch counterpart to export weights to")
        p = {k: np.asarray(v) for k, v in self.params().items()}
        return {"weight_ih": p["w_ih"].T.copy(), "weight_hh": p["w_hh"].T.copy(),
                "bias_ih": p["bias"].copy(), "bias_hh": np.zeros_like(p["bias"])}


_KERNELS: dict[type, CellStep] = {}


def class_kernel(cls) -> CellStep:
    """One :class:`CellStep` per class (so equal configs give the same jit cache entry)."""
    if cls not in _KERNELS or _KERNELS[cls].fn is not cls.step:
        _KERNELS[cls] = CellStep(cls.step, tuple(cls.carry_names), tuple(cls.gate_names),
                                 cls.forget_gate, cls.fused, cls.jacobian, cls.sequence)
    return _KERNELS[cls]


def make_cell(in_features: int, config: CellConfig, *, rngs: nnx.Rngs, dtype=jnp.float32,
              last_layer: bool = True):
    """Build the cell named by ``config.arch``; ``last_layer``: whether it is the top layer of
    its stack (IndRNN's paper initialisation differs there)."""
    return cell_class(config.arch)(in_features, config, rngs=rngs, dtype=dtype,
                                   last_layer=last_layer)


def step_fn(config: CellConfig) -> CellStep:
    """The pure step (a :class:`CellStep`) for a config."""
    return config.kernel()


# ----------------------------------------------------------------------------------------------
# Shared maths.


def recurrent_kernel(key, hidden: int, blocks: int, config: CellConfig, dtype) -> jax.Array:
    """``(H, G·H)``: G blocks, each orthogonal, N(0, 1/H) or I, or the whole kernel Glorot
    uniform (Glorot & Bengio 2010: ±√(6/(H + G·H))), times ``recurrent_scale``."""
    if config.recurrent_init == "glorot":
        return config.recurrent_scale * jax.nn.initializers.glorot_uniform()(
            key, (hidden, blocks * hidden), dtype)
    keys = jax.random.split(key, blocks)
    if config.recurrent_init == "orthogonal":
        mats = [orthogonal(k, (hidden, hidden), dtype) for k in keys]
    elif config.recurrent_init == "identity":  # Le et al. (2015)'s IRNN init (here with tanh)
        mats = [jnp.eye(hidden, dtype=dtype)] * blocks
    else:
        mats = [jax.random.normal(k, (hidden, hidden), dtype) / math.sqrt(hidden) for k in keys]
    return config.recurrent_scale * jnp.concatenate(mats, axis=1)


def chrono_bias(key, hidden: int, tmax: float, dtype) -> jax.Array:
    """log U[1, T_max − 1] (Tallec & Ollivier 2018, eq. 16)."""
    return jnp.log(jax.random.uniform(key, (hidden,), dtype, minval=1.0, maxval=tmax - 1.0))


def matmul(a, b, mm, contract=((1,), (0,))):
    """``a · b`` contracting ``contract``, in ``a``'s dtype.

    ``mm`` is the matmul dtype: None multiplies in the operands' dtype; ``jnp.bfloat16`` rounds
    both operands to it and accumulates in ``a``'s dtype (mixed precision, as on TPUs and in
    PyTorch's autocast). The caller casts weights once, outside the loops.
    """
    if mm is None:
        return jax.lax.dot_general(a, b, (contract, ((), ())))
    return jax.lax.dot_general(a.astype(mm), b.astype(mm), (contract, ((), ())),
                               preferred_element_type=a.dtype)


def block_mask(a, block: int, blocks: int = 4):
    """``(G·H,)``: 1 on the columns of gate block ``block`` of ``a``'s last axis, 0 elsewhere."""
    H = a.shape[-1] // blocks
    return (jnp.arange(blocks * H) // H == block).astype(a.dtype)
