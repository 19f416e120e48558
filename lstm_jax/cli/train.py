"""``lstm-jax train``: train RNN/LSTM/GRU models on a task; results and checkpoints in ``--out``.

Every flag maps to a :class:`lstm_jax.config.TrainConfig` field. ``--resume`` with only ``--out``
continues the run saved there; flags given together with ``--resume`` must match it (``--steps``
may grow when the schedule is constant).
"""

from __future__ import annotations

import argparse

from lstm_jax.cli.common import GLOBAL_ARGS, add_model_args, finite_float, positive_int

_MODEL_FLAGS = ("hidden", "layers", "forget_bias", "chrono", "recurrent_init", "recurrent_scale",
                "gru_reset_before")


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer ≥ 0")
    return value


def _clip(text: str):
    if text.lower() in ("none", "off", "0"):
        return "none"
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0 (or 'none')")
    return value


def register(sub) -> None:
    p = sub.add_parser("train", help="train on a synthetic task (adding, copy, temporal order, ...)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", help="rnn, lstm or gru (default lstm)")
    p.add_argument("--task", help="adding, adding_hochreiter, copy, temporal_order, "
                                  "temporal_order8, imdb (default adding)")
    p.add_argument("--seq-len", type=positive_int, help="the task's length T (default 100)")
    add_model_args(p)
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=positive_int, help="optimisation steps (default 1000)")
    g.add_argument("--batch", type=positive_int, help="global batch size (default 64)")
    g.add_argument("--lr", type=finite_float, help="peak learning rate (default 1e-3)")
    g.add_argument("--optimizer", help="adam, rmsprop or sgd (default adam)")
    g.add_argument("--momentum", type=finite_float, help="sgd/rmsprop momentum (default 0.9)")
    g.add_argument("--clip", type=_clip, help="clip the global gradient norm (default 1.0; 'none')")
    g.add_argument("--warmup", type=_nonneg_int, help="linear warm-up steps (default 0)")
    g.add_argument("--schedule", help="constant or cosine (default constant)")
    g.add_argument("--embed-dim", type=positive_int, help="embedding width for symbol tasks")
    g.add_argument("--embed-lr-scale", type=finite_float,
                   help="learning-rate multiplier for the embedding table (default 1; 0 freezes it)")
    g.add_argument("--readout", help="task (default), last, mean or max (over valid steps)")
    g.add_argument("--dropout", type=finite_float, help="dropout on the head's input (default 0)")
    g.add_argument("--input-dropout", type=finite_float,
                   help="dropout on the recurrence's input, e.g. the embedded words (default 0)")
    g.add_argument("--unroll", type=positive_int, help="lax.scan unroll factor (default 1)")
    g.add_argument("--remat", action="store_const", const=True,
                   help="recompute the scan in the backward pass (less memory)")
    g.add_argument("--bidirectional", action="store_const", const=True,
                   help="add a recurrence that reads each sequence backwards (head reads both)")
    g.add_argument("--impl", help="fused (default: hand-written backward pass, faster) or scan "
                                  "(jax.grad of the plain lax.scan)")
    g.add_argument("--matmul-dtype", help="float32 (default) or bfloat16: mixed precision in the "
                                          "fused recurrence's products (state stays float32)")
    g.add_argument("--seeds", type=positive_int, help="independent models in one program")
    g.add_argument("--seed", type=_nonneg_int, help="first seed (default 0)")
    g.add_argument("--eval-every", type=positive_int, help="metrics every N steps (default 100)")
    g.add_argument("--eval-size", type=positive_int, help="held-out examples (default 512)")
    g.add_argument("--probe-every", type=_nonneg_int,
                   help="record gradient-flow probes every N steps (0 = off)")
    g.add_argument("--checkpoint-every", type=positive_int, help="default 500")
    g.add_argument("--keep-checkpoints", type=positive_int, help="default 2")
    d = p.add_argument_group("data (--task imdb)")
    d.add_argument("--data", help="aclImdb_v1.tar.gz (default $LSTM_JAX_IMDB or "
                                  "../shared/data/aclImdb_v1.tar.gz)")
    d.add_argument("--vocab-size", type=positive_int, help="PAD, OOV and the most frequent "
                                                           "train tokens (default 20000)")
    d.add_argument("--embed-init", help="random (default) or ppmi-svd: start the embedding from "
                                        "word vectors of the train + unlabelled reviews "
                                        "(PPMI + SVD, Levy et al. 2015; ~1.5 min once, cached)")
    d.add_argument("--truncate", help="keep each review's last or first --seq-len tokens "
                                      "(default last)")
    d.add_argument("--buckets", type=positive_int,
                   help="train batches from K length buckets, each cut to its longest review "
                        "(default 1 = off; 8 cuts the work at --seq-len 800 to ~40 %%)")
    d.add_argument("--val-size", type=positive_int,
                   help="reviews held out of the train split for validation, stratified by "
                        "label (default: a fifth, 5000)")
    d.add_argument("--val-seed", type=_nonneg_int, help="seed of the validation split (default 0)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    # None = "not given", so --resume can tell given flags from defaults.
    p.set_defaults(func=run, **{f: None for f in _MODEL_FLAGS})


def config_from_args(args):
    """The TrainConfig the flags describe (with ``--resume``: the saved one, checked against
    the flags that were given)."""
    from pathlib import Path

    from lstm_jax.config import TrainConfig
    from lstm_jax.errors import UserError, check_choice
    from lstm_jax.tasks import task_names

    given = {}
    for key, value in vars(args).items():
        if value is None or key in (*GLOBAL_ARGS, "out", "resume", "no_progress"):
            continue
        if key == "gru_reset_before":
            given["gru_reset_after"] = not value
        elif key == "clip":
            given["clip"] = None if value == "none" else value
        else:
            given[key] = value
    if "task" in given:
        check_choice("--task", given["task"], task_names())
    if args.resume:
        path = Path(args.out) / "config.json"
        if not path.is_file():
            raise UserError(f"--resume: {path} does not exist; nothing to resume in --out")
        from lstm_jax.io import read_json

        saved = TrainConfig.from_dict(read_json(path))
        cfg = saved.replace(**given)
        diff = cfg.resume_differences(saved)
        if diff:
            what = "; ".join(f"--{k.replace('_', '-')} was {a!r}, now {b!r}"
                             for k, (a, b) in diff.items())
            raise UserError(f"--resume: the flags disagree with the run in {args.out} ({what})")
        return cfg
    return TrainConfig(**given)


def run(args) -> int:
    from lstm_jax.sharding import maybe_initialize_distributed
    from lstm_jax.train import default_probe_fn, train

    cfg = config_from_args(args)
    maybe_initialize_distributed()
    probe_fn = None
    if cfg.probe_every:
        from lstm_jax.tasks import make_task

        probe_fn = default_probe_fn(make_task(cfg.task, cfg.seq_len).loss)
    print(f"training {cfg.seeds} × {cfg.arch} on {cfg.task} (T={cfg.seq_len}) → {args.out}")
    summary = train(cfg, args.out, resume=args.resume, probe_fn=probe_fn,
                    progress=not args.no_progress)
    final = summary["final"]
    if summary["status"] == "interrupted":
        return 130
    for key, stats in final.items():
        if key.startswith("eval/"):
            print(f"{key} ({summary.get('eval_split', 'held-out')} split): {stats['mean']:.4g} ± "
                  f"{stats['sd']:.2g} over {cfg.seeds} seed(s)")
    task = summary["task"]
    print(f"baseline ({task['loss']}): {task['baseline']:.4g}  [{task['baseline_note']}]")
    print(f"{summary['steps']} steps in {summary['wall_time_s']:.1f} s; "
          f"{summary['parameters_per_model']:,} parameters per model")
    print(f"wrote {args.out}/summary.json, metrics.jsonl, curves.png, checkpoints/ "
          f"(score the test split once with: lstm-jax evaluate {args.out} --split test)")
    return 0
