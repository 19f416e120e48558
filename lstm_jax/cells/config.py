"""The configuration of a recurrent layer: architecture (a registered cell name) and its
initialisation options, validated against what that cell reads."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from lstm_jax.cells.registry import _REGISTRY, cell_class
from lstm_jax.errors import UserError, check_choice, check_positive

if TYPE_CHECKING:
    from lstm_jax.cells.kernel import CellStep

RECURRENT_INITS = ("orthogonal", "normal", "identity", "glorot")
INPUT_INITS = ("lecun", "glorot")
INDRNN_INITS = ("uniform", "paper")


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
      chrono_tmax: if set, chrono initialisation (Tallec & Ollivier 2018): LSTM, peephole LSTM
        and CIFG ``b_f ~ log U[1, T_max−1]``, ``b_i = −b_f``; GRU ``b_z ~ log U[1, T_max−1]``;
        JANET's forget bias (JANET is always chrono-initialised, with ``T_max = 100`` when this is
        unset; its paper uses the sequence length); IndRNN's range and bound for ``u`` (Li et al.
        2018; without it ``u ~ U(0, 1)``, unbounded). Refused by cells that do not read it, as is
        any field a cell does not read (:func:`cell_accepts`).
      recurrent_init: ``"orthogonal"`` (each H×H gate block orthogonal) or ``"normal"``
        (entries N(0, 1/H), spectral radius ≈ 1 by the circular law) or ``"identity"`` (each block I,
        Le et al. 2015's IRNN init, here with tanh rather than their ReLU) or ``"glorot"``
        (Glorot & Bengio 2010's uniform init of the whole ``(H, G·H)`` kernel, TensorFlow 1's
        default, which JANET's reference code uses).
      input_init: the input kernel ``w_ih (D, G·H)``: ``"lecun"`` (LeCun normal, variance 1/D) or
        ``"glorot"`` (uniform on ±√(6/(D + G·H)), TensorFlow 1's default, as in JANET's code).
        Refused by the cells that initialise ``w_ih`` their own way (IndRNN, expRNN, LRU).
      recurrent_scale: multiplies the recurrent kernel. With orthogonal init every eigenvalue of the
        tanh RNN's W_hh has modulus exactly ``recurrent_scale``, so it *is* the spectral radius
        (Pascanu et al. 2013: < 1 is sufficient for vanishing gradients, > 1 necessary for
        exploding ones).
      gru_reset_after: GRU variant. True (default): ``n = tanh(W_n x + r ⊙ (U_n h + b_hn))`` as in
        cuDNN, PyTorch and Flax (one fused recurrent matmul). False: Cho et al. (2014)'s original
        ``n = tanh(W_n x + U_n (r ⊙ h) + b_hn)``.
      indrnn_init: IndRNN only. ``"uniform"``: ``u ~ U(0, 2^{1/T_max})`` in every layer, input
        weights LeCun normal. ``"paper"``: Li et al. (2018)'s adding setting as their code has
        it: the last layer's ``u ~ U(2^{−1/T_max}, 2^{1/T_max})`` (every unit keeps memory over
        T_max steps), earlier layers' ``U(0, 2^{1/T_max})``, input weights N(0, 0.001²); needs
        ``chrono_tmax``.
    """

    arch: str = "lstm"
    hidden: int = 128
    forget_bias: float = 1.0
    chrono_tmax: float | None = None
    recurrent_init: str = "orthogonal"
    recurrent_scale: float = 1.0
    gru_reset_after: bool = True
    indrnn_init: str = "uniform"
    input_init: str = "lecun"

    def __post_init__(self):
        cls = cell_class(self.arch)
        check_positive("hidden", self.hidden, maximum=65536)
        check_choice("recurrent_init", self.recurrent_init, RECURRENT_INITS)
        check_choice("indrnn_init", self.indrnn_init, INDRNN_INITS)
        check_choice("input_init", self.input_init, INPUT_INITS)
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
        for f in dataclasses.fields(self):  # a value the cell would silently ignore
            field, default = f.name, f.default
            if (field in _REFUSED_UNLESS_READ and getattr(self, field) != default
                    and not cell_accepts(self.arch, field)):
                users = [n for n in _REGISTRY if cell_accepts(n, field)]
                raise UserError(f"{field}={getattr(self, field)!r} does not apply to arch="
                                f"{self.arch} (it reads {field} only for "
                                f"{'/'.join(users)}); leave it at {default!r}")
        cls.check_config(self)

    def kernel(self) -> CellStep:
        """The cell's pure step and fast paths for this configuration."""
        return cell_class(self.arch).kernel(self)

    def accepts(self, option: str) -> bool:
        """Whether this config's cell reads ``option`` (e.g. ``"chrono_tmax"``)."""
        return cell_accepts(self.arch, option)


def cell_accepts(arch: str, option: str) -> bool:
    """Whether the cell registered as ``arch`` reads the :class:`CellConfig` field ``option``:
    ``recurrent_init`` and ``recurrent_scale`` when it keeps the dense recurrent kernel (a cell
    with its own ``recurrent_params``, like IndRNN, expRNN or the LRU, does not), ``input_init``
    unless it initialises ``w_ih`` itself (``own_input_init``), any other field when its
    ``options`` name it."""
    from lstm_jax.cells.base import RecurrentCell  # base imports this module

    cls = cell_class(arch)
    if option in _DENSE_KERNEL_FIELDS:
        return cls.recurrent_params is RecurrentCell.recurrent_params
    if option == "input_init":
        return not cls.own_input_init
    return option in cls.options


_DENSE_KERNEL_FIELDS = ("recurrent_init", "recurrent_scale")
# chrono_tmax has its own message above; hidden and arch every cell reads
_REFUSED_UNLESS_READ = ("forget_bias", *_DENSE_KERNEL_FIELDS, "gru_reset_after", "indrnn_init",
                        "input_init")


def cell_config_for(arch: str, **fields) -> CellConfig:
    """``CellConfig(arch=arch, **fields)`` with each field ``arch`` does not read left at its
    default (``chrono_tmax`` at None): how one set of shared flags applies to several archs."""
    kept = {k: v for k, v in fields.items()
            if k == "hidden" or cell_accepts(arch, k)}
    return CellConfig(arch=arch, **kept)
