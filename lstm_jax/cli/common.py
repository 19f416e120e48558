"""Argument groups shared by several subcommands (model flags, output directory)."""

from __future__ import annotations

import argparse

#: Parsed names that are not a subcommand's options: the global flags and argparse's bookkeeping.
GLOBAL_ARGS = ("func", "command", "debug", "cpu_devices")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def add_model_args(parser: argparse.ArgumentParser, *, arch_default: str = "lstm",
                   hidden_default: int = 128) -> None:
    """Flags that build a :class:`lstm_jax.cells.CellConfig` and a stack depth."""
    g = parser.add_argument_group("model")
    g.add_argument("--hidden", type=positive_int, default=hidden_default, help="hidden size H")
    g.add_argument("--layers", type=positive_int, default=1, help="stacked recurrent layers")
    g.add_argument("--forget-bias", type=finite_float, default=1.0,
                   help="LSTM forget-gate bias at init (Jozefowicz et al. 2015: 1)")
    g.add_argument("--chrono", type=finite_float, default=None, metavar="T_MAX",
                   help="chrono init of LSTM/GRU gate biases for dependencies up to T_MAX steps")
    g.add_argument("--recurrent-init", default="orthogonal", help="orthogonal or normal")
    g.add_argument("--recurrent-scale", type=finite_float, default=1.0,
                   help="scale of the recurrent kernel (= spectral radius of the tanh RNN's W_hh)")
    g.add_argument("--gru-reset-before", action="store_true",
                   help="Cho et al. (2014)'s original GRU instead of the reset-after variant")


def cell_config(args: argparse.Namespace, arch: str):
    """The :class:`CellConfig` the model flags describe, for one architecture."""
    from lstm_jax.cells import CellConfig, cell_accepts

    return CellConfig(arch=arch, hidden=args.hidden, forget_bias=args.forget_bias,
                      chrono_tmax=args.chrono if cell_accepts(arch, "chrono_tmax") else None,
                      recurrent_init=args.recurrent_init, recurrent_scale=args.recurrent_scale,
                      gru_reset_after=not args.gru_reset_before)


def parse_archs(text: str) -> list[str]:
    """``"rnn,lstm"`` → ``["rnn", "lstm"]``, each checked against the registered cells
    (``lstm-jax archs``)."""
    from lstm_jax.cells import ARCHS
    from lstm_jax.errors import check_choice

    archs = [a.strip() for a in text.split(",") if a.strip()]
    if not archs:
        from lstm_jax.errors import UserError

        raise UserError(f"--arch={text!r} names no architecture; choose from {', '.join(ARCHS)}")
    for a in archs:
        check_choice("--arch", a, ARCHS)
    return archs
