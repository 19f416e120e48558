"""Side-by-side table of two benchmark runs (``train_step.json`` and ``probe_cost.json`` in each).

    python -m benchmarks.compare_runs BEFORE_DIR AFTER_DIR

Ratios are ratios of medians inside one run (× PyTorch for the training step, × the training step
for the probes), so two runs compare even when absolute times drift between them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(folder: str, name: str) -> dict:
    return json.loads((Path(folder) / name).read_text())


def _vs_torch(row: dict, impl: str) -> float:
    return row["timings"][impl]["median_s"] / row["timings"]["torch"]["median_s"]


def table(before: str, after: str) -> str:
    lines = ["| arch | impl | before: median ms (× PyTorch) | after: median ms (× PyTorch) | "
             "after/before of the × PyTorch ratio |", "|---|---|---|---|---|"]
    old, new = _load(before, "train_step.json"), _load(after, "train_step.json")
    for ro, rn in zip(old["rows"], new["rows"], strict=True):
        for impl in ("jax_scan", "jax_fused"):
            a, b = _vs_torch(ro, impl), _vs_torch(rn, impl)
            lines.append(f"| {ro['arch']} | {impl} | {1e3 * ro['timings'][impl]['median_s']:.1f} "
                         f"({a:.2f}×) | {1e3 * rn['timings'][impl]['median_s']:.1f} ({b:.2f}×) "
                         f"| {b / a:.2f} |")
    lines += ["", "| arch | probe | before: × train step | after: × train step | after/before |",
              "|---|---|---|---|---|"]
    old, new = _load(before, "probe_cost.json"), _load(after, "probe_cost.json")
    for arch, entry in old["archs"].items():
        for probe, a in entry["ratio_to_train_step"].items():
            b = new["archs"][arch]["ratio_to_train_step"][probe]
            lines.append(f"| {arch} | {probe} | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    print(table(*argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
