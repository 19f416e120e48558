"""Reproduce the essay: every experiment, then one report (``make reproduce [FULL=1]``).

Stages (each a subprocess whose exact command is recorded; each reuses completed results, so a
second run only redraws and rebuilds the report):

1. ``experiments/decay_init.py``      gradient decay at init (RNN/LSTM/GRU, forget bias, RNN scale)
2. ``experiments/decay_trained.py``   gradient decay after training on adding; heatmaps
3. ``experiments/sweep_lag.py``       success against lag on adding (quick: adding only)
4. ``experiments/stability.py``       divergence without / with clipping
5. ``lstm-jax eda imdb``              the essay's three IMDB figures (skipped if no data)
6. IMDB models: quick reuses ``runs/imdb_compare`` (or the committed summary
   ``experiments/results/imdb``) when present and never trains; FULL runs
   ``experiments/imdb_compare.py`` and ``experiments/imdb_gradients.py``
7. ``experiments/comparison_table.py`` the essay's table, measured
8. ``python -m lstm_jax.report``      ``runs/report/report.md`` and ``report.html``

``OUT/manifest.json`` records per stage: command, wall seconds, exit code and the 1-minute load
average before and after (the machine is often shared).

    python experiments/reproduce.py                # quick (OUT = runs/reproduce)
    python experiments/reproduce.py --full         # README sizes (OUT = runs/reproduce_full)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path


def stages(full: bool, out: Path, report: Path, imdb: str, py: str) -> list[tuple[str, list]]:
    q = [] if full else ["--quick"]
    lst = [
        ("decay_init", [py, "experiments/decay_init.py", *q, "--out", str(out / "decay_init")]),
        ("decay_trained", [py, "experiments/decay_trained.py", *q,
                           "--out", str(out / "decay_trained")]),
        ("sweep_lag", [py, "experiments/sweep_lag.py",
                       *(["--tasks", "adding,copy"] if full else ["--quick", "--tasks", "adding"]),
                       "--out", str(out / "sweep_lag")]),
        ("stability", [py, "experiments/stability.py", *q, "--out", str(out / "stability")]),
        ("eda", [py, "-m", "lstm_jax.cli", "eda", "imdb", "--out", str(out / "eda")]),
    ]
    if full:
        lst += [("imdb_compare", [py, "experiments/imdb_compare.py", "--out", imdb]),
                ("imdb_gradients", [py, "experiments/imdb_gradients.py", "--runs", imdb])]
    lst += [("comparison", [py, "experiments/comparison_table.py", *q, "--results", str(out),
                            "--imdb", f"{imdb},experiments/results/imdb",
                            "--out", str(out / "comparison")]),
            ("report", [py, "-m", "lstm_jax.report", "--results", str(out),
                        "--imdb", f"{imdb},experiments/results/imdb", "--out", str(report)])]
    return lst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="the sizes the README quotes (hours)")
    p.add_argument("--out", default=None, help="results folder (runs/reproduce[_full])")
    p.add_argument("--report", default="runs/report")
    p.add_argument("--imdb", default="runs/imdb_compare")
    p.add_argument("--only", default=None, help="comma-separated stage names")
    args = p.parse_args(argv)
    out = Path(args.out or ("runs/reproduce_full" if args.full else "runs/reproduce"))
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.update({"mode": "full" if args.full else "quick", "out": str(out),
                     "report": args.report})
    manifest.setdefault("stages", {})
    has_data = _imdb_available()
    t_all = time.perf_counter()
    failed = []
    for name, cmd in stages(args.full, out, Path(args.report), args.imdb, sys.executable):
        if args.only and name not in args.only.split(","):
            continue
        if name == "eda" and not has_data:
            manifest["stages"][name] = {"command": _show(cmd), "skipped": "no IMDB archive"}
            print(f"== {name}: skipped (no IMDB archive; see lstm_jax/data)", flush=True)
            continue
        if name == "report":
            manifest["total_s_before_report"] = round(time.perf_counter() - t_all, 1)
            _write(manifest_path, manifest)
        print(f"== {name}: {_show(cmd)}", flush=True)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        rc = subprocess.call(cmd)
        rec = {"command": _show(cmd), "seconds": round(time.perf_counter() - t0, 1),
               "returncode": rc, "load_before": round(load0, 2),
               "load_after": round(os.getloadavg()[0], 2),
               "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        manifest["stages"][name] = rec  # the latest run (a re-run reuses results: fast)
        manifest.setdefault("history", []).append({"stage": name, **rec})
        _write(manifest_path, manifest)
        if rc != 0:
            failed.append(name)
            print(f"== {name}: FAILED (exit {rc}); continuing", flush=True)
    manifest["total_s"] = round(time.perf_counter() - t_all, 1)
    _write(manifest_path, manifest)
    print(f"reproduce ({manifest['mode']}): {manifest['total_s']:.0f} s; report in "
          f"{args.report}/report.md and report.html" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


def _imdb_available() -> bool:
    """Whether the IMDB archive resolves (``$LSTM_JAX_IMDB`` or the default path)."""
    from lstm_jax.data.imdb import resolve_archive
    from lstm_jax.errors import UserError

    try:
        resolve_archive()
        return True
    except UserError:
        return False


def _show(cmd: list) -> str:
    """The command as one line, with this interpreter shown as ``python``."""
    return " ".join(shlex.quote(str(c)) for c in ["python" if cmd[0] == sys.executable
                                                   else cmd[0], *cmd[1:]])


def _write(path: Path, obj) -> None:
    from lstm_jax.io import write_json

    write_json(path, obj)


if __name__ == "__main__":
    sys.exit(main())
