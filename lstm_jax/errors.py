"""The one exception type for bad user input.

Every entry point (CLI, config constructors, public functions) raises :class:`UserError` with a
message that names the field, the value it got, and what is allowed. The CLI prints the message
on one line and exits with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class UserError(ValueError):
    """Bad input from a user: a one-line message, no traceback on the CLI (exit code 2)."""


def check_choice(field: str, value, allowed: Iterable) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise UserError(f"{field}={value!r} is not allowed; choose one of {', '.join(map(str, allowed))}")


def check_positive(field: str, value, *, maximum: float | None = None, integer: bool = True) -> None:
    kind = "a positive integer" if integer else "a positive number"
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise UserError(f"{field}={value!r} must be {kind}")
    if not integer and not isinstance(value, int | float):
        raise UserError(f"{field}={value!r} must be {kind}")
    if not value > 0:
        raise UserError(f"{field}={value!r} must be {kind}")
    if maximum is not None and value > maximum:
        raise UserError(f"{field}={value!r} is too large; at most {maximum} is allowed")
