"""A description of the machine a result was measured on: CPU model and instruction sets,
cores, backend, devices and the installed stack. Written beside benchmark results and into every
training run's ``summary.json``: a run repeated on another CPU agrees only to rounding at first,
and training can amplify that (measured in ``docs/robustness.md``)."""

from __future__ import annotations

import glob
import platform
from pathlib import Path

#: The instruction-set extensions that decide how fast float32 and bfloat16 products run on a CPU
#: (the same step can be faster or slower than PyTorch's on two CPUs, ``benchmarks/README.md``).
_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "asimd", "sve")


def _cpuinfo() -> dict:
    """Model name, vendor, family/model/stepping, the flags in ``_ISA_FLAGS`` and the cache sizes of
    the first CPU in ``/proc/cpuinfo`` and sysfs (Linux; an empty dict elsewhere)."""
    detail: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n", 1)[0]
    except OSError:
        return detail
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    for key in ("model name", "vendor_id", "cpu family", "model", "stepping"):
        if key in fields:
            detail[key] = fields[key]
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    detail["isa"] = [f for f in _ISA_FLAGS if f in flags]
    caches = {}
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            level, kind, size = (Path(index, n).read_text().strip() for n in ("level", "type", "size"))
        except OSError:
            continue
        caches[f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")] = size
    if caches:
        detail["caches"] = caches
    return detail


def machine_info() -> dict:
    """A description of this machine and the installed stack (written beside benchmark results)."""
    import os
    from importlib.metadata import PackageNotFoundError, version

    import jax

    versions = {}
    for pkg in ("lstm_jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint",
                "tensorflow-datasets", "numpy", "torch"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    cpu = platform.processor() or platform.machine()
    cpu_detail = _cpuinfo()
    cpu = cpu_detail.pop("model name", cpu)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_detail": cpu_detail,
        "cpu_count": os.cpu_count(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "versions": versions,
    }
