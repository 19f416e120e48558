"""The report's decay sections: gradient decay at initialisation (every registered cell, the
LSTM's forget-bias and the RNN's scale settings) and after training (adding and IMDB models).
Each ``section_*`` returns blocks (:mod:`lstm_jax.report_blocks`) for :mod:`lstm_jax.report`."""

from __future__ import annotations

import json
from pathlib import Path

from lstm_jax.report_blocks import (
    _cmd,
    _cmd_for,
    _config_block,
    bullets,
    code_block,
    figure,
    heading,
    para,
    table_block,
)
from lstm_jax.report_verdicts import ANCHORS, chrono_clause, fmt_num, fmt_pow, read_if_present


def section_decay_init(R: Path, man: dict) -> list:
    d = R / "decay_init"
    res = read_if_present(d / "results.json")
    out = [heading(2, "1. Gradient decay at initialisation")]
    cmd = _cmd(man, "decay_init", f"python experiments/decay_init.py --out {d}")
    if res is None:
        return out + [para("Not run."), code_block(cmd)]
    c = res["config"]
    out += [para(f"‖∂h_T/∂h_(T−k)‖_F for fresh networks (exact Frobenius norms, inputs N(0, 1), "
               f"T={c['seq_len']}, H={c['hidden']}, D={c['features']}, {c['batch']} rows × "
               f"{c['seeds']} seeds: line = mean over seeds of the row-mean log10, band = "
               f"min–max over seeds)."), code_block(cmd), _config_block(c),
            figure(d / "decay_init.png", "RNN vs LSTM vs GRU (left); the LSTM's cell Jacobian "
                 "against the forget-gate product ∏f (right)."),
            figure(d / "decay_forget_bias.png", "LSTM with forget bias 0, 1 and chrono init."),
            figure(d / "decay_rnn_scale.png", "tanh RNN with recurrent scale 0.5, 1.0, 1.5.")]
    if (d / "decay_init_cells.png").is_file():
        out.append(figure(d / "decay_init_cells.png", "‖∂h_T/∂h_(T−k)‖ of every registered cell "
                          "at its paper's initialisation."))
    S = res["settings"]
    rows = ["| setting | fitted rate (log10/step) | bound log10‖W_hh‖₂ (Pascanu 2013) | "
            "‖W_hh‖₂ / spectral radius | ‖J(100)‖/‖J(0)‖ hidden | ‖J(100)‖/‖J(0)‖ cell | "
            "∏f at k=100 (rel.) |", "|---|---|---|---|---|---|---|"]
    for name, e in S.items():
        h = e["hidden"]
        b = e.get("bound_rate_log10_per_step")
        bound = "—" if b is None else f"{b:+.4f}"
        norms = ("—" if b is None else
                 f"{e['w_hh_spectral_norm']:.3f} / {e['w_hh_spectral_radius']:.3f}")
        rate = h.get("fitted_rate_log10_per_step")  # None: fewer than two nonzero lags to fit
        rows.append(
            f"| {name} | {'—' if rate is None else f'{rate:+.4f}'} | {bound} | {norms} | "
            f"{fmt_pow(h['ratio_k100_log10'])} | "
            f"{fmt_pow(e['cell']['ratio_k100_log10']) if 'cell' in e else '—'} | "
            f"{fmt_pow(e['cec']['ratio_k100_log10']) if 'cec' in e else '—'} |")
    out.append(table_block("\n".join(rows)))
    out.append(bullets(ANCHORS["decay"]))
    notes = [_rate_note(name, S[name]) for name in ("rnn_scale0.5", "rnn", "rnn_scale1.5")
             if name in S]
    if "lstm" in S:
        notes.append(_lstm_init_note(S))
    out.append(para("What the data say: " + " ".join(n for n in notes if n)))
    return out


def _rate_note(name: str, e: dict) -> str:
    """The fitted decay rate of a tanh RNN against the Pascanu bound ("—" when either is
    missing, e.g. fewer than two nonzero lags to fit)."""
    fit, b = e["hidden"].get("fitted_rate_log10_per_step"), e.get("bound_rate_log10_per_step")
    text = f"{name}: fitted {fmt_num(fit, '+.3f')} vs bound {fmt_num(b, '+.3f')} log10/step"
    if fit is None or b is None:
        return text + "."
    return text + (" — within the bound (tanh' < 1 makes the decay faster than ‖W‖₂ alone)."
                   if fit <= b + 1e-3 else " — ABOVE the bound: check the probe.")


def _lstm_init_note(S: dict) -> str:
    """The LSTM's cell Jacobian and ∏f at k=100; whether ∏f vanishes is read from the data, with
    the one forget gate value that would give the same product over 100 steps."""
    cell = S["lstm"].get("cell", {}).get("ratio_k100_log10")
    cec = S["lstm"].get("cec", {}).get("ratio_k100_log10")
    if cell is None or cec is None:
        return ""
    text = (f"LSTM (forget bias 1) at k=100: full cell Jacobian {fmt_pow(cell)}, ∏f alone "
            f"{fmt_pow(cec)}")
    if cec <= -1e300:
        return text + "."
    text += f" (as if every forget gate were {10 ** (cec / 100):.3f})"
    if cec >= -1:
        return text + ": ∏f keeps at least a tenth at init."
    chrono = chrono_clause(S)
    return (text + "; ∏f vanishes too, so the essay's 'gradients remain strong' needs f ≈ 1"
            + (f": {chrono}; training may learn it." if chrono else ", which training may learn."))


def section_decay_trained(R: Path, man: dict, imdb_dirs: list[Path]) -> list:
    d = R / "decay_trained"
    res = read_if_present(d / "results.json")
    out = [heading(2, "2. Gradient decay after training")]
    cmd = _cmd(man, "decay_trained", f"python experiments/decay_trained.py --out {d}")
    if res is None:
        out += [para("Adding problem: not run."), code_block(cmd)]
    else:
        out += _decay_trained_adding(d, res, cmd)
    for di in imdb_dirs:
        g = read_if_present(di / "gradients.json")
        if g is None:
            continue
        out += [heading(3, f"IMDB (trained models of experiments/imdb_compare.py, gradients "
                           f"from {di})"),
                code_block(_cmd_for(man, "imdb_gradients", di,
                                    f"python experiments/imdb_gradients.py --runs {di}")),
                figure(di / "gradients.png", "‖∂L/∂h_t‖ and ‖∂h_T/∂h_(T−k)‖ in the trained IMDB "
                     "models (ratio to distance 0).")]
        rows = ["| arch | readout | L | farthest d | loss grad kept at d = 100 / "
                "farthest | ‖∂h_T/∂h_(T−k)‖ kept, k = 100 / farthest | cell kept, farthest | "
                "∏f, farthest |", "|---|---|---|---|---|---|---|---|"]
        for r in g["records"]:
            s = r["summary"]
            dist = s.get("distances") or []
            i100 = dist.index(100) if 100 in dist else None

            def kept(n, i, s=s):
                v = s.get(f"{n}_kept")
                return "—" if v is None or i is None else fmt_num(v[i])
            rows.append(f"| {r['arch']} | {r['readout']} | {r['max_len']} | "
                        f"{dist[-1] if dist else '—'} | "
                        f"{kept('loss_grad', i100)} / {kept('loss_grad', -1)} | "
                        f"{kept('hidden', i100)} / {kept('hidden', -1)} | {kept('cell', -1)} | "
                        f"{kept('cec', -1)} |")
        out += [table_block("\n".join(rows)),
                para("Anchor: a trained RNN keeps about 1/18,000 (5.6e-5) of the gradient 200 words "
                   "back, an LSTM about 1/7 (0.14). Our numbers are shown as measured; with the "
                   "mean readout the loss reaches every step directly, so 'kept' can exceed 1.")]
        break
    return out


def _decay_trained_adding(d: Path, res: dict, cmd: str) -> list:
    """Section 2's adding-problem part: the setup with the probe method its records name, the
    figures (one seed) and the table, each column saying which statistic over seeds it shows."""
    c, archs = res["config"], res["archs"]
    first = _first_seed(archs)
    out = [para(f"Adding problem, T={c['seq_len']}, H={c['hidden']}, {c['steps']} steps "
                f"(Adam lr {c['lr']}, batch {c['batch']}), probes every {c['probe_every']} "
                f"steps ({_probe_method(d, archs)}) recorded by the training loop in "
                f"probes.jsonl."), code_block(cmd), _config_block(c),
           figure(d / "decay_trained.png", f"After training ({first})."),
           figure(d / "decay_trained_step0.png", f"The same networks at step 0 ({first}).")]
    for arch in archs:
        out.append(figure(d / f"heatmap_{arch}.png", f"{arch}: log10 ‖∂h_T/∂h_(T−k)‖ over "
                          f"lag and training step ({first})."))
    stat = {e.get("ratio_statistic", "statistic not recorded") for e in archs.values()}
    stat = stat.pop() if len(stat) == 1 else "statistic per arch in results.json"
    rows = [f"| arch | seeds | final loss / baseline (mean over seeds) | k | ‖J(k)‖/‖J(0)‖ hidden, "
            f"init → trained ({stat}) | cell, init → trained ({stat}) | ∏f, init → trained "
            f"({stat}) |", "|---|---|---|---|---|---|---|"]
    for arch, e in archs.items():
        def pair(n, e=e):
            a, b = e.get(f"init_{n}_log10_ratio"), e.get(f"trained_{n}_log10_ratio")
            return "—" if a is None else f"{fmt_pow(a)} → {fmt_pow(b)}"
        rows.append(f"| {arch} | {len(e.get('seeds') or []) or '—'} | "
                    f"{fmt_num(e.get('loss_over_baseline'))} | {e['ratio_k']} | "
                    f"{pair('hidden')} | {pair('cell')} | {pair('cec')} |")
    return out + [table_block("\n".join(rows)),
                  para("Every seed's ratio is in results.json (`per_seed`).")]


def _first_seed(archs: dict) -> str:
    """"seed 0": the one seed the figures show (the first of each arch's ``seeds``)."""
    firsts = {(e.get("seeds") or [None])[0] for e in archs.values()}
    first = firsts.pop() if len(firsts) == 1 else None
    return "one seed" if first is None else f"seed {first}"


def _probe_method(d: Path, archs) -> str:
    """How the probes were estimated, from the first record of each run's ``probes.jsonl``
    (``d/runs/<arch>``): "Hutchinson, 4 samples", "exact", or "method not recorded"."""
    found = {}
    for arch in archs:
        path = d / "runs" / arch / "probes.jsonl"
        if path.is_file():
            with open(path) as f:
                rec = json.loads(f.readline() or "{}")
            found[arch] = _method_text(rec)
    texts = set(found.values())
    if not texts:
        return "method not recorded"
    if len(texts) == 1:
        return texts.pop()
    return "; ".join(f"{arch}: {t}" for arch, t in found.items())


def _method_text(rec: dict) -> str:
    method, samples = rec.get("method"), rec.get("samples")
    if method is None:
        return "method not recorded"
    name = "Hutchinson" if method == "hutchinson" else method
    return f"{name}, {samples} samples" if samples else name
