"""What the data say: sentences comparing the results files with the essay and the anchors.

Used by :mod:`lstm_jax.report`; every sentence is computed from the files an experiment wrote,
so a rerun with other numbers changes the verdicts too.
"""

from __future__ import annotations

import json
from pathlib import Path

#: what the literature and the essay say, quoted beside each section
ANCHORS = {
    "decay": ["Pascanu, Mikolov & Bengio (2013), eq. 7: ‖∂h_t/∂h_(t−1)‖₂ ≤ ‖W_hh‖₂ · max tanh' "
              "(= ‖W_hh‖₂), so ‖∂h_T/∂h_(T−k)‖₂ ≤ ‖W_hh‖₂ᵏ: vanishing is guaranteed when "
              "‖W_hh‖₂ < 1, possible explosion needs ‖W_hh‖₂ > 1.",
              "Bengio, Simard & Frasconi (1994); Hochreiter (1991): exponential vanishing.",
              "The essay: ∂C_t/∂C_(t−k) = ∏ f_j (this is the cell-to-cell path only; the full "
              "Jacobian adds paths through h, i, g and f)."],
    "lag": ["Bai, Kolter & Koltun (2018): adding at T=600, MSE 0.177 (RNN) and 0.164 (LSTM, i.e. "
            "failed; baseline 0.167).",
            "Hochreiter & Schmidhuber (1997): the LSTM solved adding at T=1000.",
            "Tallec & Ollivier (2018): chrono-initialised LSTMs beat the copy baseline at T=500 "
            "and 2000."],
    "imdb": ["Dai & Le (2015): 86.5 % for a plain LSTM.",
             "A tuned LSTM on the last 200 words: 88.8 %; a tanh RNN on the same setting: 83.5 %.",
             "Gradient kept 200 words back in trained models: about 1/18,000 (RNN), 1/7 (LSTM)."],
    "eda": ["The essay: the classes are perfectly balanced; most reviews fall between 100 and 300 "
            "tokens with a tail past 1,000; positive reviews are slightly more variable."],
}


def read_if_present(path: Path):
    """The JSON in ``path``, or None when the file is not there (a result not made yet)."""
    return json.loads(path.read_text()) if path.is_file() else None


def fmt_num(v, spec: str = ".3g") -> str:
    """``v`` formatted with ``spec``; "—" for a missing value (how results files store NaN)."""
    return "—" if v is None else format(v, spec)


def _pct(v) -> str:
    """A fraction as ``87.31 %``."""
    return f"{100 * v:.2f} %"


def fmt_pow(log10v) -> str:
    """``10^x`` from a log10 value; −1e308 is how results files store log10 0 (−inf)."""
    if log10v is None:
        return "—"
    return "0 (exactly)" if log10v <= -1e300 else f"10^{log10v:.1f}"


def eda_verdict(stats: dict) -> str:
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
    init = read_if_present(R / "decay_init" / "results.json")
    if init and "lstm" in init["settings"]:
        out += _init_verdicts(init["settings"])
    cmp_ = read_if_present(R / "comparison" / "comparison.json")
    if cmp_:
        out += [_imdb_verdict(cmp_), _gru_verdict(cmp_)]
    for di in imdb_dirs:
        g = read_if_present(di / "gradients.json")
        if g:
            out.append(_kept_verdict(g, di))
            break
    return [v for v in out if v]


def chrono_clause(S: dict) -> str:
    """What chrono init's forget-gate product does at k=100, as the data show it ("" if absent):
    "f ≈ 1" is claimed only when ∏f keeps at least a tenth."""
    ch = S.get("lstm_chrono", {}).get("cec", {}).get("ratio_k100_log10")
    if ch is None:
        return ""
    if ch >= -1:
        return f"chrono init provides it at init (∏f at k=100: {fmt_pow(ch)})"
    return f"even chrono init does not at init (∏f at k=100: {fmt_pow(ch)})"


def _init_verdicts(S: dict) -> list[str]:
    """The LSTM's cell Jacobian at init against the essay's ∏f (decay_init results)."""
    out = []
    lc = S["lstm"].get("cell", {}).get("ratio_k100_log10")
    cec = S["lstm"].get("cec", {}).get("ratio_k100_log10")
    if lc is not None and lc < -3:
        chrono = chrono_clause(S)
        out.append(f"At initialisation with forget bias 1 the LSTM's cell gradient also vanishes "
                   f"(‖∂C_T/∂C_(T−100)‖ relative to k=0: {fmt_pow(lc)}); 'gradients remain "
                   f"strong' needs f ≈ 1" + (f": {chrono}." if chrono else "."))
    if lc is not None and cec is not None and abs(lc - cec) > 1:
        how = ("larger than", "dominate") if lc > cec else ("smaller than", "partly cancel it")
        out.append(f"∂C_t/∂C_(t−k) = ∏f_j is the cell-to-cell path only: at init and k=100 "
                   f"the full cell Jacobian is {fmt_pow(lc)}, {how[0]} ∏f's {fmt_pow(cec)}: "
                   f"the other paths, through h and the gates, {how[1]}.")
    return out


def _ci(cmp_: dict, readout: str) -> dict | None:
    """The bootstrap interval of RNN − LSTM test accuracy for ``readout``, if recorded."""
    d = (cmp_.get("imdb_differences") or {}).get(readout)
    return d if d and d.get("low") is not None and d.get("high") is not None else None


def _ci_text(ci: dict) -> str:
    """The interval as the comparison table states it: LSTM − RNN, in percentage points."""
    seeds = f" over {ci['n']} seeds" if ci.get("n") else ""
    return (f"LSTM − RNN {100 * ci.get('conf', 0.95):.0f} % CI{seeds} {-100 * ci['high']:+.2f} "
            f"to {-100 * ci['low']:+.2f} pp")


def _who_wins(rnn: float, lstm: float, ci: dict | None) -> str:
    """"LSTM", "RNN" or "" (no clear difference): by the interval when there is one, else
    by the two numbers."""
    if ci is not None:
        return "LSTM" if ci["high"] < 0 else "RNN" if ci["low"] > 0 else ""
    return "LSTM" if lstm > rnn else "RNN" if rnn > lstm else ""


def _source(cmp_: dict) -> str:
    src = (cmp_.get("sources") or {}).get("imdb")
    return f" (from {src})" if src else ""


def _imdb_verdict(cmp_: dict) -> str | None:
    """A sentence when the masked-mean readout does not show the LSTM winning (essay: 'LSTMs
    never fail to outperform'); the difference is judged by its bootstrap interval when
    comparison.json has one."""
    c = cmp_["columns"]
    a, b = c["rnn"].get("imdb_mean"), c["lstm"].get("imdb_mean")
    if a is None or b is None:
        return None
    ci = _ci(cmp_, "mean")
    winner = _who_wins(a, b, ci)
    if winner == "LSTM":
        return None
    finding = "the RNN scores higher" if winner == "RNN" else "no clear difference"
    detail = f" ({_ci_text(ci)})" if ci else " (one number each, no interval)"
    text = (f"IMDB with a masked-mean readout{_source(cmp_)}: tanh RNN {_pct(a)} vs LSTM "
            f"{_pct(b)} — {finding}{detail}, against the essay's 'LSTMs never fail to "
            f"outperform basic recurrent models'")
    rl, ll = c["rnn"].get("imdb_last"), c["lstm"].get("imdb_last")
    if rl is None or ll is None:
        return text + "."
    verdict = {"LSTM": "the LSTM scores higher", "RNN": "the RNN scores higher",
               "": "no clear difference"}[_who_wins(rl, ll, _ci(cmp_, "last"))]
    return text + f" (with the last-state readout {verdict}: LSTM {_pct(ll)} vs RNN {_pct(rl)})."


def _gru_verdict(cmp_: dict) -> str | None:
    """The GRU's IMDB accuracies and longest adding lag (not in the essay's table)."""
    c = cmp_["columns"]
    g = c.get("gru", {})
    if g.get("imdb_last") is None or c["lstm"].get("imdb_last") is None:
        return None
    acc = [f"{_pct(g[f'imdb_{r}'])} ({r})" for r in ("last", "mean")
           if g.get(f"imdb_{r}") is not None]
    return (f"GRU (not in the essay's table): IMDB {' / '.join(acc)}{_source(cmp_)}; the longest "
            f"adding lag it solved is T = {fmt_num(g.get('longest_lag_solved'), '')}, the LSTM's "
            f"T = {fmt_num(c['lstm'].get('longest_lag_solved'), '')}.")


def _farthest(summary: dict) -> tuple:
    """(farthest distance, loss gradient kept there) of an imdb_gradients summary."""
    return ((summary.get("distances") or [None])[-1],
            (summary.get("loss_grad_kept") or [None])[-1])


def _kept_verdict(g: dict, folder: Path) -> str | None:
    """‖∂L/∂h_t‖ kept at the farthest distance in the trained IMDB models of ``folder``
    (last-state readout), against the anchor's 200-word numbers when the distance is near 200."""
    kept = {(r["arch"], r["readout"]): _farthest(r["summary"]) for r in g["records"]}
    dr, r_ = kept.get(("rnn", "last"), (None, None))
    dl, l_ = kept.get(("lstm", "last"), (None, None))
    if None in (dr, r_, dl, l_):
        return None
    where = f"{dr} tokens" if dr == dl else f"{dr} (RNN) / {dl} (LSTM) tokens"
    text = (f"Trained IMDB models (last-state readout, from {folder}): ‖∂L/∂h_t‖ {where} before the end, "
            f"relative to the last step, is {r_:.3g} for the RNN and {l_:.3g} for the LSTM")
    if not all(180 <= d <= 220 for d in (dr, dl)):
        return text + ("; the anchor's 1/18,000 (RNN) and 1/7 (LSTM) are for 200 words back, "
                       "so they are not compared.")
    return (text + f"; the anchor says about 1/18,000 (RNN) and 1/7 (LSTM) 200 words back: our "
            f"RNN keeps {'more' if r_ > 1 / 18_000 else 'less'} and our LSTM "
            f"{'more' if l_ > 1 / 7 else 'less'} than its anchor"
            + (", so the ordering is reversed." if r_ > l_ else "."))
