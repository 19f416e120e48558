"""The essay's IMDB figures, from ``stats.json`` and ``lengths.csv`` written by ``lstm-jax eda``.

(1) sentiment distribution per split, (2) histogram of review lengths (log-x) with the median
and percentiles marked, (3) box plot of length by sentiment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_jax.plots.common import new_figure, plt, save
from lstm_jax.plots.style import legend_outside

CLASS_COLORS = {"neg": "#d62728", "pos": "#1f77b4", "unlabelled": "#7f7f7f"}
SPLIT_ORDER = ("train", "test", "unsupervised")


def plot_sentiment(stats: dict, path: str | Path) -> Path:
    """Bar chart: reviews per class (neg, pos, unlabelled) for each split; ValueError when
    ``stats["counts"]`` has none of train, test, unsupervised."""
    counts = stats.get("counts", {})
    splits = _counted_splits(stats)
    if not splits:
        raise ValueError(f"stats has no class counts for {', '.join(SPLIT_ORDER)}: nothing to plot")
    classes = [c for c in ("neg", "pos", "unlabelled") if any(c in counts[s] for s in splits)]
    fig, ax = new_figure(6.5, 4.0)
    width = 0.8 / max(len(counts[s]) for s in splits)
    seen = set()
    for i, s in enumerate(splits):
        present = [c for c in classes if c in counts[s]]
        for j, c in enumerate(present):
            v = counts[s][c]
            bar = ax.bar(i + (j - (len(present) - 1) / 2) * width, v, width, color=CLASS_COLORS[c],
                         label=None if c in seen else c)
            seen.add(c)
            ax.bar_label(bar, labels=[f"{v:,}"], fontsize=8, padding=2)
    x = np.arange(len(splits))
    ax.set_xticks(x, splits)
    ax.set_xlabel("split")
    ax.set_ylabel("reviews")
    ax.set_title("IMDB (Maas et al. 2011): reviews per class and split")
    ax.margins(y=0.12)
    legend_outside(ax)
    return save(fig, path)


def _counted_splits(stats: dict) -> list[str]:
    """The splits, in :data:`SPLIT_ORDER`, that ``stats["counts"]`` has class counts for."""
    return [s for s in SPLIT_ORDER if stats.get("counts", {}).get(s)]


def _present_labelled(lengths: dict) -> list[str]:
    """The labelled splits (train, test) in ``lengths``."""
    return [s for s in ("train", "test") if s in lengths]


def _labelled_splits(lengths: dict) -> list[str]:
    """:func:`_present_labelled`; ValueError when there is neither."""
    splits = _present_labelled(lengths)
    if not splits:
        raise ValueError("lengths has neither a train nor a test split: nothing to plot")
    return splits


def _summary(stats: dict, unit: str, splits: list[str]) -> dict:
    """The length summary of exactly ``splits``: the pooled "labelled" entry for train + test."""
    key = "labelled" if len(splits) == 2 else splits[0]
    summary = stats.get(unit, {}).get(key)
    if summary is None:
        raise ValueError(f"stats has no {unit} summary for {key!r} ({' + '.join(splits)})")
    return summary["all"]


def plot_length_histogram(lengths: dict, stats: dict, path: str | Path,
                          unit: str = "tokens") -> Path:
    """Histogram of review length (train + test, or the one of them present) on a log axis;
    median, p90, p99 of the same reviews marked and the 100–300 band shaded, with the fractions
    inside it and beyond 1,000 in the legend."""
    splits = _labelled_splits(lengths)
    x = np.maximum(np.concatenate([lengths[s][unit] for s in splits]), 1)
    summary = _summary(stats, unit, splits)
    fig, ax = new_figure(7.5, 4.4)
    bins = np.geomspace(max(1, x.min()), x.max() * 1.01, 80)
    ax.hist(x, bins=bins, color="#8c8c8c", alpha=0.85)
    ax.set_xscale("log")
    ax.axvspan(100, 300, color="#2ca02c", alpha=0.12,
               label=f"100–300 {unit}: {summary['frac_100_300']:.1%} of reviews")
    ax.axvline(1000, color="k", ls=":", lw=1,
               label=f"> 1,000 {unit}: {summary['frac_gt_1000']:.2%}")
    for key, style in (("median", "-"), ("p90", "--"), ("p99", "-.")):
        ax.axvline(summary[key], color="#1f77b4", ls=style, lw=1.4,
                   label=f"{key} = {summary[key]:.0f}")
    ax.set_xlabel(f"review length ({unit}, log scale)")
    ax.set_ylabel("reviews per bin")
    ax.set_title(f"IMDB review lengths, {' + '.join(splits)} ({len(x):,} reviews)")
    legend_outside(ax)
    return save(fig, path)


def plot_length_box(lengths: dict, path: str | Path, unit: str = "tokens") -> Path:
    """Box plot of review length by sentiment for train and test (log y; whiskers 1.5 IQR)."""
    data, labels, colors = [], [], []
    for s in _labelled_splits(lengths):
        for k, name in ((0, "neg"), (1, "pos")):
            data.append(np.maximum(lengths[s][unit][lengths[s]["label"] == k], 1))
            labels.append(f"{s}\n{name}")
            colors.append(CLASS_COLORS[name])
    fig, ax = new_figure(6.5, 4.4)
    bp = ax.boxplot(data, tick_labels=labels, patch_artist=True, showmeans=True,
                    flierprops={"markersize": 2, "alpha": 0.3},
                    meanprops={"marker": "^", "markerfacecolor": "white",
                               "markeredgecolor": "k"})
    for patch, c in zip(bp["boxes"], colors, strict=True):
        patch.set_facecolor(c)
        patch.set_alpha(0.5)
    for i, d in enumerate(data, start=1):
        ax.annotate(f"median {np.median(d):.0f}", (i + 0.27, np.median(d)), xytext=(3, 0),
                    textcoords="offset points", ha="left", va="center", fontsize=7)
    ax.set_yscale("log")
    ax.set_xlim(0.5, len(data) + 0.75)
    ax.set_xlabel("split and sentiment")
    ax.set_ylabel(f"review length ({unit}, log scale)")
    ax.set_title("IMDB review length by sentiment (triangle = mean)")
    return save(fig, path)


def plot_all(out_dir: str | Path, unit: str = "tokens") -> list[Path]:
    """The three figures from ``out_dir/stats.json`` and ``out_dir/lengths.csv``: the sentiment
    bars when there are class counts, the two length figures when there is a labelled split."""
    from lstm_jax.data.eda import read_lengths_csv
    from lstm_jax.io import read_json

    out_dir = Path(out_dir)
    stats = read_json(out_dir / "stats.json")
    lengths = read_lengths_csv(out_dir / "lengths.csv")
    paths = []
    if _counted_splits(stats):
        paths.append(plot_sentiment(stats, out_dir / "sentiment.png"))
    if _present_labelled(lengths):
        paths += [plot_length_histogram(lengths, stats, out_dir / "length_hist.png", unit),
                  plot_length_box(lengths, out_dir / "length_box.png", unit)]
    plt.close("all")
    return paths
