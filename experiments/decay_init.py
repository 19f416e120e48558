"""Gradient decay at initialisation: ‖∂h_T/∂h_{T−k}‖ for RNN/LSTM/GRU and the LSTM's cell path.

For each setting (architecture × init option) and each of ``--seeds`` freshly initialised
networks, on inputs x ~ N(0, 1) of shape ``(batch, T, features)``, :func:`lstm_jax.probes.
jacobian_norms` gives per row and lag k = 0..T−1 (log10, exact Frobenius norms):

* ``hidden``: ‖∂h_T/∂h_{T−k}‖_F (every architecture);
* ``cell``: ‖∂C_T/∂C_{T−k}‖_F and ``cec``: ‖diag ∏_{j=T−k+1..T} f_j‖_F (LSTM), the essay's
  ∂C_t/∂C_{t−k} = ∏ f_j (Hochreiter & Schmidhuber 1997, the constant error carousel).

Per seed the curve is the mean over rows of log10; the figures show the mean over seeds and a
min–max band. Settings: the three architectures with default init (forget bias 1, orthogonal
recurrent matrix, scale 1); the LSTM with forget bias 0, 1 and chrono (Tallec & Ollivier 2018,
T_max = T); the tanh RNN with recurrent scale 0.5, 1.0, 1.5; and every other registered cell
(peephole LSTM, CIFG, JANET, IndRNN, expRNN, LRU) with its paper's initialisation.

For the tanh RNN, ∂h_t/∂h_{t−1} = diag(tanh'(a_t)) W_hhᵀ with 0 < tanh' ≤ 1, so
‖∂h_T/∂h_{T−k}‖₂ ≤ ‖W_hh‖₂ᵏ (Pascanu et al. 2013, eq. 7; Bengio et al. 1994): the per-step decay
rate is at most log10 ‖W_hh‖₂, which for an orthogonal init times ``scale`` equals log10(scale)
(spectral norm = spectral radius = scale). We fit the measured rate (least squares of the mean
log10 curve over k ≥ 1) and print it beside that bound. Our curves are Frobenius norms; the bound
is on the spectral norm, and ‖J‖_F ≤ √H ‖J‖₂, so the comparison is of slopes, not of levels.

Writes ``OUT/results.json`` (config, per setting: k, per-seed curves, mean, min, max, fitted RNN
rates and bounds, value at k=100 relative to k=0), ``OUT/decay_init.png`` (the three
architectures + LSTM cell vs ∏f), ``OUT/decay_forget_bias.png``, ``OUT/decay_rnn_scale.png``,
``OUT/decay_init_cells.png`` (‖∂h_T/∂h_{T−k}‖ of all nine cells). An existing ``results.json``
with the same config is reused: only settings it lacks (or holds with other options) are
measured, and the figures are redrawn.

    python experiments/decay_init.py --out runs/reproduce/decay_init            # T=500, 5 seeds
    python experiments/decay_init.py --quick --out runs/reproduce/decay_init    # T=200, 3 seeds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-len", type=int, default=500)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--batch", type=int, default=8, help="rows per seed")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="T=200, H=64, 3 seeds, 4 rows")
    p.add_argument("--out", default="runs/reproduce/decay_init")
    args = p.parse_args(argv)
    if args.quick:
        args.seq_len, args.hidden, args.seeds, args.batch = 200, 64, 3, 4
    return args


def settings(T: int) -> dict[str, dict]:
    """Name -> CellConfig keyword options (``arch`` plus init options)."""
    return {
        "rnn": {"arch": "rnn"},
        "lstm": {"arch": "lstm"},
        "gru": {"arch": "gru"},
        "lstm_fb0": {"arch": "lstm", "forget_bias": 0.0},
        "lstm_chrono": {"arch": "lstm", "chrono_tmax": float(T)},
        "rnn_scale0.5": {"arch": "rnn", "recurrent_scale": 0.5},
        "rnn_scale1.5": {"arch": "rnn", "recurrent_scale": 1.5},
        **{arch: {"arch": arch, **PAPER_OPTIONS.get(arch, lambda T: {})(T)}
           for arch in OTHER_CELLS},
    }


#: the registered cells beyond RNN/LSTM/GRU (issue 20), each at its paper's initialisation
OTHER_CELLS = ("peephole", "cifg", "janet", "indrnn", "exprnn", "lru")
#: options that make a cell's init its paper's at sequence length T: JANET's chrono forget bias
#: with T_max = the sequence length and Glorot-uniform kernels, as in its authors' code (van der
#: Westhuizen & Lasenby 2018), IndRNN's authors' adding init (a single layer is the last:
#: u ~ U(2^(-1/T), 2^(1/T)), inputs N(0, 0.001^2))
PAPER_OPTIONS = {"janet": lambda T: {"chrono_tmax": float(T), "input_init": "glorot",
                                     "recurrent_init": "glorot"},
                 "indrnn": lambda T: {"chrono_tmax": float(T), "indrnn_init": "paper"}}


def fit_rate(k: np.ndarray, log10: np.ndarray) -> float:
    """Least-squares slope of log10 ‖·‖ against k over k ≥ 1 (finite values): log10 per step."""
    ok = (k >= 1) & np.isfinite(log10)
    if ok.sum() < 2:  # e.g. a ReLU cell (IndRNN) whose Jacobian is exactly 0 for every row
        return float("nan")
    return float(np.polyfit(k[ok], log10[ok], 1)[0])


def measure(opts: dict, args, seed: int) -> dict:
    """One freshly initialised network: per-probe mean-over-rows log10 curves, W_hh norms."""
    import jax
    from flax import nnx

    from lstm_jax.cells import CellConfig
    from lstm_jax.probes import jacobian_norms
    from lstm_jax.recurrence import Recurrence

    cfg = CellConfig(hidden=args.hidden, **opts)
    model = Recurrence(args.features, cfg, rngs=nnx.Rngs(seed))
    x = jax.random.normal(jax.random.key(10_000 + seed), (args.batch, args.seq_len, args.features))
    jac = jacobian_norms(model, x, None, method="exact")
    out = {name: np.nanmean(r["log10"], axis=0) for name, r in jac.items()
           if name not in ("k", "anchor")}
    H = args.hidden
    params = model.cells[0].params()
    if "w_hh" in params:  # cells with a dense recurrent matrix (not IndRNN, expRNN, LRU)
        w = np.asarray(params["w_hh"])[:, :H]  # the candidate block (RNN: all)
        out["_w_spectral_norm"] = float(np.linalg.norm(w, 2))
        out["_w_spectral_radius"] = float(np.max(np.abs(np.linalg.eigvals(w))))
    return out


def run(args, res: dict | None = None) -> dict:
    """Measure every setting that ``res`` (a previous result of the same config) lacks."""
    from lstm_jax.machine import machine_info

    T = args.seq_len
    k = np.arange(T)
    if res is None:
        res = {"config": {k_: v for k_, v in vars(args).items()}, "machine": machine_info(),
               "method": "exact", "settings": {}}
    for name, opts in settings(T).items():
        if res["settings"].get(name, {}).get("options") == opts:
            continue  # measured before with these options
        t0 = time.perf_counter()
        per_seed = [measure(opts, args, s) for s in range(args.seeds)]
        entry = {"options": opts, "k": k.tolist(), "seconds": round(time.perf_counter() - t0, 2)}
        for probe in [p for p in per_seed[0] if not p.startswith("_")]:
            curves = np.stack([m[probe] for m in per_seed])
            mean = curves.mean(0)
            entry[probe] = {"per_seed": curves.tolist(), "mean": mean.tolist(),
                            "min": curves.min(0).tolist(), "max": curves.max(0).tolist(),
                            "fitted_rate_log10_per_step": fit_rate(k, mean),
                            "ratio_k100_log10": (float(mean[100] - mean[0]) if T > 100
                                                 else None)}
        if opts["arch"] == "rnn":
            sn = float(np.mean([m["_w_spectral_norm"] for m in per_seed]))
            sr = float(np.mean([m["_w_spectral_radius"] for m in per_seed]))
            entry["w_hh_spectral_norm"], entry["w_hh_spectral_radius"] = sn, sr
            entry["bound_rate_log10_per_step"] = float(np.log10(sn))
        res["settings"][name] = entry
        print(f"  {name:>13}: {entry['seconds']:.1f} s", flush=True)
    return res


BAND = "band: min–max over seeds"
YLABEL = "Frobenius norm (geometric mean over rows)"


def _curve(ax, e, probe, color, label, style=None):
    """One probe of one setting: mean over seeds (of the per-seed geometric mean over rows) as a
    line in the probe's own style, min–max over seeds as a band."""
    from lstm_jax.plots.style import line_style

    k = np.asarray(e["k"])
    # log10 of an exactly-zero norm is −inf (stored as −1e308): not drawn rather than a floor
    mean, lo, hi = (np.where(np.asarray(e[probe][s]) < -300, np.nan, e[probe][s])
                    for s in ("mean", "min", "max"))
    ax.semilogy(k, 10.0 ** np.clip(mean, -300, 300), style or line_style(probe), color=color,
                label=label)
    ax.fill_between(k, 10.0 ** np.clip(lo, -300, 300), 10.0 ** np.clip(hi, -300, 300),
                    color=color, alpha=0.15, lw=0)


def _first_zero(e, probe) -> int | None:
    """The first lag at which the mean over seeds is −inf (some row's Jacobian exactly 0)."""
    bad = np.flatnonzero(np.asarray(e[probe]["mean"]) < -300)
    return int(bad[0]) if bad.size else None


def _finish(ax):
    ax.set_xlabel("lag k (steps back from T)")
    ax.set_ylabel(YLABEL)


def plot(res: dict, out: Path) -> list[Path]:
    from lstm_jax.plots.common import save
    from lstm_jax.plots.style import (
        ARCH_COLORS,
        ARCH_LABELS,
        SETTING_COLORS,
        legend_below,
        new_figure,
        quantity_label,
        title,
    )

    T, n = res["config"]["seq_len"], res["config"]["seeds"]
    H = res["config"]["hidden"]
    seeds = f"\nline: mean over {n} seeds; {BAND}"
    paths = []
    fig, axes = new_figure(11, 4.8, ncols=2)
    for arch in ("rnn", "lstm", "gru"):
        e = res["settings"][arch]
        lab = ARCH_LABELS[arch]
        if arch == "rnn":
            lab += (f" (fit {e['hidden']['fitted_rate_log10_per_step']:.3f}/step; "
                    f"bound log10‖W‖₂ = {e['bound_rate_log10_per_step']:.3f})")
        _curve(axes[0], e, "hidden", ARCH_COLORS[arch], lab)
    axes[0].set_title(title("‖∂h_T/∂h_(T−k)‖_F at init", T=T, H=H,
                            init="LSTM forget bias 1") + seeds)
    e = res["settings"]["lstm"]
    for probe, extra in (("hidden", ""), ("cell", " (all paths)"), ("cec", " (cell path only)")):
        _curve(axes[1], e, probe, ARCH_COLORS["lstm"], quantity_label(probe) + extra)
    axes[1].set_title(title("LSTM at init: cell Jacobian vs ∏ f", T=T, H=H,
                            init="forget bias 1") + seeds)
    for ax in axes:
        _finish(ax)
        legend_below(ax, ncol=1)
    paths.append(save(fig, out / "decay_init.png"))

    fig, axes = new_figure(11, 4.8, ncols=2)
    names = ["lstm_fb0", "lstm", "lstm_chrono"]
    labels = ["forget bias 0", "forget bias 1", f"chrono (T_max={T})"]
    for probe, ax in (("cell", axes[0]), ("hidden", axes[1])):
        for i, (nm, lab) in enumerate(zip(names, labels, strict=True)):
            _curve(ax, res["settings"][nm], probe, SETTING_COLORS[i], lab)
        ax.set_title(title(f"LSTM {quantity_label(probe)} at init vs forget-gate init", T=T,
                           H=H) + seeds)
        _finish(ax)
        legend_below(ax, ncol=3)
    paths.append(save(fig, out / "decay_forget_bias.png"))

    fig, ax = new_figure(7.5, 4.8)
    for i, nm in enumerate(["rnn_scale0.5", "rnn", "rnn_scale1.5"]):
        e = res["settings"][nm]
        lab = (f"scale {e['options'].get('recurrent_scale', 1.0)}: fit "
               f"{e['hidden']['fitted_rate_log10_per_step']:+.3f}/step, bound "
               f"{e['bound_rate_log10_per_step']:+.3f}")
        _curve(ax, e, "hidden", SETTING_COLORS[i], lab)
    ax.set_title(title("tanh RNN ‖∂h_T/∂h_(T−k)‖_F at init vs recurrent scale", T=T, H=H,
                       init="orthogonal W_hh") + seeds)
    _finish(ax)
    legend_below(ax, ncol=1)
    paths.append(save(fig, out / "decay_rnn_scale.png"))

    fig, ax = new_figure(8.5, 5.2)
    for arch in ("rnn", "lstm", "gru", *OTHER_CELLS):
        if arch not in res["settings"]:
            continue
        e, probe, lab = res["settings"][arch], "hidden", ARCH_LABELS[arch]
        if arch == "lru":  # its output y_t does not recur; the state x_t does (the "cell" probe)
            probe, lab = "cell", lab + " (state x_t)"
        if (k0 := _first_zero(e, probe)) is not None:
            lab += f" (exactly 0 from k={k0} in some row)"
        _curve(ax, e, probe, ARCH_COLORS[arch], lab)
    ax.set_title(title("‖∂h_T/∂h_(T−k)‖_F at init, every registered cell", T=T, H=H,
                       init="each paper's") + seeds)
    _finish(ax)
    legend_below(ax, ncol=3)
    paths.append(save(fig, out / "decay_init_cells.png"))
    return paths


def main(argv=None) -> int:
    from lstm_jax.io import ensure_out_dir, read_json, write_json

    args = parse_args(argv)
    out = ensure_out_dir(args.out)
    path = out / "results.json"
    cfg = {k: v for k, v in vars(args).items()}
    old = read_json(path) if path.is_file() else None
    if old is not None and old.get("config") == cfg:
        missing = [n for n, opts in settings(args.seq_len).items()
                   if old["settings"].get(n, {}).get("options") != opts]
        print(f"reusing {path}" + (f"; measuring {', '.join(missing)}" if missing else ""))
        res = run(args, old) if missing else old
        if missing:
            write_json(path, res)
    else:
        res = run(args)
        write_json(path, res)
    for p in plot(res, out):
        print(f"wrote {p}")
    r = res["settings"]
    for nm in ("rnn_scale0.5", "rnn", "rnn_scale1.5"):
        print(f"{nm}: fitted rate {r[nm]['hidden']['fitted_rate_log10_per_step']:+.4f} log10/step;"
              f" bound log10‖W_hh‖₂ = {r[nm]['bound_rate_log10_per_step']:+.4f} "
              f"(spectral radius {r[nm]['w_hh_spectral_radius']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
