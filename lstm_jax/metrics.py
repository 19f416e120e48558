"""Training records: ``metrics.jsonl``/``probes.jsonl`` (append, resume without duplicates) and
mean ± sd over seeds.

Each line is one JSON object with a ``"step"``; values measured per seed are lists (one entry per
seed, in seed order). A line is written with one ``write`` and ``fsync``, so a crash loses at most
the line being written; on resume, :func:`truncate_after` drops lines past the checkpoint's step
(and a torn last line), so no line appears twice; a damaged line elsewhere is an error, never a
silent truncation.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from lstm_jax.errors import UserError
from lstm_jax.io import atomic_write_text, to_jsonable


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    line = json.dumps(to_jsonable(record), sort_keys=False) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _record(line: bytes):
    """The JSON object on ``line`` with an integer ``"step"``, or None."""
    try:
        rec = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    step = rec.get("step") if isinstance(rec, dict) else None
    if isinstance(step, bool) or not isinstance(step, int):
        return None
    return rec


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every record of a JSONL file written by :func:`append_jsonl`.

    A torn last line (a crash while it was written) is dropped. Any other line that is not a
    JSON object with an integer ``"step"`` means the file was damaged by something else; that
    raises :class:`UserError` naming the file and the line instead of dropping what follows it.
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    records = []
    for number, line in enumerate(lines, start=1):
        rec = _record(line)
        if rec is not None:
            records.append(rec)
        elif number < len(lines):
            shown = line[:60].decode("utf-8", "replace")
            raise UserError(f"{path} line {number} is not a JSON object with an integer \"step\" "
                            f"({shown!r}); the file was changed by hand or damaged: repair or "
                            "delete that line, then run again")
    return records


def truncate_after(path: str | os.PathLike, step: int) -> None:
    """Keep only the lines with ``"step" <= step`` (atomically rewritten)."""
    path = Path(path)
    if not path.exists():
        return
    keep = [r for r in read_jsonl(path) if r.get("step", -1) <= step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep))


def mean_sd(values) -> dict[str, float]:
    """``{"mean", "sd", "per_seed"}``; ``sd`` is the sample standard deviation (0 for one seed).
    A ``None`` (how the JSON files store a NaN) is NaN again."""
    values = [math.nan if v is None else float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "per_seed": values}
