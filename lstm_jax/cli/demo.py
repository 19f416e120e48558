"""``lstm-jax demo``: the main job on a small, real default, in three parts.

1. ``states/``: RNN, LSTM and GRU of one size at initialisation on random inputs of length T:
   hidden-state norms over time (``state_norms.png``, ``summary.json``).
2. ``probe/``: the essay's central picture, ‖∂h_T/∂h_{T−k}‖ for every lag k for each
   architecture and the LSTM's ‖∂C_T/∂C_{T−k}‖ beside its forget-gate product (``lstm-jax probe``).
3. ``train_<arch>/``: a short training run of each architecture on the adding problem
   (``lstm-jax train``), overlaid in ``training.png`` against the trivial baseline.

Every part is the same command a user can run alone; this one only chains them and writes
``summary.json`` pointing at their results.
"""

from __future__ import annotations

from lstm_jax.cli.common import add_model_args, check_cell_flags, parse_archs, positive_int


def register(sub) -> None:
    p = sub.add_parser("demo", help="RNN vs LSTM vs GRU: state norms, gradient decay, short training")
    p.add_argument("--arch", default="rnn,lstm,gru",
                   help="comma-separated registered cells (`lstm-jax archs`)")
    p.add_argument("--seq-len", type=positive_int, default=200, help="sequence length T of parts 1-2")
    p.add_argument("--batch", type=positive_int, default=16,
                   help="random input sequences of parts 1-2 (norms are averaged over them)")
    p.add_argument("--features", type=positive_int, default=16, help="input width D")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the inputs, the initialisation and the training runs")
    p.add_argument("--train-seq-len", type=positive_int, default=50,
                   help="adding-problem length T of the training part")
    p.add_argument("--train-steps", type=int, default=600, help="training steps per architecture (0 skips)")
    p.add_argument("--out", default="runs/demo", help="output directory")
    add_model_args(p, hidden_default=64)
    p.set_defaults(func=run)


def _states(args, archs, out) -> dict:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from lstm_jax.cli.common import cell_config
    from lstm_jax.io import write_json
    from lstm_jax.plots.states import plot_state_norms
    from lstm_jax.recurrence import Recurrence

    key = jax.random.key(args.seed)
    x = jax.random.normal(jax.random.fold_in(key, 1), (args.batch, args.seq_len, args.features))
    summary = {"config": {"archs": archs, "seq_len": args.seq_len, "batch": args.batch,
                          "features": args.features, "hidden": args.hidden, "layers": args.layers,
                          "seed": args.seed, "forget_bias": args.forget_bias,
                          "chrono": args.chrono, "recurrent_scale": args.recurrent_scale},
               "state_norms": {}, "parameters": {}}
    for arch in archs:
        model = Recurrence(args.features, cell_config(args, arch), args.layers,
                           rngs=nnx.Rngs(args.seed))
        h = model(x).outputs
        summary["state_norms"][arch] = [float(v) for v in jnp.linalg.norm(h, axis=-1).mean(0)]
        summary["parameters"][arch] = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
        print(f"{arch:>4}: {summary['parameters'][arch]:,} recurrent parameters; "
              f"mean ‖h_T‖ = {summary['state_norms'][arch][-1]:.3f}")
    write_json(out / "summary.json", summary)
    plot_state_norms(summary, out / "state_norms.png")
    return summary


def _model_flags(args, archs: list[str]) -> list[str]:
    """The model flags to pass on to a subcommand over ``archs``: each cell flag only where one
    of them reads it (the subcommand refuses a flag none reads)."""
    from lstm_jax.cells import cell_accepts

    def reads(field):
        return any(cell_accepts(a, field) for a in archs)

    flags = ["--hidden", str(args.hidden), "--layers", str(args.layers)]
    if reads("forget_bias"):
        flags += ["--forget-bias", str(args.forget_bias)]
    if reads("recurrent_init"):
        flags += ["--recurrent-init", args.recurrent_init,
                  "--recurrent-scale", str(args.recurrent_scale)]
    if args.chrono is not None and reads("chrono_tmax"):
        flags += ["--chrono", str(args.chrono)]
    if args.gru_reset_before and reads("gru_reset_after"):
        flags.append("--gru-reset-before")
    if args.indrnn_init != "uniform" and reads("indrnn_init"):
        flags += ["--indrnn-init", args.indrnn_init]
    if args.input_init != "lecun" and reads("input_init"):
        flags += ["--input-init", args.input_init]
    return flags


def run(args) -> int:
    from lstm_jax.cli import main
    from lstm_jax.io import ensure_out_dir, read_json, write_json
    from lstm_jax.plots.compare import plot_runs

    archs = parse_archs(args.arch)
    check_cell_flags(args, archs)
    out = ensure_out_dir(args.out)
    if args.train_steps < 0:
        from lstm_jax.errors import UserError

        raise UserError(f"--train-steps={args.train_steps} must be ≥ 0 (0 skips training)")

    print("== 1/3 hidden-state norms at initialisation")
    states = _states(args, archs, ensure_out_dir(out / "states"))

    print("\n== 2/3 gradient decay at initialisation (lstm-jax probe)")
    code = main(["probe", "--arch", ",".join(archs), "--seq-len", str(args.seq_len),
                 "--batch", str(args.batch), "--features", str(args.features),
                 "--seed", str(args.seed), "--out", str(out / "probe"), *_model_flags(args, archs)])
    if code:
        return code
    probe = read_json(out / "probe" / "probe.json")

    runs = {}
    if args.train_steps:
        for arch in archs:
            print(f"\n== 3/3 training {arch} on the adding problem, T={args.train_seq_len}")
            run_dir = out / f"train_{arch}"
            code = main(["train", "--task", "adding", "--arch", arch,
                         "--seq-len", str(args.train_seq_len), "--steps", str(args.train_steps),
                         "--lr", "3e-3", "--eval-every", str(max(args.train_steps // 12, 1)),
                         "--seed", str(args.seed), "--out", str(run_dir),
                         *_model_flags(args, [arch])])
            if code:
                return code
            runs[arch] = run_dir
        from lstm_jax.plots.style import init_label, title

        plot_runs(runs, out / "training.png",
                  title=title("Adding problem: held-out MSE", T=args.train_seq_len, H=args.hidden,
                              init=init_label(vars(args) | {"arch": None}) or "default init"))

    summary = {
        "parameters": states["parameters"],
        "probe": {"file": "probe/probe.json", "figure": "probe/probe.png",
                  "config": probe.get("config")},
        "training": {arch: read_json(d / "summary.json")["final"] | {"dir": d.name}
                     for arch, d in runs.items()},
        "figures": ["states/state_norms.png", "probe/probe.png"]
                   + (["training.png"] if runs else []),
    }
    write_json(out / "summary.json", summary)
    print(f"\nwrote {out}/: " + ", ".join(summary["figures"]) + ", summary.json")
    return 0
