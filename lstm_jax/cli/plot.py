"""``lstm-jax plot``: figures of ``lstm-jax train`` runs, from their files (nothing is re-run).

  lstm-jax plot RUN_DIR [RUN_DIR ...] --out curves.png
      overlay the runs' held-out curves (--metric, from each metrics.jsonl): the mean over seeds
      with a ± 1 sd band, the task's baseline dashed, each run labelled by what differs in its
      config.json (else by its directory name).
  lstm-jax plot --probes RUN_DIR --out heatmap.png
      the probes-over-training heatmap of a run trained with --probe-every (probes.jsonl):
      log10 ‖∂h_T/∂h_{T−k}‖ over training step × lag k.
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("plot", help="overlay the training curves of several runs, or draw a "
                                    "run's probes-over-training heatmap",
                       description=__doc__)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="directories written by `lstm-jax train`")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the figure to write (.png, .svg or .pdf)")
    p.add_argument("--metric", default=None,
                   help="what to overlay: a key of metrics.jsonl (eval/loss, eval/accuracy, "
                        "train/loss, ...; default: eval/loss); not with --probes")
    p.add_argument("--labels", default=None,
                   help="comma-separated legend labels, one per RUN_DIR (default: the config "
                        "fields in which the runs differ, else the directory names); not with "
                        "--probes")
    p.add_argument("--title", default=None,
                   help="figure title (default: what the runs share, e.g. the task and T)")
    g = p.add_argument_group("probes over training (--probes)")
    g.add_argument("--probes", action="store_true",
                   help="draw the heatmap of RUN_DIR/probes.jsonl instead (one RUN_DIR)")
    g.add_argument("--probe", default=None, choices=("hidden", "cell", "cec"),
                   help="hidden: ‖∂h_T/∂h_{T−k}‖; cell: ‖∂C_T/∂C_{T−k}‖ and cec: ∏f (LSTM); "
                        "only with --probes (default: hidden)")
    g.add_argument("--seed", type=int, default=None,
                   help="which of the run's seeds (default: its first); only with --probes")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from lstm_jax.errors import UserError
    from lstm_jax.plots.runs import plot_probe_heatmap, plot_run_curves

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UserError(f"--out={args.out!r} needs a figure file name ending in .png, .svg or .pdf")
    if out.is_dir():
        raise UserError(f"--out={args.out!r} is a directory; give a file name such as curves.png")
    for d in args.run_dirs:
        if not Path(d).is_dir():
            raise UserError(f"RUN_DIR={d!r} is not a directory")
    check_mode_flags(args)
    if args.probes:
        if len(args.run_dirs) != 1:
            raise UserError(f"--probes draws one run; got {len(args.run_dirs)} RUN_DIRs")
        plot_probe_heatmap(args.run_dirs[0], out, probe=args.probe or "hidden", seed=args.seed,
                           title=args.title)
    else:
        labels = None if args.labels is None else [s.strip() for s in args.labels.split(",")]
        plot_run_curves(args.run_dirs, out, metric=args.metric or "eval/loss", labels=labels,
                        title=args.title)
    print(f"wrote {out}")
    return 0


def check_mode_flags(args) -> None:
    """UserError for a flag the chosen figure would ignore: --metric/--labels draw the curves,
    --probe/--seed the heatmap of --probes."""
    from lstm_jax.errors import UserError

    curve = [f for f, v in (("--metric", args.metric), ("--labels", args.labels)) if v is not None]
    heat = [f for f, v in (("--probe", args.probe), ("--seed", args.seed)) if v is not None]
    if args.probes and curve:
        raise UserError(f"{_flags(curve)} the curves, which --probes does not draw "
                        "(it draws the heatmap): drop one or the other")
    if not args.probes and heat:
        raise UserError(f"{_flags(heat)} the heatmap, which is drawn only with "
                        f"--probes: add --probes, or drop {'it' if len(heat) == 1 else 'them'}")


def _flags(names: list[str]) -> str:
    """"--metric sets" or "--metric and --labels set"."""
    return " and ".join(names) + (" sets" if len(names) == 1 else " set")
