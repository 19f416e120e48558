"""Import PyTorch at its best CPU setting, once, before anything starts its thread pool.

``torch.set_flush_denormal(True)`` sets flush-to-zero / denormals-are-zero on the calling thread;
worker threads created later inherit it, threads created earlier do not. So it is called right
after ``import torch`` and before any op (without it PyTorch's LSTM backward at T=1000 runs 3–6×
slower as gradients underflow into denormals; XLA flushes denormals by default).
"""

from __future__ import annotations

import os

_STATE: dict = {}


def cpu_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def setup_torch(threads: int | None = None):
    """Return the ``torch`` module configured once: flush-to-zero on, ``threads`` intra-op threads
    (default: the cores this process may run on, the same cores XLA uses)."""
    if "torch" in _STATE:
        return _STATE["torch"]
    import torch

    ftz = torch.set_flush_denormal(True)
    torch.set_num_threads(threads or cpu_threads())
    _STATE.update(torch=torch, flush_denormal=bool(ftz))
    return torch


def torch_settings() -> dict:
    torch = _STATE.get("torch")
    if torch is None:
        return {}
    return {
        "flush_denormal": _STATE["flush_denormal"],
        "num_threads": torch.get_num_threads(),
        "mkldnn_enabled": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "config": torch.__config__.parallel_info().splitlines()[:6],
    }
