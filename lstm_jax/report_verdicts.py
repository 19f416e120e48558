"""What the data say: sentences comparing the results files with the essay and the anchors.

Used by :mod:`lstm_jax.report`; every sentence is computed from the files an experiment wrote,
so a rerun with other numbers changes the verdicts too.
"""

from __future__ import annotations

import json
from pathlib import Path


def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _fmt_pow(log10v) -> str:
    """``10^x`` from a log10 value; −1e308 is how results files store log10 0 (−inf)."""
    if log10v is None:
        return "—"
    return "0 (exactly)" if log10v <= -1e300 else f"10^{log10v:.1f}"


def _eda_verdict(stats: dict) -> str:
    """Sentences comparing the essay's EDA claims with ``stats.json`` (labelled reviews)."""
    try:
        c = stats["counts"]["labelled"]
        parts = [f"classes {c.get('neg'):,} negative / {c.get('pos'):,} positive (labelled)."]
        for split in ("train", "test"):
            a = stats["tokens"][split]["all"]
            n, p_ = stats["tokens"][split]["neg"], stats["tokens"][split]["pos"]
            parts.append(
                f"{split}: median {a['median']:.0f} tokens, {100 * a['frac_100_300']:.1f} % in "
                f"[100, 300], {100 * a['frac_gt_1000']:.2f} % over 1,000 (max {a['max']:,}); "
                f"IQR neg {n['p75'] - n['p25']:.0f} vs pos {p_['p75'] - p_['p25']:.0f} tokens.")
        return " ".join(parts) + (" Tokens are words and punctuation (lstm_jax.data.text), so "
                                  "counts run higher than whitespace words.")
    except (KeyError, TypeError):
        return "stats.json has an unexpected layout; see the file."


def disagreements(R: Path, imdb_dirs: list[Path]) -> list[str]:
    """Sentences, computed from the results, where the data disagree with the essay or anchors."""
    out = []
    init = _read(R / "decay_init" / "results.json")
    if init and "lstm" in init["settings"]:
        S = init["settings"]
        lc = S["lstm"].get("cell", {}).get("ratio_k100_log10")
        cec = S["lstm"].get("cec", {}).get("ratio_k100_log10")
        if lc is not None and lc < -3:
            ch = S.get("lstm_chrono", {}).get("cec", {}).get("ratio_k100_log10")
            out.append(f"At initialisation with forget bias 1 the LSTM's cell gradient also "
                       f"vanishes exponentially (‖∂C_T/∂C_(T−100)‖ relative to k=0: "
                       f"{_fmt_pow(lc)}); 'gradients remain strong' holds only when f ≈ 1, e.g. "
                       f"chrono init (∏f at k=100: {_fmt_pow(ch)}).")
        if lc is not None and cec is not None and abs(lc - cec) > 1:
            out.append(f"∂C_t/∂C_(t−k) = ∏f_j is the cell-to-cell path only: at init and k=100 "
                       f"the full cell Jacobian is {_fmt_pow(lc)} against {_fmt_pow(cec)} for ∏f "
                       f"(the other paths, through h and the gates, dominate).")
    cmp_ = _read(R / "comparison" / "comparison.json")
    if cmp_:
        c = cmp_["columns"]
        a, b = c["rnn"].get("imdb_mean"), c["lstm"].get("imdb_mean")
        if a is not None and b is not None and abs(b - a) < 0.0063:
            out.append(f"IMDB with a masked-mean readout: tanh RNN {100 * a:.2f} % vs LSTM "
                       f"{100 * b:.2f} % — no clear difference, against the essay's 'LSTMs never "
                       f"fail to outperform basic recurrent models' (with the last-state readout "
                       f"the LSTM does win: {100 * (c['lstm']['imdb_last'] or 0):.2f} % vs "
                       f"{100 * (c['rnn']['imdb_last'] or 0):.2f} %).")
        g = c["gru"].get("imdb_last")
        if g is not None and c["lstm"].get("imdb_last") is not None:
            out.append(f"GRU (not in the essay's table): IMDB {100 * g:.2f} % (last) / "
                       f"{100 * (c['gru'].get('imdb_mean') or 0):.2f} % (mean); the longest "
                       f"adding lag it solved is T = {c['gru'].get('longest_lag_solved')}, the "
                       f"LSTM's T = {c['lstm'].get('longest_lag_solved')}.")
    for di in imdb_dirs:
        g = _read(di / "gradients.json")
        if not g:
            continue
        kept = {(r["arch"], r["readout"]): r["summary"].get("loss_grad_kept", [None])[-1]
                for r in g["records"]}
        r_, l_ = kept.get(("rnn", "last")), kept.get(("lstm", "last"))
        if r_ is not None and l_ is not None:
            out.append(f"Trained IMDB models (last-state readout): ‖∂L/∂h_t‖ 199 tokens before "
                       f"the end, relative to the last step, is {r_:.3g} for the RNN and "
                       f"{l_:.3g} for the LSTM; the anchor says about 1/18,000 (RNN) and 1/7 "
                       f"(LSTM): our RNN keeps {'more' if r_ > 1 / 18_000 else 'less'} and "
                       f"our LSTM {'more' if l_ > 1 / 7 else 'less'} than its anchor"
                       + (", so the ordering is reversed." if r_ > l_ else "."))
        break
    return out
