"""``lstm-jax info``: versions, backend and devices."""

from __future__ import annotations

import json

from lstm_jax.machine import machine_info


def register(sub) -> None:
    p = sub.add_parser("info", help="versions, backend and devices")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    info = machine_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"lstm_jax {info['versions']['lstm_jax']}  python {info['python']}  {info['platform']}")
    isa = " ".join(info["cpu_detail"].get("isa", []))
    print(f"cpu: {info['cpu']} ({info['cpu_count']} cores){'  isa: ' + isa if isa else ''}")
    print(f"backend: {info['backend']}  devices: {', '.join(info['devices'])}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if k != "lstm_jax"))
    return 0
