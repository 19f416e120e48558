"""Environment variables that JAX reads when it starts, checked before it starts.

JAX parses ``JAX_NUM_CPU_DEVICES`` at import and ``JAX_COORDINATOR_ADDRESS`` & co. in
``jax.distributed.initialize``; a bad value there surfaces as a traceback from deep inside JAX (or,
for a huge device count, a crash minutes later). :func:`check_environment` turns each into one
:class:`~lstm_jax.errors.UserError` line. It imports nothing heavy, so the command line runs it
before JAX is imported.
"""

from __future__ import annotations

import os

from lstm_jax.errors import UserError

MAX_CPU_DEVICES = 1024  # 1024 fake CPU devices start in seconds; 10^6 crashed after 95 s


def check_cpu_devices(field: str, value) -> int:
    """``value`` as a device count in ``[1, MAX_CPU_DEVICES]``, or a UserError naming ``field``."""
    try:
        n = int(str(value).strip())
    except ValueError:
        raise UserError(f"{field}={value!r} must be a whole number of CPU devices "
                        f"between 1 and {MAX_CPU_DEVICES}") from None
    if not 1 <= n <= MAX_CPU_DEVICES:
        raise UserError(f"{field}={value!r} must be between 1 and {MAX_CPU_DEVICES} CPU devices")
    return n


def _check_address(field: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{field}={value!r} must be HOST:PORT of the coordinator process "
                        "(e.g. 10.0.0.1:1234), with a port between 1 and 65535")


def check_environment(environ=None) -> None:
    """Check the variables JAX and lstm_jax read at start-up (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("JAX_NUM_CPU_DEVICES", "") != "":
        check_cpu_devices("JAX_NUM_CPU_DEVICES", env["JAX_NUM_CPU_DEVICES"])
    flag = env.get("LSTM_JAX_DISTRIBUTED", "")
    if flag not in ("", "0", "1"):
        raise UserError(f"LSTM_JAX_DISTRIBUTED={flag!r} must be 1 (start jax.distributed) or 0/unset")
    for name in ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS"):
        if env.get(name):
            _check_address(name, env[name])
    for name in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        value = env.get(name, "")
        if value and not value.isdigit():
            raise UserError(f"{name}={value!r} must be a whole number ≥ 0")
