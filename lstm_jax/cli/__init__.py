"""``lstm-jax``: the command line. Thin: parse, call the library, say where results went.

Each subcommand lives in its own module with ``register(subparsers)``; its description is the
module docstring as plain text, and every option's help shows its default
(:class:`lstm_jax.cli.common.HelpFormatter`). User errors (:class:`lstm_jax.errors.UserError`)
print one line and exit with code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lstm_jax.cli.common import HelpFormatter, plain_text, positive_int

COMMANDS = ("info", "demo", "eda", "train", "probe", "plot", "evaluate", "compare", "archs")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lstm_jax")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-jax", formatter_class=HelpFormatter,
        description="Measure and plot how gradients flow back in time through tanh RNNs, LSTMs "
                    "and GRUs: probe models at initialisation or from checkpoints, train them on "
                    "long-range tasks and IMDB, and plot the results.",
        epilog="`lstm-jax COMMAND --help` describes a command and every option with its default.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the installed version and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    parser.add_argument("--cpu-devices", type=positive_int, default=None, metavar="N",
                        help="split the CPU into N JAX devices; batches are split over devices, "
                             "and N = the number of cores trains faster on a CPU (default: "
                             "$JAX_NUM_CPU_DEVICES, else 1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"lstm_jax.cli.{name}").register(sub)
    for command in sub.choices.values():  # one help style for every command
        command.formatter_class = HelpFormatter
        command.description = plain_text(command.description) or None
    return parser


def main(argv: list[str] | None = None) -> int:
    from lstm_jax import interrupts

    # The command line owns the process: Ctrl-C/SIGTERM end it at once, even while XLA blocks the
    # main thread, except inside a training loop that has a step to save (lstm_jax.interrupts).
    with interrupts.installed(hard=True, what="lstm-jax"):
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from lstm_jax.errors import UserError

    try:
        from lstm_jax.environment import check_environment

        check_environment()  # before anything imports JAX, which reads these variables
        if args.cpu_devices:
            from lstm_jax.sharding import set_cpu_devices

            set_cpu_devices(args.cpu_devices)
        return int(args.func(args) or 0)
    except UserError as e:
        if args.debug:
            raise
        print(f"lstm-jax {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lstm-jax {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
