"""Gradient retention and occlusion on the trained IMDB models of a comparison (issue 21).

For every arm of ``lstm-jax compare experiments/protocols/imdb.toml --out OUT`` (at the learning
rate it selected on validation, at its newest checkpoint at or before the budget: the one its
test score was taken at), every seed, and the same
``--reviews`` VALIDATION reviews long enough to fill a ``--window``-token window (the last W
tokens of each review, so every row is valid at every step):

* the loss is the model's own, summed over the N reviews (so each review's gradient is its own)::

      L = Σ_b CE(logits_b, y_b),    logits = head(read(recurrence(e)))    e = embed(tokens)

* the gradient reaching each input embedding, per review b and step t, at distance
  ``d = W − 1 − t`` from the review's end, relative to the review's own scale near the end::

      r_b(d) = ‖∂L/∂e_{b, W−1−d}‖₂ / median_{d' ∈ [1, 10]} ‖∂L/∂e_{b, W−1−d'}‖₂

  reported as ``R(d) = mean_b log10 r_b(d)``, the log10 of the geometric mean over reviews, for
  ``d = 0 … --max-distance`` (200). A gradient that is exactly zero (float32 underflow in the
  backward pass) has no logarithm: it is left out of the mean and counted per d (``zeros``).
  The norms are computed scaled (``m·‖g/m‖``, ``m = max|g|``), so squaring never underflows.
* for cells with a cell state (the LSTM; ``carry_names`` holds ``"c"``), the same for
  ``∂L/∂C_t`` of the first layer (forward direction), taken with the recurrence's zero
  perturbation: ``C_t ← C_t + ε_t`` after step t with ``ε = 0``, so ``∂L/∂ε_t = ∂L/∂C_t``
  through every path from step t on (``h_t`` already computed; :mod:`lstm_jax.recurrence`).
  At ``d = 0`` it is exactly zero by construction (the last step's C reaches neither the
  readout nor a later step), so the cell curve starts at ``d = 1`` and ``zeros`` counts every
  review there;
* occlusion: accuracy and mean loss on the same reviews as they are, and with the FIRST
  ``--occlude`` (100) tokens of the window replaced by OOV (``d ≥ W − K``: the far context),
  and the change ``Δaccuracy = accuracy(occluded) − accuracy`` per seed.

Across seeds: mean and sd (``ddof = 1``; sd is NaN with one seed) of ``R(d)`` at
``--summary-distances`` (10, 50, 100, 150, 200) and of ``Δaccuracy``, with the per-seed values.

Why the median over ``d ∈ [1, 10]`` and not ``d = 0``: the lag-0 gradient is the last word's,
which reaches the head through a single cell update; an architecture whose last step dominates
(a ``last`` readout of a tanh RNN) then gets a large denominator and every other distance looks
lost, which measures the last step, not retention. The median of the ten steps before it is a
robust scale of the recent context (one strong word near the end does not move it). Why
``d ≤ 200`` in a 400-token window: the recurrence starts from a zero state at the window's first
token (``d = W − 1``); reporting ``d ≤ 200`` keeps at least 199 tokens of context before every
reported step, so the gradients there are those of a running model, not of its start (and the
IMDB protocol trains on the last 200 tokens). The script refuses a window shorter than
``--max-distance + 10`` (the farthest reported step keeps at least ten tokens before it).

The per-step logits come from the embeddings (:func:`logits_from_embeddings`: recurrence, the
optional backward recurrence, readout and head, no dropout); the script checks on every chunk
that they equal ``model(tokens, mask)`` (to 1e-3: the model trains through the fused backward
pass, the perturbed call runs the plain scan).

    .venv/bin/python experiments/imdb_retention.py --compare runs/compare_imdb
    .venv/bin/python experiments/imdb_retention.py --compare runs/compare_imdb --arms lstm/last,rnn/last
    .venv/bin/python experiments/imdb_retention.py --out runs/compare_imdb/retention --plot-only

Outputs (in ``--out``, default ``COMPARE/retention``):

* ``retention.json``: the arguments, the window, the validation rows used, and per arm: arch,
  readout, run_dir, lr, checkpoint step, seeds; per seed the curve R(d), the zero counts,
  ``log10_scale`` (mean over reviews of log10 of the normalising median: the absolute scale)
  and the occlusion scores; the summary over seeds;
* ``retention.csv``: one row per arm × d, mean and sd over seeds of R(d) for the embeddings
  and (LSTM) the cell, and the zero counts summed over seeds;
* ``occlusion.csv``: one row per arm × seed;
* ``retention.png``: R(d) of every arm, one panel per readout (``--plot-only`` redraws it from
  ``retention.json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from retention_measure import (
    check_logits,
    has_cell_state,
    make_seed_program,
    run_in_chunks,
    seed_record,
    summarise,
)
from retention_outputs import plot, report, write_tables

from lstm_jax.errors import UserError

SUMMARY_DISTANCES = (10, 50, 100, 150, 200)


# -- arguments --------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compare", help="the comparison directory (lstm-jax compare --out)")
    p.add_argument("--arms", default=None, help="comma-separated arm names (default: all)")
    p.add_argument("--trained-length", type=int, default=None,
                   help="the IMDB training length T of the rows to use, when there are several")
    p.add_argument("--out", default=None, help="output directory (default: COMPARE/retention)")
    p.add_argument("--window", type=int, default=400, help="tokens per review (its last ones)")
    p.add_argument("--max-distance", type=int, default=200, help="largest distance d reported")
    p.add_argument("--norm-range", default="1,10", help="distances d whose median normalises")
    p.add_argument("--reviews", type=int, default=256, help="validation reviews filling the window")
    p.add_argument("--seed", type=int, default=0, help="numpy seed choosing the reviews")
    p.add_argument("--occlude", type=int, default=100, help="first tokens of the window → OOV")
    p.add_argument("--chunk", type=int, default=64, help="reviews per compiled call")
    p.add_argument("--summary-distances", default=None,
                   help="distances summarised across seeds (default 10,50,100,150,200 up to "
                        "--max-distance)")
    p.add_argument("--plot-only", action="store_true", help="redraw retention.png from the json")
    return p.parse_args(argv)


def _int_list(flag: str, text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag}={text!r} must be comma-separated integers") from None


def check_args(args: argparse.Namespace) -> None:
    """Check the flags (each problem a :class:`UserError` naming its flag); fills in
    ``args.norm_range`` ``(lo, hi)``, ``args.summary_distances`` and ``args.out``."""
    if args.out is None:
        if not args.compare:
            raise UserError("--out is needed when --compare is not given")
        args.out = str(Path(args.compare) / "retention")
    if args.plot_only:
        return
    if not args.compare:
        raise UserError("--compare is required (the directory of lstm-jax compare --out)")
    for flag, value in (("--window", args.window), ("--max-distance", args.max_distance),
                        ("--reviews", args.reviews), ("--chunk", args.chunk),
                        ("--occlude", args.occlude)):
        if value < 1:
            raise UserError(f"{flag}={value} must be a positive integer")
    if args.seed < 0:
        raise UserError(f"--seed={args.seed} must be ≥ 0")
    if args.window < args.max_distance + 10:
        raise UserError(f"--window={args.window} must be ≥ --max-distance + 10 = "
                        f"{args.max_distance + 10} (keep the zero initial state away from every "
                        "reported distance)")
    if args.occlude >= args.window:
        raise UserError(f"--occlude={args.occlude} must be smaller than --window={args.window}")
    norm = _int_list("--norm-range", args.norm_range)
    if len(norm) != 2 or not 0 <= norm[0] <= norm[1] <= args.max_distance:
        raise UserError(f"--norm-range={args.norm_range!r} must be two distances lo,hi with "
                        f"0 ≤ lo ≤ hi ≤ --max-distance={args.max_distance}")
    args.norm_range = tuple(norm)
    if args.summary_distances is None:
        args.summary_distances = [d for d in SUMMARY_DISTANCES if d <= args.max_distance]
    else:
        args.summary_distances = _int_list("--summary-distances", args.summary_distances)
        bad = [d for d in args.summary_distances if not 0 <= d <= args.max_distance]
        if bad or not args.summary_distances:
            raise UserError(f"--summary-distances={','.join(map(str, args.summary_distances))} "
                            f"must be distances in [0, --max-distance={args.max_distance}]")


# -- which models ------------------------------------------------------------------------------


def selected_arms(compare: Path, arms: str | None, trained_length: int | None,
                  log=print) -> tuple[list[dict], list[dict]]:
    """The IMDB rows of ``compare/results.json`` to measure, and the ones skipped.

    Returns:
      ``(chosen, skipped)``: chosen = ``[{"arm", "T", "lr", "run_dir", "budget"}]`` (run_dir
      rebuilt from the row, :func:`lstm_jax.compare.run.run_dir`), skipped =
      ``[{"arm", "reason"}]`` for rows without a selected learning rate.
    """
    from lstm_jax.compare.protocol import Point
    from lstm_jax.compare.run import run_dir
    from lstm_jax.io import read_json

    path = compare / "results.json"
    if not path.is_file():
        raise UserError(f"--compare={str(compare)!r} has no results.json; run lstm-jax compare "
                        f"experiments/protocols/imdb.toml --out {compare} first")
    rows = [r for r in read_json(path).get("rows", []) if r.get("task") == "imdb"]
    if trained_length is not None:
        rows = [r for r in rows if r.get("T") == trained_length]
    lengths = sorted({r.get("T") for r in rows})
    if len(lengths) > 1:
        raise UserError(f"--compare={str(compare)!r} holds IMDB rows at lengths {lengths}; "
                        "choose one with --trained-length")
    if not rows:
        raise UserError(f"--compare={str(compare)!r} has no IMDB rows"
                        + (f" at --trained-length={trained_length}" if trained_length else ""))
    if arms is not None:
        wanted = [a.strip() for a in arms.split(",") if a.strip()]
        known = [r["arm"] for r in rows]
        unknown = [a for a in wanted if a not in known]
        if unknown or not wanted:
            raise UserError(f"--arms={arms!r}: unknown arm(s) {', '.join(unknown) or '(none)'}; "
                            f"known: {', '.join(known)}")
        rows = [r for r in rows if r["arm"] in wanted]
    chosen, skipped = [], []
    for r in rows:
        if r.get("status") != "done" or r.get("lr") is None:
            reason = f"status {r.get('status')!r}, no selected learning rate"
            log(f"skip {r['arm']}: {reason}")
            skipped.append({"arm": r["arm"], "reason": reason})
            continue
        where = run_dir(compare, Point("imdb", r["T"], r["arm"], r["lr"]))
        if not (where / "config.json").is_file():
            raise UserError(f"--compare={str(compare)!r}: the selected run of {r['arm']} "
                            f"({where}) has no config.json")
        chosen.append({"arm": r["arm"], "T": r["T"], "lr": r["lr"], "run_dir": where,
                       "budget": r.get("budget_steps")})
    if not chosen:
        raise UserError(f"--compare={str(compare)!r}: no arm has a selected learning rate yet")
    return chosen, skipped


def checkpoint_step(where: Path, budget: int | None) -> int:
    """The newest checkpoint at or before the budget (the one test was scored at)."""
    from lstm_jax.evaluate import saved_steps

    steps = saved_steps(where)
    usable = [s for s in steps if budget is None or s <= budget]
    if not usable:
        raise UserError(f"{where} has no checkpoint at or before the budget ({budget} steps); "
                        f"saved: {steps}")
    return usable[-1]


# -- data --------------------------------------------------------------------------------------


def validation_split(cfg, window: int) -> dict[str, np.ndarray]:
    """The run's validation split at ``window`` tokens (its vocabulary and hold-out)."""
    from lstm_jax.tasks import make_task

    return make_task("imdb", window, **cfg.task_options()).splits["validation"]


def choose_reviews(split: dict[str, np.ndarray], window: int, n: int, seed: int) -> np.ndarray:
    """``(n,)`` sorted rows of ``split`` whose reviews fill the window (length ≥ ``window``),
    drawn without replacement with ``numpy.random.default_rng(seed)``."""
    full = np.flatnonzero(split["lengths"] >= window)
    if len(full) < n:
        raise UserError(f"--reviews={n}: only {len(full)} validation reviews fill "
                        f"--window={window} tokens")
    return np.sort(np.random.default_rng(seed).choice(full, size=n, replace=False))


def occlude(tokens: np.ndarray, k: int) -> np.ndarray:
    """A copy of ``tokens`` ``(N, W)`` with the first ``k`` tokens of every row set to OOV."""
    from lstm_jax.data.text import OOV

    out = np.array(tokens, copy=True)
    out[:, :k] = OOV
    return out


# -- one arm -----------------------------------------------------------------------------------


def measure_arm(entry: dict, data: dict, args, progress) -> dict:
    """Every seed of one arm on the chosen reviews (``data``: tokens, occluded, labels)."""
    import jax.numpy as jnp
    from flax import nnx

    from lstm_jax.steps import seed_slice
    from lstm_jax.train import load_config, load_params

    where = entry["run_dir"]
    cfg = load_config(where)
    step = checkpoint_step(where, entry["budget"])
    graphdef, params = load_params(where, cfg, step=step)
    program = make_seed_program(graphdef)
    t0 = time.perf_counter()
    model = nnx.merge(graphdef, seed_slice(params, 0))
    tokens, occluded, labels = (jnp.asarray(data[k]) for k in ("tokens", "occluded", "labels"))
    per_seed = []
    for i in range(cfg.seeds):
        progress.set_postfix_str(f"{entry['arm']} seed {i + 1}/{cfg.seeds}")
        got = run_in_chunks(program, seed_slice(params, i), tokens, occluded, labels, args.chunk)
        check_logits(got, f"{entry['arm']} seed {i}")
        per_seed.append({"seed": cfg.seed + i, **seed_record(got, data["labels"], args)})
        progress.update(1)
    return {"arch": cfg.arch, "readout": model.readout, "bidirectional": cfg.bidirectional,
            "layers": cfg.layers, "hidden": cfg.hidden, "embed_dim": cfg.embed_dim,
            "trained_length": cfg.seq_len, "run_dir": str(where), "lr": entry["lr"],
            "step": step, "seeds": cfg.seeds, "cell_gradient": has_cell_state(model),
            "wall_s": round(time.perf_counter() - t0, 2), "per_seed": per_seed,
            "summary": summarise(per_seed, args.summary_distances)}


def review_data(chosen: list[dict], args) -> tuple[dict, dict]:
    """The chosen reviews (the same for every arm): ``data`` arrays and their description."""
    from lstm_jax.train import load_config

    configs = [load_config(c["run_dir"]) for c in chosen]
    options = {repr(sorted(cfg.task_options().items())) for cfg in configs}
    if len(options) > 1:
        raise UserError(f"--compare={args.compare!r}: the arms were trained on different data "
                        "settings (vocabulary, truncation or validation hold-out); measure them "
                        "separately with --arms")
    split = validation_split(configs[0], args.window)
    rows = choose_reviews(split, args.window, args.reviews, args.seed)
    tokens = split["tokens"][rows]
    data = {"tokens": tokens, "occluded": occlude(tokens, args.occlude),
            "labels": split["labels"][rows].astype(np.int32)}
    info = {"split": "validation", "rows": rows, "eligible": int(np.sum(split["lengths"]
                                                                        >= args.window)),
            "positive": int(np.sum(data["labels"] == 1)), "seeds_per_arm":
            {c["arm"]: cfg.seeds for c, cfg in zip(chosen, configs, strict=True)}}
    return data, info


# -- main --------------------------------------------------------------------------------------


def measure(args) -> dict:
    """Every chosen arm and seed; the whole result (what retention.json holds)."""
    from lstm_jax.progress import make_progress
    from lstm_jax.train import load_config

    chosen, skipped = selected_arms(Path(args.compare), args.arms, args.trained_length)
    data, reviews = review_data(chosen, args)
    total = sum(load_config(c["run_dir"]).seeds for c in chosen)
    progress = make_progress(total, 0)
    arms = {}
    try:
        for entry in chosen:
            arms[entry["arm"]] = measure_arm(entry, data, args, progress)
    finally:
        progress.close()
    settings = {**vars(args), "norm_range": list(args.norm_range)}
    return {"args": settings, "window": args.window,
            "distance": list(range(args.max_distance + 1)), "reviews": reviews, "arms": arms,
            "skipped": skipped}


def run(args) -> Path:
    from lstm_jax.io import ensure_out_dir, read_json, write_json

    check_args(args)
    out = ensure_out_dir(args.out, "--out")
    if args.plot_only:
        if not (out / "retention.json").is_file():
            raise UserError(f"--plot-only: --out={args.out!r} has no retention.json; run "
                            "without --plot-only first")
        return plot(out / "retention.png", read_json(out / "retention.json"))
    write_json(out / "retention.json", measure(args))
    result = read_json(out / "retention.json")  # what --plot-only reads (NaN → null)
    write_tables(out, result)
    report(result)
    return plot(out / "retention.png", result)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        path = run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path.parent}/retention.json, retention.csv, occlusion.csv, retention.png"
          if not args.plot_only else f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
