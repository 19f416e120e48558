"""``lstm-jax probe``: gradient-flow decay curves (every lag) for one or more architectures.

Writes ``DIR/probe.json`` (the config, ``k``, and per architecture the records of
:func:`lstm_jax.probes.probe`: ``log10_hidden``, ``log10_cell``, ``log10_cec``,
``log10_loss_grad`` with ``*_std`` spreads, gate statistics, ``method``) and ``DIR/probe.png``
(norms against lag on a log axis, architectures overlaid; the LSTM's cell curve beside its
forget-gate product) and ``DIR/loss_grad.png``.

Without ``--task`` the inputs are N(0, 1) of width ``--features`` and the loss is
:func:`lstm_jax.probes.last_step_readout_loss` (a fixed random linear readout of the last h,
squared error). With ``--task NAME`` the inputs, mask and loss are one batch of that task, through
the task's model (input layer, recurrence, head). ``--checkpoint DIR`` probes a trained run.
"""

from __future__ import annotations

from lstm_jax.cli.common import GLOBAL_ARGS, add_model_args, positive_int


def register(sub) -> None:
    p = sub.add_parser("probe", help="∂h_T/∂h_{T−k}, ∂C_T/∂C_{T−k}, ∂L/∂h_t for every lag")
    p.add_argument("--arch", default="rnn,lstm,gru", help="comma-separated architectures")
    p.add_argument("--seq-len", type=positive_int, default=200, help="sequence length T")
    p.add_argument("--batch", type=positive_int, default=16, help="rows averaged over")
    p.add_argument("--features", type=positive_int, default=16, help="input width D (no task)")
    p.add_argument("--layer", type=int, default=0, help="which layer of the stack to probe")
    p.add_argument("--method", default="exact", help="exact or hutchinson")
    p.add_argument("--samples", type=positive_int, default=8, help="hutchinson probe vectors K")
    p.add_argument("--spectral", action="store_true",
                   help="also σ_max(∂h_T/∂h_{T−k}) by power iteration at ~12 lags")
    p.add_argument("--task", default=None, help="probe on one batch of this task")
    p.add_argument("--checkpoint", default=None, metavar="RUN_DIR",
                   help="probe the trained model of a `lstm-jax train` run (first seed)")
    p.add_argument("--seed", type=int, default=0)
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


def probe_batch(task, args):
    """One held-out batch of the task (a data-backed task draws it from its test split)."""
    import jax

    return task.eval_set(task.device_data(), jax.random.key(args.seed + 1), args.batch)


def _checkpoint_setup(args):
    import jax
    from flax import nnx

    from lstm_jax.errors import UserError
    from lstm_jax.probes import head_loss
    from lstm_jax.tasks.registry import make_task
    from lstm_jax.train import load_config, load_params

    cfg = load_config(args.checkpoint)
    graphdef, params = load_params(args.checkpoint, cfg)
    first = jax.tree.map(lambda a: a[0], params)
    try:
        model = nnx.merge(graphdef, first)
    except Exception as e:  # noqa: BLE001 — report what the run directory holds
        raise UserError(f"--checkpoint={args.checkpoint!r}: cannot rebuild the model ({e})") from None
    task = make_task(cfg.task, cfg.seq_len, **cfg.task_options())
    batch = probe_batch(task, args)
    return (cfg, model.recurrence, model.inputs(batch.x), batch.mask,
            head_loss(model, batch, task.loss))


def run(args) -> int:
    import jax

    from lstm_jax.cli.common import parse_archs
    from lstm_jax.errors import UserError, check_choice
    from lstm_jax.io import ensure_out_dir, write_json
    from lstm_jax.plots.probes import plot_decay, plot_loss_grad
    from lstm_jax.probes import METHODS, probe

    check_choice("--method", args.method, METHODS)
    if args.layer < 0 or args.layer >= args.layers and args.checkpoint is None:
        raise UserError(f"--layer={args.layer} must be in 0..{args.layers - 1} (--layers={args.layers})")
    out = ensure_out_dir(args.out)
    config = {k: v for k, v in vars(args).items() if k not in GLOBAL_ARGS}
    setups = {}
    if args.checkpoint is not None:
        cfg, model, x, mask, loss_fn = _checkpoint_setup(args)
        arch = model.config.arch
        config["checkpoint_config"] = cfg.to_dict() if hasattr(cfg, "to_dict") else str(cfg)
        setups[arch] = (model, x, mask, loss_fn)
    else:
        for arch in parse_archs(args.arch):
            setups[arch] = (_task_setup if args.task else _synthetic_setup)(args, arch)
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
    plot_decay(results, out / "probe.png")
    plot_loss_grad(results, out / "loss_grad.png")
    print(f"wrote {out / 'probe.json'}, {out / 'probe.png'} and {out / 'loss_grad.png'}")
    return 0
