"""Devices: a 1-D ``"data"`` mesh over every device, and multi-host start-up.

The batch axis of every batch is split over the mesh (``NamedSharding(mesh, P("data"))``);
parameters and optimiser state are replicated. The same program runs on one CPU, 8 GPUs or a TPU
slice; with several processes (hosts), ``jax.devices()`` lists every host's devices and each
process feeds its share (batches are generated inside the compiled step, so there is nothing to
feed). Tests use fake CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=8``).

On a CPU, :func:`set_cpu_devices` (``lstm-jax --cpu-devices N``) splits the machine into ``N``
devices; with one per core, training is data-parallel over the cores. The training step puts the
mesh in context (``jax.sharding.use_abstract_mesh``) so the fused recurrence splits its batch
explicitly (:mod:`lstm_jax.fused`) rather than leaving it to the partitioner.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from lstm_jax.environment import check_cpu_devices, check_environment
from lstm_jax.errors import UserError

AXIS = "data"
_DISTRIBUTED_ENV = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")


def maybe_initialize_distributed() -> bool:
    """Call ``jax.distributed.initialize()`` when the environment describes a multi-host job.

    Triggered by ``JAX_COORDINATOR_ADDRESS`` (with ``JAX_NUM_PROCESSES``/``JAX_PROCESS_ID``) or
    by a cluster JAX detects itself (SLURM, Cloud TPU) when ``LSTM_JAX_DISTRIBUTED=1``.
    Returns whether it initialised.
    """
    if any(os.environ.get(k) for k in _DISTRIBUTED_ENV) or os.environ.get(
            "LSTM_JAX_DISTRIBUTED") == "1":
        check_environment()
        try:
            jax.distributed.initialize()
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            set_vars = ", ".join(f"{k}={os.environ[k]!r}" for k in (*_DISTRIBUTED_ENV,
                                 "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "LSTM_JAX_DISTRIBUTED")
                                 if os.environ.get(k)) or "none of them"
            raise UserError(f"multi-host start-up failed ({first[:200]}); it needs "
                            "JAX_COORDINATOR_ADDRESS=HOST:PORT, JAX_NUM_PROCESSES and JAX_PROCESS_ID, "
                            f"or a cluster JAX detects (SLURM, Cloud TPU); set: {set_vars}") from None
        return True
    return False


def set_cpu_devices(n: int) -> None:
    """Split the CPU into ``n`` JAX devices (``jax_num_cpu_devices``; the environment variable
    ``JAX_NUM_CPU_DEVICES`` does the same). Call before any JAX operation.

    On a CPU, one device per core trains faster than one device for all cores: each device runs
    the recurrence on its share of the batch, so the per-step products never wait for the other
    core (README, "Performance"). It has no effect on a GPU or TPU backend.
    """
    n = check_cpu_devices("cpu_devices", n)
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError as e:
        raise UserError(f"cpu_devices={n}: JAX's backend has already started in this process, so "
                        "its device count is fixed; set it first (or use JAX_NUM_CPU_DEVICES)") from e


def mesh_to_split(batch: int):
    """The mesh in context (``jax.set_mesh``/``jax.sharding.use_abstract_mesh``) if a batch of
    ``batch`` rows is to be split over its data axis (more than one device, evenly), else None."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or AXIS not in mesh.axis_names or mesh.shape[AXIS] == 1 or batch % mesh.shape[AXIS]:
        return None
    return mesh


def data_mesh(devices=None) -> Mesh:
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (AXIS,))


def waits_for_each_step(mesh: Mesh) -> bool:
    """Whether the training loop must wait for each step before queueing the next.

    True on a CPU split into several devices: there, a deep queue of steps that all-reduce over
    the mesh (hundreds between two evaluations) can stall XLA:CPU's in-process all-reduce until
    its 40-second rendezvous timeout aborts the process (jaxlib 0.10.2; docs/robustness.md,
    "Several CPU devices"). Waiting for each step costs the host's dispatch time only (well
    under 1 % of a step). GPUs and TPUs, and a single CPU device, keep JAX's asynchronous queue.
    """
    return mesh.size > 1 and all(d.platform == "cpu" for d in mesh.devices.flat)


def check_batch(batch: int, mesh: Mesh, field: str = "batch") -> None:
    n = mesh.size
    if batch % n:
        raise UserError(f"{field}={batch} must be a multiple of the number of devices ({n}) "
                        "so the batch splits evenly over the data mesh")


def batch_sharding(mesh: Mesh, leading: int = 0) -> NamedSharding:
    """Shard axis ``leading`` (the batch axis) over the mesh; replicate the rest."""
    return NamedSharding(mesh, P(*([None] * leading), AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def constrain_batch(tree, mesh: Mesh):
    """Inside jit: ask for the batch axis (axis 0) of every leaf to be split over the mesh."""
    s = batch_sharding(mesh)
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, s), tree)


def is_primary() -> bool:
    """True in the process that writes results files (process 0)."""
    return jax.process_index() == 0
