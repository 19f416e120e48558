"""The registry of cells: name -> cell class, one-line description, paper (``lstm-jax archs``).

A cell module makes its class available with ``@register(name, description, paper)``; every
other part of the package finds it by name through :func:`cell_class` or :data:`ARCHS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from lstm_jax.errors import UserError, check_choice


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
