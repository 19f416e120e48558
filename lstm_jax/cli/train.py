"""``lstm-jax train``: train any registered cell on a task; results and checkpoints in ``--out``.

Every flag maps to a :class:`lstm_jax.config.TrainConfig` field. ``--resume`` with only ``--out``
continues the run saved there; flags given together with ``--resume`` must match it (``--steps``
may grow when the schedule is constant). ``--arch rnn,lstm`` trains each architecture in turn,
with the same settings, into ``OUT/rnn/`` and ``OUT/lstm/`` and overlays their curves in
``OUT/curves.png``; ``--resume`` continues each of them.
"""

from __future__ import annotations

import argparse

from lstm_jax.cli.common import GLOBAL_ARGS, add_model_args, finite_float, positive_int
from lstm_jax.cli.common import nonneg_int as _nonneg_int

_MODEL_FLAGS = ("hidden", "layers", "forget_bias", "chrono", "recurrent_init", "recurrent_scale",
                "gru_reset_before", "indrnn_init", "input_init")


def _clip(text: str):
    if text.lower() in ("none", "off", "0"):
        return "none"
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0 (or 'none')")
    return value


def register(sub) -> None:
    p = sub.add_parser("train", help="train any registered cell on a synthetic long-range task or "
                                     "IMDB: metrics, checkpoints, resume, curves",
                       description=__doc__)
    p.add_argument("--arch", help="a registered cell (`lstm-jax archs` lists them: rnn, lstm, gru, "
                                  "peephole, …); a comma-separated list (rnn,lstm) trains "
                                  "each one, with the same settings, into OUT/<arch>/")
    p.add_argument("--task", help="adding, adding_hochreiter, copy, temporal_order, "
                                  "temporal_order8 or imdb")
    p.add_argument("--seq-len", type=positive_int, help="the task's length T")
    add_model_args(p)
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=positive_int, help="optimisation steps")
    g.add_argument("--batch", type=positive_int, help="global batch size (split over devices)")
    g.add_argument("--lr", type=finite_float, help="peak learning rate")
    g.add_argument("--optimizer", help="adam, rmsprop or sgd")
    g.add_argument("--momentum", type=finite_float, help="sgd/rmsprop momentum")
    g.add_argument("--clip", type=_clip, help="clip the global gradient norm to this value "
                                              "('none' = off)")
    g.add_argument("--warmup", type=_nonneg_int, help="linear warm-up steps")
    g.add_argument("--schedule", help="constant or cosine (decay to 0 at --steps)")
    g.add_argument("--embed-dim", type=positive_int, help="embedding width for symbol tasks")
    g.add_argument("--embed-lr-scale", type=finite_float,
                   help="learning-rate multiplier for the embedding table (0 freezes it)")
    g.add_argument("--recurrent-lr-scale", type=finite_float,
                   help="learning-rate multiplier for the cells' recurrent parameters (w_hh, "
                        "IndRNN's u, expRNN's skew generator; its authors use 0.1)")
    g.add_argument("--readout", help="task (the task's own), last, mean or max (over valid steps)")
    g.add_argument("--dropout", type=finite_float, help="dropout on the head's input")
    g.add_argument("--input-dropout", type=finite_float,
                   help="dropout on the recurrence's input, e.g. the embedded words")
    g.add_argument("--unroll", type=positive_int, help="lax.scan unroll factor")
    g.add_argument("--remat", action="store_const", const=True,
                   help="recompute the scan in the backward pass (less memory)")
    g.add_argument("--bidirectional", action="store_const", const=True,
                   help="add a recurrence that reads each sequence backwards (head reads both)")
    g.add_argument("--impl", help="fused (hand-written backward pass, faster) or scan "
                                  "(jax.grad of the plain lax.scan)")
    g.add_argument("--matmul-dtype", help="float32 or bfloat16: mixed precision in the fused "
                                          "recurrence's products (state stays float32)")
    g.add_argument("--seeds", type=positive_int,
                   help="independent models trained in one program (seeds --seed, --seed+1, ...)")
    g.add_argument("--seed", type=_nonneg_int, help="first seed (initialisation, batches, dropout)")
    g.add_argument("--eval-every", type=positive_int,
                   help="evaluate on the held-out set and append to metrics.jsonl every N steps")
    g.add_argument("--eval-size", type=positive_int, help="held-out examples")
    g.add_argument("--probe-every", type=_nonneg_int,
                   help="record gradient-flow probes to probes.jsonl every N steps (0 = off)")
    g.add_argument("--checkpoint-every", type=positive_int, help="save a checkpoint every N steps")
    g.add_argument("--keep-checkpoints", type=positive_int, help="newest checkpoints kept")
    d = p.add_argument_group("data (--task imdb)")
    d.add_argument("--data", help="aclImdb_v1.tar.gz (default: $LSTM_JAX_IMDB, else "
                                  "../shared/data/aclImdb_v1.tar.gz relative to the project root)")
    d.add_argument("--vocab-size", type=positive_int, help="PAD, OOV and the most frequent "
                                                           "train tokens")
    d.add_argument("--embed-init", help="random or ppmi-svd: start the embedding from "
                                        "word vectors of the train + unlabelled reviews "
                                        "(PPMI + SVD, Levy et al. 2015; ~1.5 min once, cached)")
    d.add_argument("--truncate", help="keep each review's last or first --seq-len tokens")
    d.add_argument("--buckets", type=positive_int,
                   help="train batches from K length buckets, each cut to its longest review "
                        "(1 = off; 8 cuts the work at --seq-len 800 to ~40 %%)")
    d.add_argument("--val-size", type=positive_int,
                   help="reviews held out of the train split for validation, with the "
                        "train split's label proportions (default: a fifth, 5000)")
    d.add_argument("--val-seed", type=_nonneg_int, help="seed of the validation split")
    d.add_argument("--val-split", help="review (hold out reviews) or movie (hold out whole "
                                       "movies, as the test split's are disjoint from train's; "
                                       "needs the archive's urls files)")
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, help="run directory (with several --arch: one "
                                                "sub-directory per architecture)")
    o.add_argument("--resume", action="store_true",
                   help="continue the run(s) in --out from the newest checkpoint")
    o.add_argument("--no-progress", action="store_true",
                   help="no progress bar (or, when stderr is not a terminal, no progress lines)")
    o.add_argument("--tensorboard", action="store_true",
                   help="also write the metrics as TensorBoard event files to OUT/tensorboard/ "
                        "(needs tensorboardX: pip install 'lstm_jax[tensorboard]')")
    # None = "not given", so --resume can tell given flags from defaults.
    p.set_defaults(func=run, **{f: None for f in _MODEL_FLAGS})
    _show_config_defaults(p)


def _show_config_defaults(parser) -> None:
    """End each option's help with the :class:`TrainConfig` default it stands for (the parsed
    defaults are None so that ``--resume`` can tell a given flag from a default). Looked up only
    when help is printed: importing the config imports JAX."""
    for action in parser._actions:
        if action.option_strings and action.nargs != 0 and action.dest not in ("out", "help", "data"):
            action.default_help = lambda dest=action.dest: _config_default(dest)


def _config_default(dest: str) -> str:
    import dataclasses

    from lstm_jax.config import TrainConfig

    value = {f.name: f.default for f in dataclasses.fields(TrainConfig)}[dest]
    return "off" if value is None else str(value)


def config_from_args(args):
    """The TrainConfig the flags describe (with ``--resume``: the saved one, checked against
    the flags that were given)."""
    from pathlib import Path

    from lstm_jax.config import TrainConfig
    from lstm_jax.errors import UserError, check_choice
    from lstm_jax.io import check_out_path
    from lstm_jax.tasks import task_names

    check_out_path(args.out)
    given = {}
    for key, value in vars(args).items():
        if value is None or key in (*GLOBAL_ARGS, "out", "resume", "no_progress", "tensorboard"):
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
        return _check_given(cfg, given)
    return _check_given(TrainConfig(**given), given)


def _check_given(cfg, given: dict):
    """Refuse flags the configuration would silently ignore."""
    from lstm_jax.config import DATA_TASKS
    from lstm_jax.errors import UserError
    from lstm_jax.tasks import make_task, task_names

    if "embed_dim" in given and cfg.task not in DATA_TASKS and \
            make_task(cfg.task, cfg.seq_len).spec.input_kind == "dense":
        symbols = [t for t in task_names() if t in DATA_TASKS
                   or make_task(t, max(cfg.seq_len, 20)).spec.input_kind == "symbols"]
        raise UserError(f"--embed-dim={cfg.embed_dim} applies to tasks whose inputs are symbols "
                        f"({', '.join(symbols)}); --task {cfg.task} feeds its inputs to the "
                        "recurrence directly")
    return cfg


def _targets(args) -> list[tuple[str | None, str]]:
    """``[(arch, run_dir)]``: one ``--arch`` (or none) trains into ``--out``; several train into
    ``OUT/<arch>/``. ``--resume`` on a directory of such runs resumes each (without ``--arch``)
    or the named ones."""
    from pathlib import Path

    from lstm_jax.cli.common import check_cell_flags, parse_archs
    from lstm_jax.io import check_out_path

    check_out_path(args.out)
    out = Path(args.out)
    if args.arch is None:
        subruns = sorted(c.parent.name for c in out.glob("*/config.json"))
        if args.resume and not (out / "config.json").is_file() and subruns:
            return [(a, str(out / a)) for a in subruns]
        return [(None, args.out)]
    archs = parse_archs(args.arch)
    check_cell_flags(args, archs)
    if len(archs) == 1 and not (args.resume and not (out / "config.json").is_file()
                                and (out / archs[0] / "config.json").is_file()):
        return [(archs[0], args.out)]
    return [(a, str(out / a)) for a in archs]


def _check_out(run_dir: str, resume: bool) -> None:
    """Refuse an ``--out`` that holds a run (without ``--resume``) before any work is done."""
    from pathlib import Path

    from lstm_jax.errors import UserError

    p = Path(run_dir)
    if p.exists() and not p.is_dir():
        raise UserError(f"--out={run_dir!r} is a file; an output directory is needed")
    if not resume and ((p / "checkpoints").exists() or (p / "metrics.jsonl").exists()):
        raise UserError(f"--out={run_dir!r} already holds a run; pass --resume to continue it "
                        "or choose another --out")


def plan(args) -> list[tuple]:
    """``[(TrainConfig, run_dir)]`` the flags ask for, every one checked (flags, ``--out``,
    ``--tensorboard``'s library) before anything is printed, written or compiled."""
    import argparse

    plans = []
    for arch, run_dir in _targets(args):
        one = argparse.Namespace(**{**vars(args), "arch": arch, "out": run_dir})
        _check_out(run_dir, args.resume)
        plans.append((config_from_args(one), run_dir))
    if args.tensorboard:
        from lstm_jax.tensorboard import check_available

        check_available()
    return plans


def run(args) -> int:
    plans = plan(args)
    results = []
    for cfg, run_dir in plans:
        code = _train_one(cfg, run_dir, args)
        if code:
            return code
        results.append(run_dir)
    if len(plans) > 1:
        from pathlib import Path

        from lstm_jax.plots.runs import plot_run_curves

        figure = Path(args.out) / "curves.png"
        plot_run_curves(results, figure)
        print(f"wrote {figure} (the {len(results)} runs overlaid; redraw with "
              f"`lstm-jax plot {' '.join(results)} --out FILE.png`)")
    return 0


def _train_one(cfg, out: str, args) -> int:
    from lstm_jax.sharding import maybe_initialize_distributed
    from lstm_jax.train import default_probe_fn, train

    maybe_initialize_distributed()
    probe_fn = None
    if cfg.probe_every:
        from lstm_jax.tasks import make_task

        probe_fn = default_probe_fn(make_task(cfg.task, cfg.seq_len).loss)
    print(f"training {cfg.seeds} × {cfg.arch} on {cfg.task} (T={cfg.seq_len}) → {out}")
    writer = None
    if args.tensorboard:
        from lstm_jax.tensorboard import MetricsWriter

        writer = MetricsWriter(out)
    try:
        summary = train(cfg, out, resume=args.resume, probe_fn=probe_fn,
                        progress=not args.no_progress,
                        on_metrics=None if writer is None else writer.write)
    finally:
        if writer is not None:
            writer.close()
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
    print(f"wrote {out}/summary.json, metrics.jsonl, curves.png, checkpoints/"
          + (", tensorboard/" if writer is not None else "")
          + f" (score the test split once with: lstm-jax evaluate {out} --split test)")
    return 0
