"""``lstm-jax demo``: the main job on a small, real default.

RNN, LSTM and GRU of one size at initialisation on one batch of random inputs of length T:
hidden-state norms over time (``state_norms.png``) and a JSON summary, in ``--out``.
"""

from __future__ import annotations

from lstm_jax.cli.common import add_model_args, parse_archs, positive_int


def register(sub) -> None:
    p = sub.add_parser("demo", help="RNN vs LSTM vs GRU: state norms (and more) to runs/demo/")
    p.add_argument("--arch", default="rnn,lstm,gru", help="comma-separated architectures")
    p.add_argument("--seq-len", type=positive_int, default=200, help="sequence length T")
    p.add_argument("--batch", type=positive_int, default=32)
    p.add_argument("--features", type=positive_int, default=16, help="input width D")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/demo", help="output directory")
    add_model_args(p, hidden_default=64)
    p.set_defaults(func=run)


def run(args) -> int:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from lstm_jax.cli.common import cell_config
    from lstm_jax.io import ensure_out_dir, write_json
    from lstm_jax.plots.states import plot_state_norms
    from lstm_jax.recurrence import Recurrence

    archs = parse_archs(args.arch)
    out = ensure_out_dir(args.out)
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
        summary["state_norms"][arch] = jnp.linalg.norm(h, axis=-1).mean(0)
        summary["parameters"][arch] = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
        print(f"{arch:>4}: {summary['parameters'][arch]:,} parameters; "
              f"mean ‖h_T‖ = {float(summary['state_norms'][arch][-1]):.3f}")
    write_json(out / "summary.json", summary)
    plot_state_norms(summary | {"state_norms": {a: list(map(float, v)) for a, v in
                                                summary["state_norms"].items()}},
                     out / "state_norms.png")
    print(f"wrote {out / 'summary.json'} and {out / 'state_norms.png'}")
    return 0
