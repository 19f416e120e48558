"""The essay's "LSTM vs RNN" table, measured: RNN, LSTM (and GRU) at the same hidden size.

Rows (each with the essay's qualitative claim beside the measured value):

* gates, memory components: from the cells (:mod:`lstm_jax.cells`);
* parameter count: of the recurrence at ``--hidden`` and input width ``--features``;
* training step time and tokens/s: a short adding-problem training run per architecture on this
  machine (``summary.json`` ``this_session.steps_per_s_after_first``: compile excluded);
* long lags: with ``--compare-adding DIR`` (a ``lstm-jax compare`` folder of the adding problem,
  e.g. ``experiments/results/compare_adding``), the seeds that met the protocol's success
  criterion at every T, for every arm of each architecture, and the longest T that most seeds of
  some arm solved; without it, the largest T in the lag sweep (``experiments/sweep_lag.py``)
  whose final eval loss is below ``--solved`` × baseline;
* gradient retained at k = 100: ‖∂h_T/∂h_{T−100}‖_F / ‖∂h_T/∂h_T‖_F (and for the LSTM the cell
  path) at init (``experiments/decay_init.py``) and after training
  (``experiments/decay_trained.py``; the largest lag if T ≤ 100);
* IMDB test accuracy: with ``--compare-imdb DIR`` (a ``lstm-jax compare`` folder of
  ``experiments/protocols/imdb.toml``), mean ± sd over seeds of the test split scored once, and
  the bootstrap CI over seeds of LSTM − RNN; without it, ``experiments/imdb_compare.py``
  results (full 25,000-review test split, one run, test-selected);
* training stability: fraction of seeds that diverged without clipping
  (``experiments/stability.py``).

Only the timing runs train here (reused when present); every other row reads result files, and a
missing file gives "not run" rather than a made-up number.

Writes ``OUT/comparison.json`` and ``OUT/comparison.md``.

    python experiments/comparison_table.py --results runs/reproduce --out runs/reproduce/comparison
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ARCHS = ("rnn", "lstm", "gru")
ESSAY = {  # the essay's table (RNN, LSTM); GRU is not in it
    "gates": ("None", "Forget, Input, Output + Candidate Update"),
    "memory": ("Hidden state only", "Hidden + cell state"),
    "params": ("Low", "High"),
    "speed": ("Faster", "Slower"),
    "lag": ("Poor (long-term dependency handling)", "Excellent"),
    "gradient": ("Unstable; vanishing gradients", "Stable via additive updates"),
    "imdb": ("(essay: LSTMs 'never fail to outperform basic recurrent models')", "—"),
    "stability": ("Poor on long sequences", "Stable"),
}
GATES = {"rnn": "none", "lstm": "input, forget, output + candidate", "gru": "reset, update + candidate"}
MEMORY = {"rnn": "hidden state h", "lstm": "hidden h + cell C", "gru": "hidden state h"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="runs/reproduce", help="folder of the other experiments")
    p.add_argument("--imdb", default="runs/imdb_compare,experiments/results/imdb",
                   help="comma-separated folders to look for IMDB results in, first found wins")
    p.add_argument("--compare-adding", default=None, metavar="DIR",
                   help="a `lstm-jax compare` folder of the adding problem: the long-lag row "
                        "reads it instead of the lag sweep")
    p.add_argument("--compare-imdb", default=None, metavar="DIR",
                   help="a `lstm-jax compare` folder of imdb.toml: the IMDB rows read it instead "
                        "of --imdb")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--features", type=int, default=2, help="input width (adding: 2 channels)")
    p.add_argument("--seq-len", type=int, default=100, help="timing runs: T")
    p.add_argument("--batch", type=int, default=64, help="timing runs: batch")
    p.add_argument("--steps", type=int, default=60, help="timing runs: steps")
    p.add_argument("--solved", type=float, default=0.1,
                   help="a lag counts as solved when loss < SOLVED × baseline")
    p.add_argument("--no-timing", action="store_true",
                   help="skip the timing runs (the step time and tokens/s rows say 'not run')")
    p.add_argument("--quick", action="store_true", help="timing at H=64, 20 steps, batch 32")
    p.add_argument("--out", default="runs/reproduce/comparison")
    args = p.parse_args(argv)
    if args.quick:
        args.hidden, args.steps, args.batch = 64, 20, 32
    return args


def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def param_count(arch: str, hidden: int, features: int) -> int:
    """Parameters of a one-layer recurrence: G·H·(D + H) + G·H (+ H for the GRU's b_hn)."""
    import jax
    from flax import nnx

    from lstm_jax.cells import CellConfig
    from lstm_jax.recurrence import Recurrence

    m = Recurrence(features, CellConfig(arch=arch, hidden=hidden), rngs=nnx.Rngs(0))
    return int(sum(a.size for a in jax.tree.leaves(nnx.state(m, nnx.Param))))


def timing(args, arch: str, out: Path) -> dict:
    from lstm_jax.config import TrainConfig
    from lstm_jax.train import train

    cfg = TrainConfig(task="adding", arch=arch, seq_len=args.seq_len, hidden=args.hidden,
                      batch=args.batch, steps=args.steps, eval_every=args.steps, eval_size=64,
                      checkpoint_every=args.steps, keep_checkpoints=1)
    run_dir = out / "timing" / arch
    s = _read(run_dir / "summary.json")
    if not (s and s.get("status") == "completed" and "this_session" in s):
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
        s = train(cfg, run_dir, progress=False)
    sps = s["this_session"]["steps_per_s_after_first"]
    return {"step_ms": 1000.0 / sps, "tokens_per_s": sps * args.batch * args.seq_len,
            "first_step_s": s["this_session"]["first_step_s"], "config": cfg.to_dict()}


def longest_solved(sweep: list[dict] | None, arch: str, solved: float):
    if not sweep:
        return None, None
    rows = [r for r in sweep if r["task"] == "adding" and r["arch"] == arch]
    if not rows:
        return None, None
    ok = [r["seq_len"] for r in rows if r["loss_over_baseline_mean"] < solved]
    return (max(ok) if ok else 0), sorted(r["seq_len"] for r in rows)


def _compare_results(folder: str | None, task: str) -> dict | None:
    """``results.json`` of a ``lstm-jax compare`` folder, checked to hold ``task``; None if no
    folder was given. A folder given but missing is a :class:`UserError`, not a silent fallback."""
    from lstm_jax.errors import UserError

    if folder is None:
        return None
    res = _read(Path(folder) / "results.json")
    if res is None:
        raise UserError(f"{folder}/results.json not found (give a `lstm-jax compare` folder)")
    if not any(r["task"] == task for r in res["rows"]):
        raise UserError(f"{folder} holds no {task!r} points")
    return res


def protocol_lags(res: dict, arch: str) -> dict:
    """Per arm of ``arch``: ``{T: [successes, seeds] or None (not finished)}``, and the longest T
    at which most seeds of some arm met the criterion (0: none; None: nothing finished)."""
    rows = [r for r in res["rows"] if r["task"] == "adding" and r["arch"] == arch]
    arms: dict[str, dict] = {}
    for r in rows:
        arms.setdefault(r["arm"], {})[r["T"]] = (
            [r["successes"], r["seeds"]] if r["status"] == "done" else None)
    done = [r for r in rows if r["status"] == "done"]
    longest = (max([r["T"] for r in done if 2 * r["successes"] > r["seeds"]], default=0)
               if done else None)
    return {"arms": arms, "longest": longest}


def protocol_imdb(res: dict) -> tuple[dict, dict]:
    """``{(arch, readout): row}`` of the finished IMDB arms named ``arch/readout``, and
    ``{readout: difference}`` for RNN − LSTM test accuracy (bootstrap over seeds)."""
    rows = {tuple(r["arm"].split("/", 1)): r for r in res["rows"]
            if r["task"] == "imdb" and r["status"] == "done" and "/" in r["arm"]}
    diffs = {}
    for d in res.get("differences", []):
        a, b = d["arm_a"].split("/", 1), d["arm_b"].split("/", 1)
        if (d["quantity"] == "test accuracy" and a[0] == "rnn" and b[0] == "lstm"
                and len(a) == len(b) == 2 and a[1] == b[1]):
            diffs[a[1]] = d
    return rows, diffs


def imdb_accuracy(folders: list[str]) -> tuple[dict, str | None]:
    """``{(arch, readout): accuracy}`` from the first folder holding IMDB results."""
    for f in folders:
        d = Path(f)
        res = _read(d / "results.json")
        rows = res["runs"] if res and "runs" in res else []
        if not rows and (d / "runs").is_dir():
            rows = [_read(p) for p in sorted((d / "runs").glob("*/test_full.json"))]
        rows = [r for r in rows if r and "test_accuracy" in r]
        if rows:
            return ({(r["arch"], r["readout"]): r for r in rows}, str(d))
    return {}, None


def build(args) -> dict:
    from lstm_jax.io import ensure_out_dir
    from lstm_jax.machine import machine_info

    out = ensure_out_dir(args.out)
    R = Path(args.results)
    sweep = _read(R / "sweep_lag" / "results.json")
    init = _read(R / "decay_init" / "results.json")
    trained = _read(R / "decay_trained" / "results.json")
    stab = _read(R / "stability" / "results.json")
    cmp_adding = _compare_results(args.compare_adding, "adding")
    cmp_imdb = _compare_results(args.compare_imdb, "imdb")
    if cmp_imdb is not None:
        imdb, imdb_diffs = protocol_imdb(cmp_imdb)
        imdb_dir = args.compare_imdb
    else:
        imdb, imdb_dir = imdb_accuracy(args.imdb.split(","))
        imdb_diffs = {}
    cols = {}
    for arch in ARCHS:
        c = {"gates": GATES[arch], "memory": MEMORY[arch],
             "parameters": param_count(arch, args.hidden, args.features)}
        c.update({"step_ms": None, "tokens_per_s": None} if args.no_timing
                 else timing(args, arch, out))
        if cmp_adding is not None:
            c["protocol_lags"] = protocol_lags(cmp_adding, arch)
            c["longest_lag_solved"] = c["protocol_lags"]["longest"]
            c["lags_tried"] = sorted({r["T"] for r in cmp_adding["rows"] if r["task"] == "adding"})
        else:
            c["longest_lag_solved"], c["lags_tried"] = longest_solved(sweep, arch, args.solved)
        if init and arch in init["settings"]:
            e = init["settings"][arch]
            c["init_k100_log10"] = e["hidden"]["ratio_k100_log10"]
            if "cell" in e:
                c["init_k100_cell_log10"] = e["cell"]["ratio_k100_log10"]
        if trained and arch in trained["archs"]:
            e = trained["archs"][arch]
            c["trained_k"] = e["ratio_k"]
            c["trained_log10"] = e["trained_hidden_log10_ratio"]
            c["trained_log10_per_seed"] = e.get("per_seed", {}).get("trained_hidden")
            if "trained_cell_log10_ratio" in e:
                c["trained_cell_log10"] = e["trained_cell_log10_ratio"]
        for readout in ("last", "mean"):
            r = imdb.get((arch, readout))
            if r is None:
                c[f"imdb_{readout}"] = None
            elif cmp_imdb is not None:
                c[f"imdb_{readout}"] = r["test_mean"]
                c[f"imdb_{readout}_sd"] = r["test_sd"]
                c[f"imdb_{readout}_seeds"] = r["seeds"]
            else:
                c[f"imdb_{readout}"] = r["test_accuracy"]
        if stab:
            for s in stab["summary"]:
                if s["arch"] == arch:
                    key = "noclip" if s["clip"] is None else "clip"
                    c[f"diverged_{key}"] = (s["diverged"], s["seeds"])
                    c[f"failed_{key}"] = s["failed_fraction"]
        cols[arch] = c
    return {"config": vars(args), "machine": machine_info(), "columns": cols,
            "imdb_differences": imdb_diffs,
            "protocols": {"adding": cmp_adding and {**cmp_adding["protocol_fields"],
                                                    "criterion": _criterion(cmp_adding, "adding"),
                                                    "folder": args.compare_adding},
                          "imdb": cmp_imdb and {**cmp_imdb["protocol_fields"],
                                                "folder": args.compare_imdb}},
            "sources": {"sweep": sweep is not None, "decay_init": init is not None,
                        "decay_trained": trained is not None, "stability": stab is not None,
                        "imdb": imdb_dir},
            "stability_config": stab["config"] if stab else None,
            "sweep_config": _read(R / "sweep_lag" / "sweep_config.json"),
            "init_config": init["config"] if init else None,
            "trained_config": trained["config"] if trained else None}


def _criterion(res: dict, task: str) -> str:
    return next(r["criterion"] for r in res["rows"] if r["task"] == task)


def _pow(v):
    return "not run" if v is None else f"10^{v:.1f}"


def _protocol_lag_row(row, c: dict, proto: dict) -> str:
    """Seeds solved per T for every arm of each architecture, from a ``lstm-jax compare`` run."""
    lengths = sorted({T for x in c.values() for arm in x["protocol_lags"]["arms"].values()
                      for T in arm})

    def cell(x):
        arms = x["protocol_lags"]["arms"]
        if not arms:
            return "not in the protocol"
        return "; ".join(f"{name}: " + " · ".join(
            "…" if arm.get(T) is None else f"{arm[T][0]}/{arm[T][1]}" for T in lengths)
            for name, arm in arms.items())

    rnn, lstm = c["rnn"]["longest_lag_solved"], c["lstm"]["longest_lag_solved"]
    if rnn is None or lstm is None:
        verdict = "not run"
    else:
        verdict = (f"{'yes' if lstm > rnn else 'not shown'} at this budget: the longest T that "
                   f"most seeds of an arm solve is {rnn or 'none'} (RNN), {lstm or 'none'} (LSTM)")
        pending = sorted({T for x in c.values() for arm in x["protocol_lags"]["arms"].values()
                          for T, v in arm.items() if v is None})
        if pending:
            verdict += f"; T = {', '.join(map(str, pending))} not finished (…)"
    name = (f"adding problem, seeds solved at T = {' · '.join(map(str, lengths))} "
            f"({proto['criterion']}; {proto['steps']:,} steps × {proto['batch']} for every arm, "
            f"lr from {proto['lr_grid']} on validation; `lstm-jax compare`)")
    return row(name, f"{ESSAY['lag'][0]} / {ESSAY['lag'][1]}", cell, verdict)


def _protocol_imdb_row(row, c: dict, readout: str, diff: dict | None, claim: str) -> str:
    """Test accuracy mean ± sd over seeds (scored once per arm) and LSTM − RNN with its CI."""
    def cell(x):
        m = x.get(f"imdb_{readout}")
        if m is None:
            return "not run"
        return f"{100 * m:.2f} ± {100 * x[f'imdb_{readout}_sd']:.2f} %"

    verdict = ""
    if diff is not None:  # the difference is RNN − LSTM; the table states LSTM − RNN
        mean, lo, hi = -100 * diff["mean"], -100 * diff["high"], -100 * diff["low"]
        verdict = (f"LSTM − RNN = {mean:+.2f} pp (95 % CI over {diff['n']} seeds {lo:+.2f} to "
                   f"{hi:+.2f}): " + ("LSTM better" if lo > 0 else
                                      "RNN better" if hi < 0 else "no clear difference"))
    seeds = c["rnn"].get(f"imdb_{readout}_seeds") or c["lstm"].get(f"imdb_{readout}_seeds")
    name = (f"IMDB test accuracy, readout {readout} (mean ± sd over {seeds} seeds, lr chosen on "
            "validation, test scored once)")
    return row(name, claim, cell, verdict)


def markdown(res: dict) -> str:
    """The table (essay claim | RNN | LSTM | GRU) and a verdict column; from ``res`` only."""
    c, cfg = res["columns"], res["config"]
    r, lstm, g = c["rnn"], c["lstm"], c["gru"]

    def row(name, claim, f, verdict=""):
        return f"| {name} | {claim} | {f(r)} | {f(lstm)} | {f(g)} | {verdict} |"

    lines = ["| | essay: RNN / LSTM | tanh RNN (measured) | LSTM (measured) | GRU (measured) "
             "| agrees with the essay? |", "|---|---|---|---|---|---|"]
    e = ESSAY
    lines.append(row("gate structure", f"{e['gates'][0]} / {e['gates'][1]}",
                     lambda x: x["gates"], "yes (definition)"))
    lines.append(row("memory components", f"{e['memory'][0]} / {e['memory'][1]}",
                     lambda x: x["memory"], "yes (definition)"))
    ratio = lstm["parameters"] / r["parameters"]
    lines.append(row(f"parameters (H={cfg['hidden']}, D={cfg['features']})",
                     f"{e['params'][0]} / {e['params'][1]}", lambda x: f"{x['parameters']:,}",
                     f"yes: LSTM {ratio:.1f}× the RNN (4 blocks vs 1)"))
    if r["step_ms"] is None:
        lines.append(row("train step, ms", f"{e['speed'][0]} / {e['speed'][1]}",
                         lambda x: "not run"))
    else:
        sp = lstm["step_ms"] / r["step_ms"]
        lines.append(row(f"train step, ms (adding T={cfg['seq_len']}, B={cfg['batch']})",
                         f"{e['speed'][0]} / {e['speed'][1]}", lambda x: f"{x['step_ms']:.1f}",
                         f"{'yes' if sp > 1 else 'no'}: LSTM step {sp:.2f}× the RNN's"))
        lines.append(row("tokens/s", "", lambda x: f"{x['tokens_per_s']:,.0f}"))
    proto = (res.get("protocols") or {}).get("adding")
    if proto:
        lines.append(_protocol_lag_row(row, c, proto))
    else:
        if r["longest_lag_solved"] is None:
            lag_v = "not run"
        else:
            lag_v = ("yes" if (lstm["longest_lag_solved"] or 0) > (r["longest_lag_solved"] or 0)
                     else "not shown at these sizes")
        tried = r.get("lags_tried")
        lines.append(row(f"longest adding lag solved (loss < {cfg['solved']}×baseline; tried "
                         f"{tried})", f"{e['lag'][0]} / {e['lag'][1]}",
                         lambda x: "not run" if x["longest_lag_solved"] is None
                         else ("none" if x["longest_lag_solved"] == 0 else
                               f"T = {x['longest_lag_solved']}"), lag_v))
    lines.append(row("‖∂h_T/∂h_(T−100)‖ / ‖∂h_T/∂h_T‖ at init",
                     f"{e['gradient'][0]} / {e['gradient'][1]}",
                     lambda x: _pow(x.get("init_k100_log10")) +
                     (f" (cell {_pow(x['init_k100_cell_log10'])})" if "init_k100_cell_log10" in x
                      else ""),
                     "partly: all decay at init; the RNN fastest"
                     if r.get("init_k100_log10") is not None and lstm.get("init_k100_log10")
                     is not None and r["init_k100_log10"] < lstm["init_k100_log10"] else ""))
    kk = r.get("trained_k")

    def seeds_range(x):
        v = x.get("trained_log10_per_seed")
        return "" if not v or len(v) < 2 else f" [seeds {_pow(min(v))} to {_pow(max(v))}]"

    n_seeds = len(r.get("trained_log10_per_seed") or []) or None
    lines.append(row("same, after training on adding" + (f" (k = {kk}" if kk is not None else "")
                     + (f"; median of {n_seeds} seeds" if n_seeds and n_seeds > 1 else "")
                     + (")" if kk is not None else ""),
                     "",
                     lambda x: _pow(x.get("trained_log10")) + seeds_range(x) +
                     (f" (cell {_pow(x['trained_cell_log10'])})" if "trained_cell_log10" in x
                      else "")))
    imdb_proto = (res.get("protocols") or {}).get("imdb")
    for ro in ("last", "mean"):
        if imdb_proto:
            lines.append(_protocol_imdb_row(row, c, ro, res["imdb_differences"].get(ro),
                                            e["imdb"][0] if ro == "last" else ""))
            continue
        a, b = r[f"imdb_{ro}"], lstm[f"imdb_{ro}"]
        verdict = ""
        if a is not None and b is not None:
            # binomial standard error of a difference of two accuracies on 25,000 reviews
            se = 100 * ((a * (1 - a) + b * (1 - b)) / 25_000) ** 0.5
            diff = 100 * (b - a)
            verdict = (f"LSTM − RNN = {diff:+.2f} pp (± {2 * se:.2f} at 2 s.e.): "
                       + ("LSTM better" if diff > 2 * se else
                          "no clear difference" if diff > -2 * se else "RNN better"))
        lines.append(row(f"IMDB test accuracy, readout {ro} (one run, setting chosen on test)",
                         e["imdb"][0] if ro == "last" else "",
                         lambda x, ro=ro: "not run" if x[f"imdb_{ro}"] is None
                         else f"{100 * x[f'imdb_{ro}']:.2f} %", verdict))
    st = res.get("stability_config")
    if st:
        def dv(x, key):
            v = x.get(f"diverged_{key}")
            return "not run" if v is None else f"{v[0]}/{v[1]}"
        rv, lv = r.get("diverged_noclip"), lstm.get("diverged_noclip")
        verdict = ""
        if rv and lv:
            verdict = ("yes: the RNN diverged more often" if rv[0] / rv[1] > lv[0] / lv[1]
                       else "not shown: no more RNN divergences than LSTM ones")
        lines.append(row(f"seeds diverged, no clipping (SGD lr {st['lr']}, T={st['seq_len']}; "
                         "RNN at recurrent scale 1.5)", f"{e['stability'][0]} / "
                         f"{e['stability'][1]}", lambda x: dv(x, "noclip"), verdict))
        rc = r.get("diverged_clip")
        lines.append(row("seeds diverged, clip 1.0", "essay: explosion 'easily mitigated with "
                         "gradient clipping'", lambda x: dv(x, "clip"),
                         "" if not rc else ("yes: clipping removed the divergences"
                                            if rc[0] == 0 else "no: still diverges")))
        lines.append(row("seeds not beating the baseline, no clip / clip", "",
                         lambda x: f"{x.get('failed_noclip', float('nan')):.2f} / "
                                   f"{x.get('failed_clip', float('nan')):.2f}"))
    sources = [f"{what} from `{p['folder']}/results.json`"
               for what, p in (("long lags", (res.get("protocols") or {}).get("adding")),
                               ("IMDB", (res.get("protocols") or {}).get("imdb"))) if p]
    if sources:
        lines += ["", "Protocol runs (`lstm-jax compare`): " + "; ".join(sources) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from lstm_jax.errors import UserError
    from lstm_jax.io import atomic_write_text, write_json

    args = parse_args(argv)
    try:
        res = build(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    write_json(out / "comparison.json", res)
    md = markdown(res)
    atomic_write_text(out / "comparison.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
