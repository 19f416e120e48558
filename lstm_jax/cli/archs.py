"""``lstm-jax archs``: every registered recurrent cell, its one-line description and its paper.

Any name listed is accepted by ``--arch`` of ``train``, ``probe`` and ``demo``. A cell of your
own appears once its module is imported (``docs/cells.md``).
"""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("archs", help="list the recurrent cells --arch accepts, with their papers",
                       description=__doc__)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def rows() -> list[dict]:
    """One dict per registered cell: name, description, paper, carry, gates, fast paths."""
    from lstm_jax.cells import registered

    out = []
    for name, entry in registered().items():
        step = entry.cls.kernel()
        out.append({"name": name, "description": entry.description, "paper": entry.paper,
                    "carry": list(step.carry_names), "gates": list(step.gate_names),
                    "fused": step.fused is not None, "sequence": step.sequence is not None})
    return out


def run(args) -> int:
    table = rows()
    if args.json:
        print(json.dumps(table, indent=2, ensure_ascii=False))
        return 0
    width = max(len(r["name"]) for r in table)
    for r in table:
        fast = ("" if r["fused"] else "  [whole-sequence fast path]" if r["sequence"]
                else "  [generic scan]")
        print(f"{r['name']:<{width}}  {r['description']}{fast}")
        print(f"{'':<{width}}  {r['paper']}")
    return 0
