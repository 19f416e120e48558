"""A lower bound on a training run's memory, checked before anything is compiled.

Sizes that are each allowed can still multiply past the machine (``--hidden 65536`` alone is a
64 GiB recurrent kernel). Rather than letting XLA fail mid-compile with "Out of memory allocating
68719476736 bytes", :func:`check_fits` compares a *lower bound* of what the run must hold with
what the device has, and refuses with both numbers. Being a lower bound, it never refuses a run
that would fit; a run near the limit can still fail later.

The bound: the training state (parameters and optimiser state of every seed, from
``jax.eval_shape`` of the init program, so exact), one gradient per parameter, and the hidden
states the backward pass needs (at least seeds × layers × batch × T × H values; the fused LSTM
keeps four times that in gates), in float32.
"""

from __future__ import annotations

import jax

from lstm_jax.errors import UserError

GiB = 2**30


def device_memory_bytes(device=None) -> int | None:
    """What one device can hold: its allocator's limit on GPU/TPU; on CPU the memory the OS
    reports available (``MemAvailable``). None when unknown."""
    device = device or jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        return stats.get("bytes_limit")
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def training_bytes_lower_bound(state_shapes, *, seeds: int, layers: int, batch: int, seq_len: int,
                               hidden: int, devices: int = 1) -> dict[str, int]:
    """Lower bounds in bytes per device: ``state``, ``gradients``, ``activations`` and ``total``.

    Args:
      state_shapes: the training state as ``jax.ShapeDtypeStruct`` leaves (all seeds).
      devices: the batch is split over this many devices; the state is replicated.
    """
    leaves = jax.tree.leaves(state_shapes)
    state = sum(leaf.size * leaf.dtype.itemsize for leaf in leaves)
    params = state_shapes["params"] if isinstance(state_shapes, dict) and "params" in state_shapes \
        else state_shapes
    grads = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(params))
    per_device_batch = -(-batch // max(devices, 1))
    activations = 4 * seeds * layers * per_device_batch * seq_len * hidden
    return {"state": state, "gradients": grads, "activations": activations,
            "total": state + grads + activations}


def check_fits(bound: dict[str, int], available: int | None, what: str = "this run") -> None:
    """Refuse (UserError) when the lower bound exceeds ``available`` bytes."""
    if available is None or bound["total"] <= available:
        return
    parts = ", ".join(f"{k} {bound[k] / GiB:.3g}" for k in ("state", "gradients", "activations"))
    raise UserError(f"{what} needs at least {bound['total'] / GiB:.3g} GiB per device ({parts} GiB), "
                    f"more than the {available / GiB:.3g} GiB available; lower --hidden, --batch, "
                    "--seq-len, --seeds or --layers")
