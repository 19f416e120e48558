"""Argument groups shared by several subcommands (model flags, output directory)."""

from __future__ import annotations

import argparse
import re

#: Parsed names that are not a subcommand's options: the global flags and argparse's bookkeeping
#: (``given``: the options written on the command line, see :class:`Given`).
GLOBAL_ARGS = ("func", "command", "debug", "cpu_devices", "given")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (unless it says it already, or it has none);
    descriptions keep their line breaks (they are module docstrings, see :func:`plain_text`).

    An action with a ``default_help`` callable shows what it returns (a default that is looked
    up only when help is printed, e.g. a config field's)."""

    def _get_help_string(self, action):
        help = action.help or ""
        if "default:" in help.lower():
            return help
        if callable(getattr(action, "default_help", None)):
            return help + " (default: " + action.default_help().replace("%", "%%") + ")"
        if ("%(default)" in help or action.default is None
                or action.default is argparse.SUPPRESS or action.nargs == 0):
            return help
        return help + " (default: %(default)s)"


def plain_text(doc: str | None) -> str:
    """A docstring as terminal text: reST roles (``:class:`a.b.C` `` → ``a.b.C``) and inline
    literals (````x```` → ``x``) unwrapped."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", doc or "")
    text = re.sub(r"``([^`]+)``", r"\1", text)
    return text.strip()


class Given(argparse.Action):
    """``store`` (or ``store_true`` with ``nargs=0``) that also adds the option's ``dest`` to
    ``args.given``, so a command can tell a flag the user wrote from its default."""

    def __init__(self, option_strings, dest, nargs=None, **kwargs):
        if nargs == 0:
            kwargs.setdefault("const", True)
            kwargs.setdefault("default", False)
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        namespace.given = frozenset(getattr(namespace, "given", None) or ()) | {self.dest}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer ≥ 0")
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
    parser.set_defaults(given=frozenset())
    g.add_argument("--hidden", type=positive_int, default=hidden_default, action=Given,
                   help="hidden size H")
    g.add_argument("--layers", type=positive_int, default=1, action=Given,
                   help="stacked recurrent layers")
    g.add_argument("--forget-bias", type=finite_float, default=1.0, action=Given,
                   help="LSTM forget-gate bias at init (Jozefowicz et al. 2015: 1)")
    g.add_argument("--chrono", type=finite_float, default=None, metavar="T_MAX", action=Given,
                   help="chrono init of LSTM/GRU gate biases for dependencies up to T_MAX steps "
                        "(default: off)")
    g.add_argument("--recurrent-init", default="orthogonal", action=Given,
                   help="orthogonal (each gate block), normal (N(0, 1/H)), identity (Le et al. "
                        "2015) or glorot (the whole kernel Glorot uniform, TensorFlow 1's default)")
    g.add_argument("--input-init", default="lecun", action=Given,
                   help="input kernel: lecun (LeCun normal) or glorot (Glorot uniform, as in "
                        "JANET's reference code); not for IndRNN, expRNN, LRU")
    g.add_argument("--recurrent-scale", type=finite_float, default=1.0, action=Given,
                   help="scale of the recurrent kernel (= spectral radius of the tanh RNN's W_hh)")
    g.add_argument("--gru-reset-before", nargs=0, action=Given,
                   help="Cho et al. (2014)'s original GRU instead of the reset-after variant")
    g.add_argument("--indrnn-init", default="uniform", action=Given,
                   help="IndRNN: uniform (u ~ U(0, 2^(1/T)) in every layer) or paper (Li et al. "
                        "2018's code: last layer u ~ U(2^(-1/T), 2^(1/T)), inputs N(0, 0.001²); "
                        "needs --chrono T)")


def cell_config(args: argparse.Namespace, arch: str):
    """The :class:`CellConfig` the model flags describe, for one architecture (a flag it does
    not read is left at its default; :func:`check_cell_flags` refuses one no arch reads)."""
    from lstm_jax.cells import cell_config_for

    return cell_config_for(arch, hidden=args.hidden, forget_bias=args.forget_bias,
                           chrono_tmax=args.chrono, recurrent_init=args.recurrent_init,
                           recurrent_scale=args.recurrent_scale,
                           gru_reset_after=not args.gru_reset_before,
                           indrnn_init=args.indrnn_init, input_init=args.input_init)


_CELL_FLAGS = {"forget_bias": "forget_bias", "chrono": "chrono_tmax",
               "recurrent_init": "recurrent_init", "recurrent_scale": "recurrent_scale",
               "gru_reset_before": "gru_reset_after", "indrnn_init": "indrnn_init",
               "input_init": "input_init"}


def check_cell_flags(args: argparse.Namespace, archs: list[str]) -> None:
    """A model flag the user gave that none of ``archs`` reads is an error, not ignored."""
    from lstm_jax.cells import cell_accepts
    from lstm_jax.errors import UserError

    for dest, field in _CELL_FLAGS.items():
        if dest in (getattr(args, "given", None) or ()) and not any(
                cell_accepts(a, field) for a in archs):
            flag = "--" + dest.replace("_", "-")
            raise UserError(f"{flag} does not apply to --arch={','.join(archs)} (no such arch "
                            f"reads {field}); leave it out")


def parse_archs(text: str) -> list[str]:
    """``"rnn,lstm"`` → ``["rnn", "lstm"]``: a non-empty list of registered architectures
    (``lstm-jax archs``), each once (the same rule for ``train``, ``probe`` and ``demo``)."""
    from lstm_jax.cells import ARCHS
    from lstm_jax.errors import UserError, check_choice

    archs = [a.strip() for a in text.split(",")]
    if not any(archs):
        raise UserError(f"--arch={text!r} names no architecture; choose from {', '.join(ARCHS)}")
    if "" in archs:
        raise UserError(f"--arch={text!r} has an empty item; write names separated by single "
                        f"commas, e.g. rnn,lstm (choose from {', '.join(ARCHS)})")
    for a in archs:
        check_choice("--arch", a, ARCHS)
    twice = sorted({a for a in archs if archs.count(a) > 1})
    if twice:
        raise UserError(f"--arch={text!r} names {', '.join(twice)} twice; name each "
                        "architecture once")
    return archs
