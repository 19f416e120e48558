"""Training metrics as TensorBoard event files (``lstm-jax train --tensorboard``).

Written with tensorboardX (no TensorFlow import; ``pip install 'lstm_jax[tensorboard]'``) into
``OUT/tensorboard/seed_<s>/``: one event directory per seed, so TensorBoard overlays a run's
seeds; the tags are the scalar keys of ``metrics.jsonl`` (``train/loss``, ``eval/loss``,
``eval/accuracy``, ..., ``lr``), at the same steps and with the same values. ``metrics.jsonl``
stays the record; the event files are a view of it for the tool researchers already use.

On ``--resume`` the first record's step is the writer's ``purge_step``: TensorBoard drops the
events at and after it that an interrupted session had written, as ``metrics.jsonl`` is
truncated to the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from lstm_jax.errors import UserError

EXTRA = "pip install 'lstm_jax[tensorboard]'"


def check_available() -> None:
    """Raise a :class:`UserError` naming the extra when tensorboardX is not installed."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise UserError(f"--tensorboard needs the tensorboardX package, which is not installed; "
                        f"{EXTRA} (or pip install tensorboardX)") from None


class MetricsWriter:
    """Writes metrics records (the dicts appended to ``metrics.jsonl``) as scalars.

    Args:
      run_dir: the run directory; events go to ``run_dir/tensorboard/seed_<s>/``.

    ``write(record)`` takes a record with ``step``, per-seed lists (``train/loss``,
    ``eval/<metric>``) and scalars (``lr``); the i-th list entry belongs to seed ``seed + i`` of
    ``run_dir/config.json``.
    """

    def __init__(self, run_dir: str | Path):
        check_available()
        self.root = Path(run_dir) / "tensorboard"
        self._writers: dict[int, object] = {}
        self._seeds: list[int] | None = None
        self._purge: int | None = None

    def _seed_numbers(self, n: int) -> list[int]:
        if self._seeds is None:
            from lstm_jax.io import read_json

            cfg = self.root.parent / "config.json"
            first = read_json(cfg).get("seed", 0) if cfg.is_file() else 0
            self._seeds = list(range(first, first + n))
        return self._seeds

    def _writer(self, seed: int):
        if seed not in self._writers:
            from tensorboardX import SummaryWriter

            self._writers[seed] = SummaryWriter(str(self.root / f"seed_{seed}"),
                                                purge_step=self._purge, flush_secs=10)
        return self._writers[seed]

    def write(self, record: dict) -> None:
        step = int(record["step"])
        if self._purge is None:
            self._purge = step
        per_seed = {k: v for k, v in record.items() if isinstance(v, list)}
        n = max((len(v) for v in per_seed.values()), default=1)
        seeds = self._seed_numbers(n)
        for i, seed in enumerate(seeds):
            w = self._writer(seed)
            for key, values in per_seed.items():
                w.add_scalar(key, float(values[i]), step)
            if isinstance(record.get("lr"), int | float):
                w.add_scalar("lr", float(record["lr"]), step)

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()
