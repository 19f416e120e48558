"""``lstm-jax probe``: gradient-flow decay curves (every lag) for one or more architectures.

Writes ``DIR/probe.json`` (what was probed under ``config``, ``k``, and per architecture the
records of :func:`lstm_jax.probes.probe`: ``log10_hidden``, ``log10_cell``, ``log10_cec``,
``log10_loss_grad`` with ``*_std`` spreads, gate statistics, ``method``) and ``DIR/probe.png``
(norms against lag on a log axis, architectures overlaid; the LSTM's cell curve beside its
forget-gate product) and ``DIR/loss_grad.png``. Each curve is the mean over the batch's rows of
log10 of the norm, i.e. a geometric mean.

Without ``--task`` the inputs are N(0, 1) of width ``--features`` and the loss is
:func:`lstm_jax.probes.last_step_readout_loss` (a fixed random linear readout of the last h,
squared error). With ``--task NAME`` the inputs, mask and loss are one batch of that task, through
the task's model (input layer, recurrence, head), at initialisation.

``--checkpoint RUN_DIR`` probes a model trained by ``lstm-jax train``: the run's architecture,
task and model flags are used (giving a model flag that differs from the run's is an error);
``--seq-len`` (default: the run's T) and ``--batch`` choose the probe's inputs; ``--step``
(default: the newest checkpoint) and ``--seed-index`` (which of the run's seeds) choose the model.
"""

from __future__ import annotations

from lstm_jax.cli.common import GLOBAL_ARGS, Given, add_model_args, nonneg_int, positive_int

#: Flags whose value must match a checkpoint's config, with the config field they describe.
_MUST_MATCH = {"task": "task", "hidden": "hidden", "layers": "layers",
               "forget_bias": "forget_bias", "chrono": "chrono",
               "recurrent_init": "recurrent_init", "recurrent_scale": "recurrent_scale",
               "indrnn_init": "indrnn_init", "input_init": "input_init"}


def register(sub) -> None:
    p = sub.add_parser("probe", help="gradient flow at every lag: ∂h_T/∂h_{T−k}, ∂C_T/∂C_{T−k}, "
                                     "∂L/∂h_t, at initialisation or from a trained checkpoint",
                       description=__doc__)
    p.add_argument("--arch", default="rnn,lstm,gru", action=Given,
                   help="comma-separated registered cells (`lstm-jax archs`; with "
                        "--checkpoint: the run's)")
    p.add_argument("--seq-len", type=positive_int, default=200, action=Given,
                   help="sequence length T of the probe's inputs (default: 200; with "
                        "--checkpoint: the run's T)")
    p.add_argument("--batch", type=positive_int, default=16,
                   help="input rows; each curve is the mean of log10 ‖·‖ over them (a geometric "
                        "mean)")
    p.add_argument("--features", type=positive_int, default=16, action=Given,
                   help="input width D of the N(0, 1) inputs (without --task or --checkpoint)")
    p.add_argument("--layer", type=nonneg_int, default=0,
                   help="which layer of the stack to probe (0 = the first)")
    p.add_argument("--method", default="exact",
                   help="exact (a basis of vectors) or hutchinson (--samples random vectors)")
    p.add_argument("--samples", type=positive_int, default=8, help="hutchinson probe vectors K")
    p.add_argument("--spectral", action="store_true",
                   help="also σ_max(∂h_T/∂h_{T−k}) by power iteration at ~12 lags")
    p.add_argument("--task", default=None, action=Given,
                   help="probe on one held-out batch of this task (default: N(0, 1) inputs "
                        "and a random readout; with --checkpoint: the run's task)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the inputs, of the model's initialisation (without "
                        "--checkpoint) and of the probe vectors")
    c = p.add_argument_group("trained model (--checkpoint)")
    c.add_argument("--checkpoint", default=None, metavar="RUN_DIR",
                   help="probe the model trained by `lstm-jax train --out RUN_DIR` (default: "
                        "probe freshly initialised models)")
    c.add_argument("--step", type=nonneg_int, default=None,
                   help="which saved step of RUN_DIR/checkpoints (default: the newest)")
    c.add_argument("--seed-index", type=nonneg_int, default=0,
                   help="which of the run's --seeds models: 0 is its first seed")
    p.add_argument("--out", required=True, help="output directory")
    add_model_args(p, hidden_default=64)
    p.set_defaults(func=run)


def _synthetic_setup(args, arch):
    import jax
    from flax import nnx

    from lstm_jax.cli.common import cell_config
    from lstm_jax.recurrence import Recurrence

    key = jax.random.key(args.seed)
    x = jax.random.normal(jax.random.fold_in(key, 1), (args.batch, args.seq_len, args.features))
    model = Recurrence(args.features, cell_config(args, arch), args.layers,
                       rngs=nnx.Rngs(args.seed))
    return model, x, None, None


def _task_setup(args, arch):
    from flax import nnx

    from lstm_jax.cli.common import cell_config
    from lstm_jax.model import SequenceModel
    from lstm_jax.probes import head_loss
    from lstm_jax.tasks.registry import make_task

    task = make_task(args.task, args.seq_len)
    model = SequenceModel.for_task(task.spec, cell_config(args, arch), layers=args.layers,
                                   rngs=nnx.Rngs(args.seed))
    batch = probe_batch(task, args)
    return model.recurrence, model.inputs(batch.x), batch.mask, head_loss(model, batch, task.loss)


PROBE_SPLIT = "validation"  # the test split stays for the once-scored evaluation


def probe_batch(task, args):
    """One held-out batch of the task, from its validation split (:data:`PROBE_SPLIT`)."""
    import jax

    return task.eval_set(task.device_data(), jax.random.key(args.seed + 1), args.batch,
                         split=PROBE_SPLIT)


def _check_flags_against(args, cfg) -> None:
    """A flag that describes another model than the checkpoint's is an error, not ignored."""
    from lstm_jax.cli.common import parse_archs
    from lstm_jax.errors import UserError

    where = f"--checkpoint={args.checkpoint!r}"
    given = args.given
    if "arch" in given and parse_archs(args.arch) != [cfg.arch]:
        raise UserError(f"--arch={args.arch!r} contradicts {where}, whose model is arch="
                        f"{cfg.arch!r}; leave --arch out to probe it")
    for dest, field in _MUST_MATCH.items():
        if dest in given and getattr(args, dest) != getattr(cfg, field):
            flag = "--" + dest.replace("_", "-")
            raise UserError(f"{flag}={getattr(args, dest)!r} contradicts {where}, whose "
                            f"{field}={getattr(cfg, field)!r}; leave {flag} out to probe it")
    if "gru_reset_before" in given and args.gru_reset_before == cfg.gru_reset_after:
        raise UserError(f"--gru-reset-before contradicts {where}, whose gru_reset_after="
                        f"{cfg.gru_reset_after!r}; leave it out to probe the run's model")
    if "features" in given:
        raise UserError(f"--features={args.features} does not apply to {where}: its inputs "
                        f"come from its task ({cfg.task!r})")
    if not 0 <= args.seed_index < cfg.seeds:
        raise UserError(f"--seed-index={args.seed_index} is not one of {where}'s models; "
                        f"choose 0..{cfg.seeds - 1} (it trained --seeds={cfg.seeds})")
    if args.layer >= cfg.layers:
        raise UserError(f"--layer={args.layer} must be in 0..{cfg.layers - 1} ({where} has "
                        f"layers={cfg.layers})")


def _saved_step(args, cfg) -> int:
    """The checkpoint step to load: ``--step``, else the newest saved one; its metadata must
    name the run's configuration."""
    from pathlib import Path

    from lstm_jax.checkpoint import Checkpoints
    from lstm_jax.errors import UserError
    from lstm_jax.train import check_resume_config

    where = Path(args.checkpoint) / "checkpoints"
    if not where.is_dir():
        raise UserError(f"--checkpoint={args.checkpoint!r} has no checkpoints/ directory; "
                        "pass a directory written by `lstm-jax train`")
    ckpts = Checkpoints(where)
    try:
        steps = ckpts.steps()
        if not steps:
            raise UserError(f"--checkpoint={args.checkpoint!r}: no complete checkpoint in {where}")
        if args.step is not None and args.step not in steps:
            raise UserError(f"--step={args.step} has no checkpoint in {where}; saved steps: "
                            f"{', '.join(map(str, steps))}")
        step = steps[-1] if args.step is None else args.step
        check_resume_config(cfg, ckpts.meta(step), where)  # written by the run's config?
    finally:
        ckpts.close()
    return step


def _checkpoint_setup(args):
    """The trained model of ``--checkpoint`` and one batch of its task; ``(probed, recurrence,
    inputs, mask, loss_fn)`` where ``probed`` describes what is probed (for probe.json)."""
    from flax import nnx

    from lstm_jax.errors import UserError
    from lstm_jax.probes import head_loss
    from lstm_jax.steps import seed_slice
    from lstm_jax.tasks.registry import make_task
    from lstm_jax.train import load_config, load_params

    cfg = load_config(args.checkpoint)
    _check_flags_against(args, cfg)
    step = _saved_step(args, cfg)
    seq_len = args.seq_len if "seq_len" in args.given else cfg.seq_len
    task = make_task(cfg.task, seq_len, **cfg.task_options())  # checks --seq-len for the task
    graphdef, params = load_params(args.checkpoint, cfg, step=step)
    try:
        model = nnx.merge(graphdef, seed_slice(params, args.seed_index))
    except Exception as e:  # noqa: BLE001 — report what the run directory holds
        raise UserError(f"--checkpoint={args.checkpoint!r}: cannot rebuild the model ({e})") from None
    batch = probe_batch(task, args)
    probed = {"checkpoint": str(args.checkpoint), "step": step, "seed_index": args.seed_index,
              "run_seed": cfg.seed + args.seed_index, "arch": cfg.arch, "task": cfg.task,
              "hidden": cfg.hidden, "layers": cfg.layers, "seq_len": seq_len,
              "trained_seq_len": cfg.seq_len, "batch": args.batch, "layer": args.layer,
              "method": args.method, "samples": args.samples, "spectral": args.spectral,
              "seed": args.seed, "checkpoint_config": cfg.to_dict()}
    return (probed, model.recurrence, model.inputs(batch.x), batch.mask,
            head_loss(model, batch, task.loss))


def run(args) -> int:
    from pathlib import Path

    import jax

    from lstm_jax.cli.common import check_cell_flags, parse_archs
    from lstm_jax.errors import UserError, check_choice
    from lstm_jax.io import ensure_out_dir, write_json
    from lstm_jax.plots.probes import plot_decay, plot_loss_grad
    from lstm_jax.probes import METHODS, probe

    check_choice("--method", args.method, METHODS)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        ensure_out_dir(args.out)  # the error for a file, before any work
    setups = {}
    title = None
    if args.checkpoint is not None:
        config, model, x, mask, loss_fn = _checkpoint_setup(args)
        setups[config["arch"]] = (model, x, mask, loss_fn)
        from lstm_jax.plots.common import ARCH_LABELS

        title = (f"Trained {ARCH_LABELS.get(config['arch'], config['arch'])}: {config['task']}, "
                 f"T={config['trained_seq_len']}, step {config['step']}, seed {config['run_seed']}")
        if config["seq_len"] != config["trained_seq_len"]:
            title += f"; probed at T={config['seq_len']}"
    else:
        if args.layer >= args.layers:
            raise UserError(f"--layer={args.layer} must be in 0..{args.layers - 1} "
                            f"(--layers={args.layers})")
        config = {k: v for k, v in vars(args).items()
                  if k not in (*GLOBAL_ARGS, "checkpoint", "step", "seed_index")}
        archs = parse_archs(args.arch)
        check_cell_flags(args, archs)
        for arch in archs:
            setups[arch] = (_task_setup if args.task else _synthetic_setup)(args, arch)
    if args.method == "exact":
        config["samples"] = None  # Hutchinson's K; the exact sweep takes none
    if args.task or args.checkpoint:
        config["probe_split"] = PROBE_SPLIT
    out = ensure_out_dir(args.out)
    results = {"config": config, "k": None, "archs": {}}
    for arch, (model, x, mask, loss_fn) in setups.items():
        rec = probe(model, x, mask, layer=args.layer, method=args.method, samples=args.samples,
                    loss_fn=loss_fn, spectral=args.spectral, key=jax.random.key(args.seed))
        results["archs"][arch] = rec
        results["k"] = rec["k"]
        last = rec["log10_hidden"][-1]
        line = f"{arch:>4}: log10 ‖∂h_T/∂h_(T−k)‖ at k={rec['k'][-1]}: {last:.1f}"
        if "log10_cell" in rec:
            line += f"; ‖∂C_T/∂C_(T−k)‖: {rec['log10_cell'][-1]:.1f}"
        if "log10_cec" in rec:
            line += f"; ‖∏f‖: {rec['log10_cec'][-1]:.1f}"
        print(line)
    write_json(out / "probe.json", results)
    plot_decay(results, out / "probe.png", title=title)
    plot_loss_grad(results, out / "loss_grad.png",
                   title=None if title is None else f"{title}: loss gradient at each step")
    print(f"wrote {out / 'probe.json'}, {out / 'probe.png'} and {out / 'loss_grad.png'}")
    return 0
