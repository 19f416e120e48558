"""IMDB: tanh RNN vs LSTM vs GRU × readout {last, mean, max}, on the real data, through the training loop.

Each run is ``lstm_jax.train.train`` (checkpoints, metrics.jsonl) on ``--task imdb``; afterwards the
trained model is scored on the *full* 25,000-review test split (:func:`lstm_jax.tasks.imdb.
evaluate_split`). Results: ``OUT/results.json`` and ``OUT/results.csv`` (test accuracy/loss, wall
times, load average, settings per run), ``OUT/curves.csv`` (held-out accuracy during training),
``OUT/config.json`` and ``OUT/imdb_compare.png``. Runs already completed in ``OUT/runs`` are reused,
so the script can be run in parts (``--only lstm:last,lstm:mean``) and then once more to collect.

Anchors: Dai & Le (2015) 86.5 % for a plain LSTM; a tuned LSTM on the last 200 words 88.8 %; a
tanh RNN 83.5 % on the same setting.

    .venv/bin/python experiments/imdb_compare.py --out runs/imdb_compare
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

RUNS = [(a, r) for a in ("lstm", "gru", "rnn") for r in ("last", "mean", "max")]
ANCHORS = {"Dai & Le 2015, plain LSTM": 0.865, "tuned LSTM, last 200 words": 0.888,
           "tanh RNN, same setting": 0.835}


def base_config(args):
    from lstm_jax.config import TrainConfig

    return TrainConfig(task="imdb", seq_len=args.max_len, hidden=args.hidden,
                       embed_dim=args.embed_dim, lr=args.lr, clip=args.clip, warmup=args.warmup,
                       schedule=args.schedule, steps=args.steps, batch=args.batch, seed=args.seed,
                       eval_every=args.eval_every, eval_size=args.eval_size, dropout=args.dropout,
                       vocab_size=args.vocab_size, embed_init=args.embed_init,
                       embed_lr_scale=args.embed_lr_scale, input_dropout=args.input_dropout,
                       buckets=args.buckets, bidirectional=args.bidirectional,
                       checkpoint_every=args.steps,
                       keep_checkpoints=1)


def run_one(args, arch: str, readout: str) -> dict:
    from flax import nnx

    from lstm_jax.steps import seed_slice
    from lstm_jax.tasks import make_task
    from lstm_jax.tasks.imdb import evaluate_split
    from lstm_jax.train import load_params, train

    out = Path(args.out) / "runs" / f"{arch}_{readout}"
    done = out / "test_full.json"
    if done.is_file():
        return json.loads(done.read_text())
    cfg = base_config(args).replace(arch=arch, readout=readout)
    load0 = os.getloadavg()
    resume = (out / "checkpoints").exists()
    summary = train(cfg, out, resume=resume, progress=args.progress)
    if summary["status"] != "completed":
        raise SystemExit(f"{out}: {summary['status']}")
    t0 = time.perf_counter()
    graphdef, params = load_params(out, cfg)
    model = nnx.merge(graphdef, seed_slice(params, 0))
    task = make_task("imdb", cfg.seq_len, vocab_size=cfg.vocab_size)
    test = evaluate_split(model, task.arrays["test"])
    eval_s = time.perf_counter() - t0
    rec = {"arch": arch, "readout": readout, "max_len": cfg.seq_len, "truncate": "last",
           "vocab_size": task.spec.in_features, "test_accuracy": test["accuracy"],
           "test_loss": test["loss"], "test_n": test["n"], "test_correct": test["correct"],
           "train_wall_s": summary["wall_time_s"], "test_eval_wall_s": round(eval_s, 1),
           "steps": summary["steps"], "steps_per_s": summary["steps_per_s"],
           "epochs": round(summary["steps"] * cfg.batch / task.sizes["train"], 3),
           "parameters": summary["parameters_per_model"],
           "loadavg_start": [round(x, 2) for x in load0],
           "loadavg_end": [round(x, 2) for x in os.getloadavg()],
           "last_eval_subset_accuracy": summary["final"].get("eval/accuracy", {}).get("mean"),
           "config": cfg.to_dict(), "data": task.arrays.info.get("data")}
    from lstm_jax.io import write_json

    write_json(done, rec)
    print(f"{arch}/{readout}: test accuracy {test['accuracy']:.4f} on {test['n']} reviews "
          f"(L={cfg.seq_len}, truncate last); train {summary['wall_time_s']:.0f} s, "
          f"eval {eval_s:.0f} s", flush=True)
    return rec


def collect(args) -> list[dict]:
    """Gather finished runs into results.json/csv, curves.csv and the figure."""
    from lstm_jax.io import write_json
    from lstm_jax.machine import machine_info
    from lstm_jax.metrics import read_jsonl

    out = Path(args.out)
    rows, curves = [], []
    for arch, readout in RUNS:
        d = out / "runs" / f"{arch}_{readout}"
        if not (d / "test_full.json").is_file():
            continue
        rec = json.loads((d / "test_full.json").read_text())
        rows.append(rec)
        for m in read_jsonl(d / "metrics.jsonl"):
            curves.append({"arch": arch, "readout": readout, "step": m["step"],
                           "time_s": m["time"], "train_loss": m["train/loss"][0],
                           "eval_loss": m["eval/loss"][0], "eval_accuracy": m["eval/accuracy"][0]})
    write_json(out / "results.json", {
        "runs": rows, "anchors": ANCHORS, "machine": machine_info(),
        "note": "test_accuracy: full 25,000-review test split; readout and max_len/truncate per run; "
                "eval_accuracy in curves.csv: a fixed subset of eval_size held-out reviews, "
                "validation since the three-split protocol (metrics.jsonl says eval_split), test "
                "reviews in runs made before it"})
    cols = ["arch", "readout", "max_len", "truncate", "vocab_size", "test_accuracy", "test_loss",
            "test_n", "steps", "epochs", "train_wall_s", "test_eval_wall_s", "steps_per_s",
            "parameters", "loadavg_start", "loadavg_end"]
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    if curves:
        with open(out / "curves.csv", "w", newline="") as f:
            w = csv.DictWriter(f, list(curves[0]))
            w.writeheader()
            w.writerows(curves)
    if rows:
        plot(out)
        lines = ["| arch | readout | tokens kept | test accuracy (25,000) | test loss | steps (epochs) "
                 "| train wall s | full-test eval s | load avg (1 min) start→end |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            arch = r["arch"] + (" (bidirectional)" if r["config"].get("bidirectional") else "")
            lines.append(
                f"| {arch} | {r['readout']} | last {r['max_len']} | "
                f"{100 * r['test_accuracy']:.2f} % ({r['test_correct']:,}/{r['test_n']:,}) | "
                f"{r['test_loss']:.4f} | {r['steps']} ({r['epochs']}) | {r['train_wall_s']:.0f} | "
                f"{r['test_eval_wall_s']:.0f} | {r['loadavg_start'][0]}→{r['loadavg_end'][0]} |")
        (out / "table.md").write_text("\n".join(lines) + "\n")
    return rows


def plot(out: Path) -> Path:
    """Figure from ``results.json`` and ``curves.csv`` only: held-out accuracy against step per
    run (left), full-test accuracy per run with the anchors (right); accuracy in %."""
    from lstm_jax.plots.common import save
    from lstm_jax.plots.style import (
        ACCURACY_LABEL,
        ARCH_COLORS,
        ARCH_LABELS,
        legend_below,
        new_figure,
        percent,
        title,
    )

    res = json.loads((out / "results.json").read_text())
    with open(out / "curves.csv") as f:
        curves = list(csv.DictReader(f))
    runs = res["runs"]
    r0 = runs[0]
    fig, (a1, a2) = new_figure(12, 5.0, ncols=2)
    # readout by marker, so line styles keep their one meaning (the quantity) in every figure
    markers = {"last": "o", "mean": "s", "max": "^"}
    for arch, readout in RUNS:
        pts = [c for c in curves if c["arch"] == arch and c["readout"] == readout]
        if pts:
            a1.plot([int(c["step"]) for c in pts],
                    [percent(float(c["eval_accuracy"])) for c in pts], "-",
                    marker=markers[readout], ms=3.5, color=ARCH_COLORS[arch],
                    label=f"{ARCH_LABELS[arch]}, readout {readout}")
    a1.axhline(50, color="gray", lw=0.8, ls=":", label="chance 50 %")
    a1.set_xlabel("training step")
    # the held-out subset is a test subset in runs made before the three-split protocol and a
    # validation subset after it (results.json's note says which)
    a1.set_ylabel(f"held-out {ACCURACY_LABEL}, fixed subset")
    a1.set_title(title("IMDB during training", T=r0["max_len"],
                       H=r0.get("config", {}).get("hidden")))
    legend_below(a1, ncol=3)
    accs = [percent(r["test_accuracy"]) for r in runs]
    bars = a2.bar(range(len(runs)), accs, color=[ARCH_COLORS[r["arch"]] for r in runs])
    for b, r in zip(bars, runs, strict=True):
        b.set_hatch({"last": None, "mean": "//", "max": ".."}[r["readout"]])
        a2.text(b.get_x() + b.get_width() / 2, b.get_height() + 0.2, f"{b.get_height():.1f}",
                ha="center", fontsize=7)
    for (name, v), ls in zip(res["anchors"].items(), (":", "--", "-."), strict=True):
        a2.axhline(percent(v), color="black", lw=0.8, ls=ls,
                   label=f"anchor: {name} {percent(v):.1f} %")
    # one short label per bar, two lines (architecture / readout): no colliding tick labels
    a2.set_xticks(range(len(runs)), [f"{ARCH_LABELS[r['arch']]}\n{r['readout']}" for r in runs],
                  fontsize=7)
    a2.set_ylim(min(accs + [80.0]) - 2, 92)
    a2.set_xlabel("architecture and readout")
    a2.set_ylabel(f"test {ACCURACY_LABEL}, {r0.get('test_n', 25000):,} reviews")
    a2.set_title(title("IMDB full test set", T=r0["max_len"],
                       H=r0.get("config", {}).get("hidden")))
    legend_below(a2, ncol=1)
    return save(fig, out / "imdb_compare.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/imdb_compare")
    p.add_argument("--only", default=None,
                   help="comma list of arch:readout (default all nine: {lstm,gru,rnn} x "
                        "{last,mean,max})")
    p.add_argument("--collect-only", action="store_true")
    p.add_argument("--max-len", type=int, default=200)
    p.add_argument("--vocab-size", type=int, default=20000)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--embed-dim", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--steps", type=int, default=390)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--embed-init", default="random", choices=("random", "ppmi-svd"),
                   help="ppmi-svd: word vectors of the train + unlabelled reviews "
                        "(lstm_jax.data.embeddings)")
    p.add_argument("--input-dropout", type=float, default=0.0,
                   help="dropout on the embedded words the LSTM reads")
    p.add_argument("--embed-lr-scale", type=float, default=1.0,
                   help="learning-rate multiplier for the embedding (0 freezes it)")
    p.add_argument("--buckets", type=int, default=1,
                   help="length buckets for training batches (1 = off; see lstm_jax.tasks.imdb)")
    p.add_argument("--bidirectional", action="store_true",
                   help="a second recurrence reads each review backwards (head reads both)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=65)
    p.add_argument("--eval-size", type=int, default=1024)
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from lstm_jax.io import write_json

    cfg_path = out / "config.json"
    settings = {k: v for k, v in vars(args).items() if k not in ("only", "collect_only", "progress")}
    saved = json.loads(cfg_path.read_text()) if cfg_path.is_file() else None
    if saved is not None:  # options added since a folder was made had their default then
        defaults = vars(p.parse_args([]))
        saved = {**{k: defaults[k] for k in settings}, **saved}
    if saved is not None and saved != settings:
        raise SystemExit(f"{cfg_path} holds other settings; use another --out")
    write_json(cfg_path, settings)
    if not args.collect_only:
        todo = RUNS if args.only is None else [tuple(s.split(":")) for s in args.only.split(",")]
        for arch, readout in todo:
            run_one(args, arch, readout)
    rows = collect(args)
    for r in rows:
        print(f"{r['arch']:4s} readout={r['readout']:4s} L={r['max_len']} truncate={r['truncate']}: "
              f"test acc {100 * r['test_accuracy']:.2f} % (n={r['test_n']}), "
              f"train {r['train_wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
