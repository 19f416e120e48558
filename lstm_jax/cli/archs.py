"""``lstm-jax archs``: every registered recurrent cell, its one-line description and its paper.

Any name listed is accepted by ``--arch`` of ``train``, ``probe`` and ``demo``. A cell of your
own appears once its module is imported (``docs/cells.md``).

``--hidden H --input-dim D`` adds each cell's parameters in one layer of width H reading D
features (the model's input layer and head come on top); ``--match-params ARCH`` then gives, for
every cell, the width whose layer is closest in size to ARCH's at H: the widths to declare for a
comparison at matched parameter counts (``hidden`` in a protocol arm, docs/compare.md).
"""

from __future__ import annotations

import functools
import json

from lstm_jax.cli.common import positive_int


def register(sub) -> None:
    p = sub.add_parser("archs", help="list the recurrent cells --arch accepts, with their papers",
                       description=__doc__)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--hidden", type=positive_int,
                   help="count each cell's parameters at this width (default: no counts)")
    p.add_argument("--input-dim", type=positive_int, default=1,
                   help="input features of the layer counted (default 1)")
    p.add_argument("--match-params", metavar="ARCH",
                   help="with --hidden: every cell's width closest in parameters to ARCH at "
                        "--hidden (default: none)")
    p.set_defaults(func=run)


@functools.cache  # the width search and the table ask for the same counts again
def layer_parameters(arch: str, in_dim: int, hidden: int) -> int:
    """Parameters of one layer of ``arch`` (default options) at width ``hidden`` reading
    ``in_dim`` features, counted from shapes alone (``nnx.eval_shape``: nothing is allocated)."""
    import jax
    from flax import nnx

    from lstm_jax.cells import CellConfig, make_cell

    cell = nnx.eval_shape(lambda: make_cell(in_dim, CellConfig(arch, hidden), rngs=nnx.Rngs(0)))
    return sum(x.size for x in jax.tree.leaves(nnx.state(cell, nnx.Param)))


def matching_width(arch: str, in_dim: int, target: int, limit: int = 1 << 16) -> int | None:
    """The width H of ``arch`` whose layer's parameter count is closest to ``target`` (a
    bisection: the count grows with H); widths the cell refuses (the LRU's odd ones) are
    skipped. None if no width up to ``limit`` is accepted."""
    from lstm_jax.errors import UserError

    def count(h):
        try:
            return layer_parameters(arch, in_dim, h)
        except UserError:
            return None

    def valid_at_or_above(h):
        while h <= limit and count(h) is None:
            h += 1
        return h if h <= limit else None

    lo, hi = 1, limit
    while lo < hi:  # the smallest accepted width whose count reaches the target
        mid = (lo + hi) // 2
        h = valid_at_or_above(mid)
        if h is None or count(h) >= target:
            hi = mid
        else:
            lo = h + 1
    candidates = [h for h in range(max(1, lo - 3), lo + 4) if count(h) is not None]
    return min(candidates, key=lambda h: (abs(count(h) - target), h), default=None)


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
    from lstm_jax.errors import UserError, check_choice

    table = rows()
    if args.match_params is not None:
        if args.hidden is None:
            raise UserError("--match-params needs --hidden (the width of the cell to match)")
        check_choice("--match-params", args.match_params, [r["name"] for r in table])
    if args.hidden is not None:
        target = (layer_parameters(args.match_params, args.input_dim, args.hidden)
                  if args.match_params else None)
        for r in table:
            try:
                r["parameters"] = layer_parameters(r["name"], args.input_dim, args.hidden)
            except UserError as e:  # e.g. the LRU at an odd width
                r["parameters"], r["parameters_note"] = None, str(e)
            if target is not None:
                h = matching_width(r["name"], args.input_dim, target)
                r["matching_hidden"] = h
                r["matching_parameters"] = (None if h is None else
                                            layer_parameters(r["name"], args.input_dim, h))
    if args.json:
        print(json.dumps(table, indent=2, ensure_ascii=False))
        return 0
    width = max(len(r["name"]) for r in table)
    for r in table:
        fast = ("" if r["fused"] else "  [whole-sequence fast path]" if r["sequence"]
                else "  [generic scan]")
        print(f"{r['name']:<{width}}  {r['description']}{fast}")
        print(f"{'':<{width}}  {r['paper']}")
        if args.hidden is not None:
            n = r["parameters"]
            line = (f"{n:,} parameters in one layer (H={args.hidden}, D={args.input_dim})"
                    if n is not None else f"not at H={args.hidden}: {r['parameters_note']}")
            if args.match_params:
                h = r["matching_hidden"]
                line += (f"; H={h} has {r['matching_parameters']:,}, the closest to "
                         f"{args.match_params} at H={args.hidden} ({target:,})" if h else "")
            print(f"{'':<{width}}  {line}")
    return 0
