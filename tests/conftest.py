"""Test configuration: CPU, float32 by default; tests that need float64 use ``jax.enable_x64``.

Compiled programs go to a persistent XLA cache in ``.jax_test_cache/`` (git-ignored), shared by
the xdist workers and by the processes tests start: the same tiny configuration compiled in two
modules or two processes is compiled once. A fresh clone starts with an empty cache.
"""

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parents[1] / ".jax_test_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
