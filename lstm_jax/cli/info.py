"""``lstm-jax info``: versions, backend and devices."""

from __future__ import annotations

import json
import platform


def register(sub) -> None:
    p = sub.add_parser("info", help="versions, backend and devices")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


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
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "versions": versions,
    }


def run(args) -> int:
    info = machine_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"lstm_jax {info['versions']['lstm_jax']}  python {info['python']}  {info['platform']}")
    print(f"cpu: {info['cpu']} ({info['cpu_count']} cores)")
    print(f"backend: {info['backend']}  devices: {', '.join(info['devices'])}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if k != "lstm_jax"))
    return 0
