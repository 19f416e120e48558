"""experiments/protocols/imdb.toml shrunk to seconds, for tests that run it on a small archive."""

from __future__ import annotations

import re
from pathlib import Path

IMDB_TOML = Path(__file__).resolve().parents[1] / "experiments" / "protocols" / "imdb.toml"


def shrunk_imdb_protocol(path: Path, arms: tuple[str, ...], lr: float, vocab_size: int) -> Path:
    """Write the IMDB protocol to ``path`` with only ``arms``, one learning rate ``lr``, 2 seeds,
    6 steps × batch 4, H=4, E=3, T=12 and ``vocab_size`` words (the small archive's)."""
    text = IMDB_TOML.read_text()
    tables = re.split(r'\n(?=\[arms\.")', text)
    text = "\n".join([tables[0]] + [a for a in tables[1:] if any(f'"{k}"' in a for k in arms)])
    for old, new in [("seeds = 3", "seeds = 2"), ("lr_grid = [1e-3, 3e-3]", f"lr_grid = [{lr}]"),
                     ("steps = 400", "steps = 6"), ("batch = 128", "batch = 4"),
                     ("every = 50", "every = 3"), ("size = 1024", "size = 4"),
                     ("test_size = 25000", "test_size = 100000"), ("hidden = 128", "hidden = 4"),
                     ("embed_dim = 64", "embed_dim = 3"),
                     ("vocab_size = 20000", f"vocab_size = {vocab_size}"),
                     ("warmup = 20", "warmup = 1"), ("checkpoint_every = 100", "checkpoint_every = 6"),
                     ("lengths = [200]", "lengths = [12]")]:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path
