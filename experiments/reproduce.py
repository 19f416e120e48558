"""Reproduce the essay: every experiment, then one report (``make reproduce [FULL=1]``).

Stages (each a subprocess whose exact command is recorded; each reuses completed results, so a
second run only redraws and rebuilds the report):

1. ``experiments/decay_init.py``      gradient decay at init (all cells, forget bias, RNN scale)
2. ``experiments/decay_trained.py``   gradient decay after training on adding; heatmaps
3. ``experiments/sweep_lag.py``       success against lag. Quick: adding at tiny sizes, every
   registered cell (full size: ``experiments/protocols/adding_cells.toml``). FULL: the
   README's sweeps (adding T ≤ 1000; copy T ≤ 200, and the RNN at 500) into one folder, one
   ``--collect``, and the two longer runs the README quotes (``lstm-jax train``, ``long_runs/``)
4. ``experiments/stability.py``       divergence without / with clipping
5. ``lstm-jax eda imdb``              the essay's three IMDB figures (skipped if no data)
6. IMDB models: quick reuses ``--imdb`` (default ``runs/imdb_compare``) when present and never
   trains (the table and the report say "not run" otherwise); FULL runs
   ``experiments/imdb_compare.py`` (9 runs), the best LSTM setting (``imdb_best``) and
   ``experiments/imdb_gradients.py``
7. ``experiments/comparison_table.py`` the essay's table, measured (its long-lag and IMDB rows
   from the committed protocol runs, ``experiments/results/compare_adding`` and ``compare_imdb``)
8. ``python -m lstm_jax.report``      ``runs/report/report.md`` and ``report.html``

``OUT/manifest.json`` records per stage: command, wall seconds, exit code and the 1-minute load
average before and after (the machine is often shared); FULL also records
``recorded_training``: the training wall time every run behind the results logged in its
``summary.json`` (summed over resumes), i.e. what FULL costs from scratch even when this
invocation reused finished runs.

Wall time on this project's 2-core CPU: quick, from scratch, 688 s (2026-11-29, load average
5-8; IMDB models reused, tokenised IMDB already cached). FULL: see the README ("Reproducing").

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

# The lag sweep at the sizes the README quotes (FULL), each a separate invocation into one folder,
# then one --collect over it; and the two longer single runs the README quotes.
SWEEP_ADDING = ["--tasks", "adding", "--archs", "rnn,lstm,gru", "--lengths", "50,100,200,500,1000",
                "--seeds", "2", "--steps", "800", "--hidden", "64", "--lr", "3e-3", "--chrono",
                "--eval-every", "100"]
SWEEP_COPY = ["--tasks", "copy", "--archs", "rnn,lstm,gru", "--lengths", "50,100,200", "--seeds",
              "2", "--steps", "1500", "--hidden", "64", "--lr", "2e-3", "--chrono",
              "--eval-every", "250"]
SWEEP_COPY_RNN500 = [*SWEEP_COPY[:2], "--archs", "rnn", "--lengths", "500", *SWEEP_COPY[6:]]
ADDING_LSTM_T1000_1200 = ["--task", "adding", "--arch", "lstm", "--seq-len", "1000", "--hidden",
                          "64", "--chrono", "1000", "--seeds", "2", "--steps", "1200", "--lr",
                          "3e-3", "--eval-every", "100", "--eval-size", "256",
                          "--checkpoint-every", "400"]
COPY500_LSTM_CHRONO = ["--task", "copy", "--arch", "lstm", "--seq-len", "500", "--hidden", "128",
                       "--chrono", "750", "--steps", "5000", "--lr", "1e-3", "--eval-every", "250",
                       "--checkpoint-every", "250"]
# The best IMDB LSTM the README quotes (issue 5's goal), in its own folder.
IMDB_BEST = ["--only", "lstm:max", "--max-len", "800", "--vocab-size", "30000", "--embed-dim",
             "128", "--dropout", "0.5", "--input-dropout", "0.25", "--steps", "585",
             "--embed-init", "ppmi-svd", "--buckets", "8", "--bidirectional"]

# The essay's table quotes the committed protocol runs (`lstm-jax compare`, hours each) for its
# long-lag and IMDB rows: they are the comparisons made under one budget, validation and seeds.
PROTOCOL_RUNS = ["--compare-adding", "experiments/results/compare_adding",
                 "--compare-imdb", "experiments/results/compare_imdb"]


def _train(py: str, flags: list, run_dir: Path) -> list:
    """``lstm-jax train`` into ``run_dir``, continuing (``--resume``) a run already there."""
    resume = ["--resume"] if (run_dir / "checkpoints").is_dir() else []
    return [py, "-m", "lstm_jax.cli", "train", *flags, "--no-progress", "--out", str(run_dir),
            *resume]


def stages(full: bool, out: Path, report: Path, imdb: str, py: str) -> list[tuple[str, list]]:
    from lstm_jax.cells import ARCHS

    q = [] if full else ["--quick"]
    sweep = ["--out", str(out / "sweep_lag")]
    lst = [
        ("decay_init", [py, "experiments/decay_init.py", *q, "--out", str(out / "decay_init")]),
        ("decay_trained", [py, "experiments/decay_trained.py", *q,
                           "--out", str(out / "decay_trained")]),
    ]
    if full:
        lst += [("sweep_adding", [py, "experiments/sweep_lag.py", *SWEEP_ADDING, *sweep]),
                ("sweep_copy", [py, "experiments/sweep_lag.py", *SWEEP_COPY, *sweep]),
                ("sweep_copy_rnn500", [py, "experiments/sweep_lag.py", *SWEEP_COPY_RNN500, *sweep]),
                ("sweep_lag", [py, "experiments/sweep_lag.py", "--collect", *sweep]),
                ("adding_lstm_T1000_1200", _train(py, ADDING_LSTM_T1000_1200,
                                                  out / "long_runs" / "adding_lstm_T1000_1200")),
                ("copy500_lstm_chrono", _train(py, COPY500_LSTM_CHRONO,
                                               out / "long_runs" / "copy500_lstm_chrono"))]
    else:
        lst += [("sweep_lag", [py, "experiments/sweep_lag.py", "--quick", "--tasks", "adding",
                               "--archs", ",".join(ARCHS), *sweep])]  # every registered cell
    lst += [
        ("stability", [py, "experiments/stability.py", *q, "--out", str(out / "stability")]),
        ("eda", [py, "-m", "lstm_jax.cli", "eda", "imdb", "--out", str(out / "eda")]),
    ]
    if full:
        lst += [("imdb_compare", [py, "experiments/imdb_compare.py", "--out", imdb]),
                ("imdb_best", [py, "experiments/imdb_compare.py", *IMDB_BEST,
                               "--out", str(out / "imdb_best")]),
                ("imdb_gradients", [py, "experiments/imdb_gradients.py", "--runs", imdb])]
    lst += [("comparison", [py, "experiments/comparison_table.py", *q, "--results", str(out),
                            "--imdb", imdb, *PROTOCOL_RUNS, "--out", str(out / "comparison")]),
            ("report", [py, "-m", "lstm_jax.report", "--results", str(out),
                        "--imdb", imdb, "--out", str(report)])]
    return lst


def recorded_training_s(*dirs: Path) -> dict:
    """Training wall time recorded by every run under ``dirs`` (each ``summary.json``'s
    ``wall_time_s``, summed over interruptions and resumes): what FULL costs from scratch, even
    when this invocation reused finished runs."""
    runs = {}
    for d in dirs:
        for f in sorted(Path(d).rglob("summary.json")):
            rec = json.loads(f.read_text())
            if "wall_time_s" in rec:
                runs[str(f.parent)] = rec["wall_time_s"]
    return {"runs": len(runs), "total_s": round(sum(runs.values()), 1), "per_run_s": runs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="the sizes the README quotes (hours)")
    p.add_argument("--out", default=None, help="results folder (runs/reproduce[_full])")
    p.add_argument("--report", default="runs/report")
    p.add_argument("--imdb", default="runs/imdb_compare")
    p.add_argument("--only", default=None, help="comma-separated stage names")
    p.add_argument("--docs", default=None, metavar="DIR",
                   help="also copy the README's key figures and the table into DIR "
                        "(docs/figures) and rewrite their rows of DIR/README.md (the command "
                        "that made each); other rows and prose there are kept")
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
    if args.full:
        manifest["recorded_training"] = recorded_training_s(out, Path(args.imdb))
    _write(manifest_path, manifest)
    if args.docs:
        copy_docs(out, Path(args.docs), manifest, Path(args.imdb))
    print(f"reproduce ({manifest['mode']}): {manifest['total_s']:.0f} s; report in "
          f"{args.report}/report.md and report.html" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


DOC_FIGURES = [  # (source under OUT, name in docs, what it shows)
    ("decay_init/decay_init.png", "decay_init.png",
     "‖∂h_T/∂h_(T−k)‖ at init for RNN, LSTM, GRU (left); LSTM ‖∂C_T/∂C_(T−k)‖ vs ∏f (right)"),
    ("decay_init/decay_forget_bias.png", "decay_forget_bias.png",
     "LSTM cell/hidden Jacobian at init with forget bias 0, 1 and chrono"),
    ("decay_init/decay_rnn_scale.png", "decay_rnn_scale.png",
     "tanh RNN at init with recurrent scale 0.5, 1, 1.5: fitted rate vs log10‖W_hh‖₂ bound"),
    ("decay_init/decay_init_cells.png", "decay_init_cells.png",
     "‖∂h_T/∂h_(T−k)‖ at init for all nine registered cells, each at its paper's initialisation"),
    ("decay_trained/decay_trained.png", "decay_trained.png",
     "the same curves after training on the adding problem"),
    ("sweep_lag/lag_sweep.png", "lag_sweep.png", "final loss / baseline against lag T"),
    ("sweep_lag/results.md", "lag_sweep.md", "the lag sweep's table: every point, its time"),
    ("stability/stability.png", "stability.png", "seeds diverged without / with clipping"),
    ("comparison/comparison.md", "comparison.md", "the essay's RNN-vs-LSTM table, measured"),
    ("imdb_best/table.md", "imdb_best.md", "the best IMDB LSTM setting (FULL only)"),
]


DOC_IMDB = [  # (source under --imdb, name in docs, what it shows, stage)
    ("imdb_compare.png", "imdb_compare.png",
     "IMDB: held-out accuracy during training and full-test accuracy, RNN/LSTM/GRU × readout",
     "imdb_compare"),
    ("gradients.png", "imdb_gradients.png", "gradient flow in the trained IMDB models",
     "imdb_gradients"),
]


def copy_docs(out: Path, docs: Path, manifest: dict, imdb: Path | None = None) -> None:
    """Copy the key figures and the table into ``docs`` and record each in ``docs/README.md``.

    The README is merged, not rewritten: a copied file's row is replaced (or appended to the
    table), every other row and all the prose stay, since figures from other commands (the
    protocol comparisons, redraws) are listed there too.
    """
    import shutil

    docs.mkdir(parents=True, exist_ok=True)
    mode = manifest["mode"]
    when = f"{'FULL' if mode == 'full' else 'quick'} sizes, {time.strftime('%Y-%m-%d')}"
    rows = {}
    for src, name, what in DOC_FIGURES:
        if (out / src).is_file():
            shutil.copyfile(out / src, docs / name)
            stage = src.split("/")[0]
            command = manifest["stages"].get(stage, {}).get("command", "")
            rows[name] = f"| `{name}` | {what} | `{command}` ({when}) |"
    for src, name, what, stage in DOC_IMDB if imdb is not None else []:
        if (imdb / src).is_file():
            shutil.copyfile(imdb / src, docs / name)
            command = manifest["stages"].get(stage, {}).get("command", "")
            rows[name] = f"| `{name}` | {what} | `{command}` ({when}) |"
    readme = docs / "README.md"
    lines = readme.read_text().splitlines() if readme.is_file() else DOCS_README_HEAD
    readme.write_text("\n".join(merge_rows(lines, rows)) + "\n")
    print(f"copied {len(rows)} figures and tables into {docs}")


DOCS_README_HEAD = [
    "# Figures shown in the README and the findings", "",
    "Each file is a copy of an experiment's own output; its row names the command that made it "
    "(`make reproduce [FULL=1] DOCS=docs/figures` rewrites the rows of the files it copies).", "",
    "| file | what | made by |", "|---|---|---|"]


def merge_rows(lines: list[str], rows: dict[str, str]) -> list[str]:
    """``lines`` with the table row of each file in ``rows`` (keyed by file name) replaced in
    place, or appended after the table's last row."""
    lines, todo = list(lines), dict(rows)
    for i, line in enumerate(lines):
        for name in list(todo):
            if line.startswith(f"| `{name}` |"):
                lines[i] = todo.pop(name)
    last = max((i for i, line in enumerate(lines) if line.startswith("|")), default=len(lines) - 1)
    return lines[:last + 1] + list(todo.values()) + lines[last + 1:]


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
