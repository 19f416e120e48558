"""``lstm-jax``: the command line. Thin: parse, call the library, say where results went.

Each subcommand lives in its own module with ``register(subparsers)``; user errors
(:class:`lstm_jax.errors.UserError`) print one line and exit with code 2 (``--debug`` shows the
traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lstm_jax.cli.common import positive_int

COMMANDS = ("info", "demo", "eda", "train", "probe", "archs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-jax",
        description="Measure and plot gradient flow through tanh RNNs, LSTMs and GRUs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    parser.add_argument("--cpu-devices", type=positive_int, default=None, metavar="N",
                        help="split the CPU into N JAX devices; batches are split over devices, "
                             "and N = the number of cores trains faster on a CPU (default: "
                             "$JAX_NUM_CPU_DEVICES, else 1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"lstm_jax.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from lstm_jax.errors import UserError

    try:
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
