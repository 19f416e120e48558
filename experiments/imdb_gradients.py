"""Gradient flow in the IMDB models trained by ``experiments/imdb_compare.py``.

For each trained model (arch × readout) on ``--batch`` test reviews that fill the whole window
(``length == max_len``, so every row has every distance), with :mod:`lstm_jax.probes`:

* ``‖∂L/∂h_t‖`` of the model's *own* loss (cross-entropy of its head on its readout — last valid
  state or masked mean — against the true labels), per distance ``d = T − t`` from the end of the
  review, as a ratio to ``d = 0`` (geometric mean over reviews);
* ``‖∂h_T/∂h_{T−k}‖_F`` per lag k (and for the LSTM ``‖∂C_T/∂C_{T−k}‖_F`` and the forget-gate
  product ``‖diag ∏ f‖_F``), as a ratio to ``k = 0`` (``‖I‖_F = √H``), Hutchinson estimates.

Anchor (the essay): a trained tanh RNN keeps about 1/18,000 of the gradient 200 words back, an
LSTM about 1/7. Distances here are in *tokens* (words and punctuation) of the review's last
``max_len`` tokens, so the farthest distance is ``max_len − 1``.

Writes ``OUT/gradients.json`` and ``OUT/gradients.png``.

    .venv/bin/python experiments/imdb_gradients.py --runs runs/imdb_compare
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

RUNS = [(a, r) for a in ("rnn", "lstm", "gru") for r in ("last", "mean")]
ANCHORS = {"rnn": 1 / 18_000, "lstm": 1 / 7}


def model_loss(model, mask, y, readout: str):
    """``loss_fn(outputs (B, T, H)) -> scalar``: the trained head on the model's readout."""
    import jax.numpy as jnp
    import optax

    W, b = model.head.kernel[...], model.head.bias[...]
    last = jnp.sum(mask, axis=1) - 1
    m = mask.astype(jnp.float32)[..., None]

    def loss_fn(outputs):
        if readout == "last":
            feat = outputs[jnp.arange(outputs.shape[0]), last]
        else:
            feat = jnp.sum(outputs * m, axis=1) / jnp.sum(m, axis=1)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(feat @ W + b, y))

    return loss_fn


def by_distance(log10: np.ndarray, anchor: np.ndarray, T: int) -> np.ndarray:
    """``(B, T)`` per-step values → ``(B, T)`` per distance ``d = anchor − t`` (NaN beyond)."""
    out = np.full_like(log10, np.nan)
    for i, a in enumerate(anchor):
        out[i, : a + 1] = log10[i, a::-1]
    return out


def probe_run(run_dir: Path, batch: int, samples: int, seed: int) -> dict:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from lstm_jax.probes import jacobian_norms, loss_grad
    from lstm_jax.steps import seed_slice
    from lstm_jax.tasks import make_task
    from lstm_jax.train import load_config, load_params

    cfg = load_config(run_dir)
    graphdef, params = load_params(run_dir, cfg)
    model = nnx.merge(graphdef, seed_slice(params, 0))
    task = make_task("imdb", cfg.seq_len, **cfg.task_options())
    test = task.arrays["test"]
    T = cfg.seq_len
    full = np.flatnonzero(test["lengths"] == T)
    rows = np.random.default_rng(seed).choice(full, size=min(batch, len(full)), replace=False)
    tokens = jnp.asarray(test["tokens"][rows])
    y = jnp.asarray(test["labels"][rows])
    mask = jnp.arange(T)[None, :] < jnp.asarray(test["lengths"][rows])[:, None]
    x = model.inputs(tokens)
    readout = model.readout
    loss_fn = model_loss(model, mask, y, readout)
    # the probe's loss is the training loss: check it against the model's own forward pass
    import optax

    logits = model(tokens, mask)
    want = float(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)))
    got = float(loss_fn(model.run(tokens, mask)[1].outputs))
    assert abs(want - got) <= 1e-4 * max(1.0, abs(want)), (want, got)
    acc = float(jnp.mean(jnp.argmax(logits, -1) == y))

    t0 = time.perf_counter()
    lg = loss_grad(model.recurrence, x, mask, loss_fn)
    anchor = np.asarray(mask).sum(1) - 1
    lg_d = by_distance(lg["log10"], anchor, T)
    lg_rel = lg_d - lg_d[:, :1]  # relative to d = 0, per review
    jac = jacobian_norms(model.recurrence, x, mask, method="hutchinson", samples=samples,
                         key=jax.random.key(seed))
    wall = time.perf_counter() - t0
    H = cfg.hidden
    rec = {"arch": cfg.arch, "readout": readout, "max_len": T, "truncate": cfg.truncate,
           "reviews": int(len(rows)), "probe_batch_loss": want, "probe_batch_accuracy": acc,
           "hidden": H, "method": f"hutchinson, {samples} samples", "probe_wall_s": round(wall, 1),
           "distance": list(range(T)),
           "log10_loss_grad_rel": np.nanmean(lg_rel, 0).tolist(),
           "log10_loss_grad_rel_std": np.nanstd(lg_rel, 0).tolist(),
           "log10_loss_grad_abs_d0": float(np.nanmean(lg_d[:, 0])),
           "k": jac["k"].tolist()}
    for name in ("hidden", "cell", "cec"):
        if name in jac:
            v = jac[name]["log10"] - 0.5 * math.log10(H)  # ratio to ‖I‖_F = √H
            rec[f"log10_{name}_rel"] = np.nanmean(v, 0).tolist()
            rec[f"log10_{name}_rel_std"] = np.nanstd(v, 0).tolist()
    rec["summary"] = summarise(rec)
    return rec


SUMMARY_DISTANCES = (10, 50, 100, 150)


def summarise(rec: dict) -> dict:
    """Fractions kept (10**log10 ratios) at a few distances, the farthest one and the minimum."""
    far = rec["max_len"] - 1
    out = {"distances": [d for d in SUMMARY_DISTANCES if d < far] + [far]}
    for name in ("loss_grad", "hidden", "cell", "cec"):
        v = rec.get(f"log10_{name}_rel")
        if v is None:
            continue
        out[f"{name}_kept"] = [10 ** v[d] for d in out["distances"]]
        out[f"{name}_kept_min"] = 10 ** float(np.nanmin(v))
        out[f"{name}_kept_min_at"] = int(np.nanargmin(v))
    return out


def _round(tree, digits: int = 5):
    """Floats to ``digits`` significant digits (keeps the JSON small); NaN stays NaN."""
    if isinstance(tree, dict):
        return {k: _round(v, digits) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_round(v, digits) for v in tree]
    if isinstance(tree, float) and math.isfinite(tree):
        return float(f"{tree:.{digits}g}")
    return tree


def _frac(v: float) -> str:
    return f"{v:.3g}" + (f" (1/{1 / v:,.3g})" if 0 < v < 1 else "")


def plot(path: Path, records: list[dict]) -> Path:
    """Loss gradient and Jacobians of the trained IMDB models relative to distance 0, on log
    axes; line style = quantity (hidden solid, cell dashed), readout = line width (last thick,
    mean thin and lighter)."""
    import numpy as np

    from lstm_jax.plots.common import save
    from lstm_jax.plots.style import (
        ARCH_COLORS,
        ARCH_LABELS,
        GEO_MEAN,
        legend_below,
        line_style,
        new_figure,
        title,
    )

    def pow10(v):
        return 10.0 ** np.clip(np.asarray(v, dtype=float), -300, 300)

    width = {"last": 1.8, "mean": 1.0}
    alpha = {"last": 1.0, "mean": 0.55}
    fig, (a1, a2) = new_figure(12, 5.0, ncols=2)
    for r in records:
        c, lab = ARCH_COLORS[r["arch"]], f"{ARCH_LABELS[r['arch']]}, readout {r['readout']}"
        kw = {"color": c, "lw": width[r["readout"]], "alpha": alpha[r["readout"]]}
        a1.semilogy(r["distance"], pow10(r["log10_loss_grad_rel"]), line_style("loss_grad"),
                    label=lab, **kw)
        a2.semilogy(r["k"], pow10(r["log10_hidden_rel"]), line_style("hidden"),
                    label=f"{lab}: ‖∂h(T)/∂h(T−k)‖", **kw)
        if "log10_cell_rel" in r and r["readout"] == "last":
            a2.semilogy(r["k"], pow10(r["log10_cell_rel"]), line_style("cell"),
                        label=f"{lab}: ‖∂C(T)/∂C(T−k)‖", **kw)
    for arch, v in ANCHORS.items():
        a1.plot([200], [v], "o", mfc="none", color=ARCH_COLORS[arch],
                label=f"essay anchor {ARCH_LABELS[arch]}: 1/{round(1 / v):,} at 200 words")
    T = records[0]["max_len"]
    H = records[0].get("hidden")
    a1.set_xlabel(f"distance d from the end of the review (tokens; last {T} kept)")
    a1.set_ylabel(f"‖∂L/∂h(T−d)‖ / ‖∂L/∂h(T)‖ ({GEO_MEAN})")
    a2.set_xlabel("lag k (tokens)")
    a2.set_ylabel(f"Frobenius norm relative to k = 0 ({GEO_MEAN})")
    a1.set_title(title("Loss gradient reaching back, trained models", T=T, H=H))
    a2.set_title(title("Jacobian of the recurrence (Hutchinson)", T=T, H=H))
    legend_below(a1, ncol=2)
    legend_below(a2, ncol=2)
    return save(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default="runs/imdb_compare", help="imdb_compare.py's --out")
    p.add_argument("--out", default=None, help="default: --runs")
    p.add_argument("--batch", type=int, default=64, help="test reviews probed")
    p.add_argument("--samples", type=int, default=16, help="Hutchinson probe vectors")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot-only", action="store_true")
    p.add_argument("--force", action="store_true", help="re-probe runs probed before")
    args = p.parse_args(argv)
    out = Path(args.out or args.runs)
    from lstm_jax.io import write_json

    if not args.plot_only:
        records = []
        for arch, readout in RUNS:
            d = Path(args.runs) / "runs" / f"{arch}_{readout}"
            if not (d / "test_full.json").is_file():
                print(f"skip {d}: not trained")
                continue
            cached = d / "gradients.json"  # per run, reused unless --force
            if cached.is_file() and not args.force:
                rec = json.loads(cached.read_text())
            else:
                rec = probe_run(d, args.batch, args.samples, args.seed)
                write_json(cached, rec)
            rec["summary"] = s = summarise(rec)
            print(f"{arch}/{readout} (L={rec['max_len']}, truncate {rec['truncate']}; "
                  f"{rec['probe_wall_s']} s)", flush=True)
            for name in ("loss_grad", "hidden", "cell", "cec"):
                if f"{name}_kept" in s:
                    kept = ", ".join(f"d={d}: {_frac(v)}" for d, v in zip(s["distances"],
                                                                          s[f"{name}_kept"], strict=True))
                    print(f"  {name:9s} kept {kept}; min {_frac(s[f'{name}_kept_min'])} "
                          f"at d={s[f'{name}_kept_min_at']}", flush=True)
            records.append(rec)
        write_json(out / "gradients.json", {
            "records": _round(records), "anchors": {"rnn": "1/18,000 at 200 words", "lstm": "1/7"},
            "settings": vars(args)})
    records = json.loads((out / "gradients.json").read_text())["records"]
    print(f"wrote {plot(out / 'gradients.png', records)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
