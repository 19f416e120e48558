"""The cell interface, the registry of cells, and the helpers every cell's module shares.

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
``_init_bias``, ``extra_params``, ``recurrent_params``  initialisation hooks.
============================  =====================================================================

Parameters are ``w_ih (D, G·H)``, ``w_hh (H, G·H)``, ``bias (G·H,)`` plus any the cell adds
(``extra_params``); a cell without a dense recurrent matrix replaces ``w_hh`` by its own
(``recurrent_params``). A new cell is one module with one ``@register(...)`` line
(``docs/cells.md``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from lstm_jax.errors import UserError, check_choice, check_positive
from lstm_jax.initializers import orthogonal

RECURRENT_INITS = ("orthogonal", "normal", "identity")


# ----------------------------------------------------------------------------------------------
# Registry: name -> cell class, one-line description, paper.


@dataclasses.dataclass(frozen=True)
class CellEntry:
    """One registered cell."""

    name: str
    cls: type
    description: str
    paper: str


_REGISTRY: dict[str, CellEntry] = {}


def register(name: str, description: str, paper: str):
    """Class decorator: make a :class:`RecurrentCell` subclass available as ``arch=name``.

    Registering a name twice replaces the entry (so a notebook can re-run a cell definition).
    """

    def deco(cls):
        if not (isinstance(name, str) and name.isidentifier()):
            raise UserError(f"cell name {name!r} must be an identifier (letters, digits, _)")
        cls.arch = name
        _REGISTRY[name] = CellEntry(name, cls, description, paper)
        return cls

    return deco


def registered() -> dict[str, CellEntry]:
    """A copy of the registry, in registration order."""
    return dict(_REGISTRY)


def cell_class(name: str) -> type:
    """The cell class registered as ``name``; an unknown name is a :class:`UserError` that lists
    the registered ones."""
    check_choice("arch", name, _REGISTRY)
    return _REGISTRY[name].cls


class _ArchNames(Sequence):
    """The registered names, read live (a cell registered later shows up)."""

    def __getitem__(self, i):
        return tuple(_REGISTRY)[i]

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_REGISTRY))

    def __contains__(self, name) -> bool:
        return name in _REGISTRY

    def __repr__(self) -> str:
        return repr(tuple(_REGISTRY))


#: Every registered architecture name (live view of the registry).
ARCHS: Sequence[str] = _ArchNames()


# ----------------------------------------------------------------------------------------------
# The configuration.


@dataclasses.dataclass(frozen=True)
class CellConfig:
    """Everything that defines a recurrent layer's architecture and initialisation.

    Attributes:
      arch: a registered cell name (``lstm-jax archs`` lists them): ``"rnn"`` (tanh),
        ``"lstm"``, ``"gru"``, ``"peephole"``, ``"cifg"``, ``"janet"``, ``"indrnn"``,
        ``"exprnn"``, ``"lru"``, ...
      hidden: hidden size H.
      forget_bias: forget-gate bias at init for the cells with a forget gate (+1 after Jozefowicz
        et al. 2015; Gers et al. 2000 introduced the gate). Ignored when ``chrono_tmax`` is set.
      chrono_tmax: if set, chrono initialisation (Tallec & Ollivier 2018): LSTM
        ``b_f ~ log U[1, T_max−1]``, ``b_i = −b_f``; GRU ``b_z ~ log U[1, T_max−1]``;
        IndRNN's recurrent weights ``u ~ U(0, 2^{1/T_max})`` (Li et al. 2018).
        Refused by cells that do not read it.
      recurrent_init: ``"orthogonal"`` (each H×H gate block orthogonal) or ``"normal"``
        (entries N(0, 1/H), spectral radius ≈ 1 by the circular law) or ``"identity"`` (each block I,
        Le et al. 2015's IRNN init, here with tanh rather than their ReLU).
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
        cls = cell_class(self.arch)
        check_positive("hidden", self.hidden, maximum=65536)
        check_choice("recurrent_init", self.recurrent_init, RECURRENT_INITS)
        if not (isinstance(self.recurrent_scale, int | float) and math.isfinite(self.recurrent_scale)
                and self.recurrent_scale >= 0):
            raise UserError(f"recurrent_scale={self.recurrent_scale!r} must be a finite number ≥ 0")
        if not (isinstance(self.forget_bias, int | float) and math.isfinite(self.forget_bias)):
            raise UserError(f"forget_bias={self.forget_bias!r} must be a finite number")
        if self.chrono_tmax is not None:
            if "chrono_tmax" not in cls.options:
                users = [n for n, e in _REGISTRY.items() if "chrono_tmax" in e.cls.options]
                raise UserError(f"chrono_tmax applies to arch={'/'.join(users)}, not "
                                f"{self.arch} (it has no gate biases to set)")
            if not (isinstance(self.chrono_tmax, int | float) and self.chrono_tmax > 2):
                raise UserError(f"chrono_tmax={self.chrono_tmax!r} must be a number > 2 "
                                "(the longest dependency the gates should span, in steps)")
        cls.check_config(self)

    def kernel(self) -> CellStep:
        """The cell's pure step and fast paths for this configuration."""
        return cell_class(self.arch).kernel(self)

    def accepts(self, option: str) -> bool:
        """Whether this config's cell reads ``option`` (e.g. ``"chrono_tmax"``)."""
        return option in cell_class(self.arch).options


def cell_accepts(arch: str, option: str) -> bool:
    """Whether the cell registered as ``arch`` reads the :class:`CellConfig` field ``option``."""
    return option in cell_class(arch).options


# ----------------------------------------------------------------------------------------------
# Fast paths (optional) and the pure step object.


class StepResiduals(NamedTuple):
    """What a fused forward loop saves of each step, stacked over steps (leading axis T).

    Fields a cell does not use are None."""

    big: jax.Array | None  # (T, B, G·H) activated gates, e.g. LSTM [i, f, g, o], GRU [r, z, n]
    small: tuple  # per-step (T, B, H) residuals, e.g. LSTM (c_{t−1},), GRU (u,), RNN ()
    h: jax.Array | None  # (T, B, H): the h the backward step reads (FusedPath.h_residual)
    c_new: jax.Array | None  # (T, B, H): the cell state after the step (cells with one)
    mask: jax.Array | None  # (T, B) bool


class StepJacobian(NamedTuple):
    """Factors of ``∂carry_t/∂carry_{t−1}`` (any leading axes, e.g. ``(T, B, ·)``); the cell's
    ``JacobianPath.pullback`` reads them."""

    scale: jax.Array  # (…, G·H): multiplies the cotangent tiled over the G blocks, before Wᵀ
    direct: jax.Array | None  # (…, H): e.g. LSTM f (C path), GRU z (h path); RNN None
    h_to_c: jax.Array | None  # (…, H): e.g. LSTM o(1 − tanh²C_t), how dh_t reaches C_t
    mask: jax.Array | None  # (…,) bool, False on padded steps


@dataclasses.dataclass(frozen=True)
class FusedPath:
    """A cell's factors for the hand-written backward pass of :mod:`lstm_jax.fused`.

    Attributes:
      forward: ``(xw_t, h, c, w_hh, extra, mm) -> (h', c' or None, big or None, small)``: one
        step; ``big (B, G·H)`` is written over ``xw_t``'s row in place, ``small`` a tuple of
        ``(B, H)`` residuals. ``mm`` is the matmul dtype (:func:`matmul`).
      backward: ``(big, small, h_t, c_new, dh, dc) -> (dz_x, dz_h or None, dh_extra or None,
        dc_prev or None)``: gradients w.r.t. ``xw_t`` and ``h W_hh`` (None: the same), the direct
        h→h' path and the previous cell state.
      h_residual: which h the backward step reads as ``h_t``: ``"new"`` (the step's output),
        ``"prev"`` (its input) or None.
      extra: name of one ``(H,)`` parameter inside the recurrent product (GRU ``b_hn``) or None.
      extra_grad: ``(dz_h (N, G·H)) -> (H,)``, the gradient of ``extra``.
      gate_blocks: ``((gate, block), …)``: which block of ``big`` holds each gate.
    """

    forward: Callable
    backward: Callable
    h_residual: str | None = None
    extra: str | None = None
    extra_grad: Callable | None = None
    gate_blocks: tuple = ()


@dataclasses.dataclass(frozen=True)
class JacobianPath:
    """A cell's per-step Jacobian factors for the probes (:mod:`lstm_jax.probes.step_jacobian`).

    Attributes:
      factors: ``(StepResiduals) -> StepJacobian``, every step at once (time-vectorised).
      pullback: ``(w_hh, jac_t, v) -> vᵀ ∂carry_t/∂carry_{t−1}`` for one step (padding
        handled by the caller); needs the fused forward loop (``FusedPath``) for its residuals.
    """

    factors: Callable
    pullback: Callable


@dataclasses.dataclass(frozen=True)
class CellStep:
    """A cell's pure maths for one configuration: callable as ``step(params, carry, xw_t)``.

    Hashable (a static ``jax.jit`` argument); equal for equal configurations.
    """

    fn: Callable
    carry_names: tuple[str, ...] = ("h",)
    gate_names: tuple[str, ...] = ()
    forget_gate: str | None = None
    fused: FusedPath | None = None
    jacobian: JacobianPath | None = None
    sequence: Callable | None = None

    def __call__(self, params, carry, xw):
        return self.fn(params, carry, xw)

    @property
    def has_cell_state(self) -> bool:
        return "c" in self.carry_names


def fused_path(step) -> FusedPath | None:
    """The fused fast path of ``step`` (a :class:`CellStep`), None for any other callable."""
    return getattr(step, "fused", None)


def jacobian_path(step) -> JacobianPath | None:
    """The probes' fast path of ``step``; None unless the step has a fused forward loop too."""
    return getattr(step, "jacobian", None) if fused_path(step) is not None else None


# ----------------------------------------------------------------------------------------------
# The NNX module base class.


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
        return _class_kernel(cls)

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


def _class_kernel(cls) -> CellStep:
    """One :class:`CellStep` per class (so equal configs give the same jit cache entry)."""
    if cls not in _KERNELS or _KERNELS[cls].fn is not cls.step:
        _KERNELS[cls] = CellStep(cls.step, tuple(cls.carry_names), tuple(cls.gate_names),
                                 cls.forget_gate, cls.fused, cls.jacobian, cls.sequence)
    return _KERNELS[cls]


def make_cell(in_features: int, config: CellConfig, *, rngs: nnx.Rngs, dtype=jnp.float32):
    """Build the cell named by ``config.arch``."""
    return cell_class(config.arch)(in_features, config, rngs=rngs, dtype=dtype)


def step_fn(config: CellConfig) -> CellStep:
    """The pure step (a :class:`CellStep`) for a config."""
    return config.kernel()


# ----------------------------------------------------------------------------------------------
# Shared maths.


def recurrent_kernel(key, hidden: int, blocks: int, config: CellConfig, dtype) -> jax.Array:
    """``(H, G·H)``: G blocks, each orthogonal or N(0, 1/H), times ``recurrent_scale``."""
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
