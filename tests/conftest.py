"""Test configuration: CPU, float32 by default; tests that need float64 use ``jax.enable_x64``."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
