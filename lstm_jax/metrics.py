"""Training records: ``metrics.jsonl``/``probes.jsonl`` (append, resume without duplicates) and
mean ± sd over seeds.

Each line is one JSON object with a ``"step"``; values measured per seed are lists (one entry per
seed, in seed order). A line is written with one ``write`` and ``fsync``, so a crash loses at most
the line being written; on resume, :func:`truncate_after` drops lines past the checkpoint's step
(and a torn last line), so no line appears twice.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from lstm_jax.io import _to_jsonable, atomic_write_text


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    line = json.dumps(_to_jsonable(record), sort_keys=False) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every complete line of a JSONL file (a torn last line is ignored)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def truncate_after(path: str | os.PathLike, step: int) -> None:
    """Keep only the lines with ``"step" <= step`` (atomically rewritten)."""
    path = Path(path)
    if not path.exists():
        return
    keep = [r for r in read_jsonl(path) if r.get("step", -1) <= step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep))


def mean_sd(values) -> dict[str, float]:
    """``{"mean", "sd", "per_seed"}``; ``sd`` is the sample standard deviation (0 for one seed)."""
    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "per_seed": values}
