"""The reproduction report: ``report.md`` and a standalone ``report.html`` from results files only.

Reads only what ``experiments/reproduce.py`` and the experiments it runs wrote into the results
folder it is given (``RESULTS/manifest.json``, ``RESULTS/<experiment>/results.json`` and figures,
``RESULTS/eda``, the IMDB models in ``RESULTS/imdb_compare`` unless ``--imdb`` names other
folders) and never trains: a missing result becomes "not run" and the command that makes it.
Every figure and table is shown with the command and configuration that made it, and the papers'
anchor numbers beside ours.

The document is a list of blocks (heading, paragraph, table, figure, code) rendered twice: as
Markdown (figures linked by relative path, copied beside ``report.md``) and as one HTML file with
the figures embedded as base64 PNG.

    python -m lstm_jax.report --results runs/reproduce --out runs/report
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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
    render_html,
    render_markdown,
    table_block,
)
from lstm_jax.report_decay import section_decay_init, section_decay_trained
from lstm_jax.report_verdicts import (
    ANCHORS,
    disagreements,
    eda_verdict,
    fmt_num,
    read_if_present,
)

# --------------------------------------------------------------------------------------- sections

def section_lag(R: Path, man: dict) -> list:
    d = R / "sweep_lag"
    rows = read_if_present(d / "results.json")
    out = [heading(2, "3. Success against lag (adding problem, copy task)")]
    # FULL runs the sweep in parts (sweep_adding, sweep_copy, …) and then one --collect.
    parts = [n for n in (man or {}).get("stages", {}) if n.startswith("sweep_") and n != "sweep_lag"]
    cmd = "\n".join([_cmd(man, n, "") for n in parts]
                    + [_cmd(man, "sweep_lag", f"python experiments/sweep_lag.py --out {d}")])
    if rows is None:
        return out + [para("Not run."), code_block(cmd)] + _long_runs(R, man)
    sc = read_if_present(d / "sweep_config.json") or {}
    out += [code_block(cmd)] + ([] if parts else [_config_block(sc.get("args", {}))])
    out += [figure(d / "lag_sweep.png", "Final eval loss / memoryless baseline against T.")]
    t = ["| task | arch | T | seeds | steps | H | loss / baseline (mean ± sd) | train s/point |",
         "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t.append(f"| {r['task']} | {r['arch']} | {r['seq_len']} | {r['seeds']} | {r['steps']} | "
                 f"{r['hidden']} | {fmt_num(r.get('loss_over_baseline_mean'))} ± "
                 f"{fmt_num(r.get('loss_over_baseline_sd'), '.2g')} | "
                 f"{fmt_num(r.get('wall_time_s'), '.0f')} |")
    out += [table_block("\n".join(t)), bullets(ANCHORS["lag"])]
    return out + _long_runs(R, man)


def _div(v, d):
    """``v / d``, or None when ``v`` is missing (a NaN stored as null)."""
    return None if v is None else v / d


def _long_runs(R: Path, man: dict) -> list:
    """Single longer runs (FULL: ``R/long_runs/<name>``), one table row each."""
    rows = []
    for d in sorted((R / "long_runs").glob("*/summary.json")):
        s, c = read_if_present(d), read_if_present(d.parent / "config.json") or {}
        f, base = s.get("final", {}), s.get("task", {}).get("baseline")
        per_seed = f.get("eval/loss", {}).get("per_seed", [])
        ratio = ", ".join(fmt_num(_div(v, base)) for v in per_seed) if base else "—"
        acc = f.get("eval/accuracy", {}).get("mean")
        rows.append(f"| `{d.parent.name}` | {c.get('task')} | {c.get('arch')} | "
                    f"{c.get('seq_len')} | {c.get('hidden')} | {s.get('steps')} | {ratio} | "
                    f"{'—' if acc is None else f'{100 * acc:.1f} %'} | "
                    f"{fmt_num(_div(s.get('wall_time_s'), 60), '.1f')} |")
    if not rows:
        return []
    cmds = [_cmd(man, d.parent.name, "") for d in sorted((R / "long_runs").glob("*/summary.json"))]
    head = ["| run | task | arch | T | H | steps | final loss / baseline (per seed) | accuracy "
            "| train min |", "|---|---|---|---|---|---|---|---|---|"]
    return [heading(3, "Longer single runs"), code_block("\n".join(c for c in cmds if c)),
            table_block("\n".join(head + rows))]


def section_stability(R: Path, man: dict) -> list:
    d = R / "stability"
    res = read_if_present(d / "results.json")
    out = [heading(2, "4. Training stability and gradient clipping")]
    cmd = _cmd(man, "stability", f"python experiments/stability.py --out {d}")
    if res is None:
        return out + [para("Not run."), code_block(cmd)]
    c = res["config"]
    out += [para(f"Adding T={c['seq_len']}, H={c['hidden']}, SGD lr {c['lr']} momentum 0.9, "
               f"{c['steps']} steps, each seed its own run; the RNN starts at recurrent scale "
               f"1.5. Diverged = the loop stopped on a non-finite loss/gradient; failed = "
               f"diverged or final loss ≥ baseline."), code_block(cmd), _config_block(c),
            figure(d / "stability.png", "Fraction of seeds diverged, without and with clipping.")]
    t = ["| arch | clip | seeds diverged | fraction failed | median loss / baseline (finished) |",
         "|---|---|---|---|---|"]
    for s in res["summary"]:
        m = s["median_loss_over_baseline"]
        t.append(f"| {s['arch']} | {s['clip'] or 'none'} | {s['diverged']}/{s['seeds']} | "
                 f"{s['failed_fraction']:.2f} | {'—' if m is None else f'{m:.3g}'} |")
    out += [table_block("\n".join(t)),
            para("The essay: exploding gradients are 'easily mitigated with gradient clipping' "
               "(Pascanu et al. 2013 introduced global-norm clipping for this).")]
    return out


def section_imdb(R: Path, man: dict, imdb_dirs: list[Path]) -> list:
    out = [heading(2, "5. IMDB: the essay's figures and RNN vs LSTM vs GRU")]
    e = R / "eda"
    stats = read_if_present(e / "stats.json")
    out.append(code_block(_cmd(man, "eda", f"lstm-jax eda imdb --out {e}")))
    if stats is None:
        out.append(para("EDA not run (no IMDB archive, or the stage was skipped)."))
    else:
        for name, cap in (("sentiment.png", "Sentiment distribution (counts per class and "
                           "split)."), ("length_hist.png", "Review lengths in tokens."),
                          ("length_box.png", "Length by sentiment.")):
            if (e / name).is_file():
                out.append(figure(e / name, cap))
        out.append(("details", "stats.json", _clipped(json.dumps(stats, indent=1), e / "stats.json")))
        out.append(bullets(ANCHORS["eda"]))
        out.append(para("What the data say: " + eda_verdict(stats)))
    for di in imdb_dirs:
        res = read_if_present(di / "results.json")
        if not res or not res.get("runs"):
            continue
        out += [heading(3, f"Models (results from {di})"),
                code_block(_cmd_for(man, "imdb_compare", di,
                                    f"python experiments/imdb_compare.py --out {di}"
                                    "   # reused, not rerun")),
                _config_block(read_if_present(di / "config.json") or {})]
        if (di / "imdb_compare.png").is_file():
            out.append(figure(di / "imdb_compare.png", "Held-out accuracy during training and "
                            "full-test accuracy with the anchors."))
        if (di / "table.md").is_file():
            out.append(table_block((di / "table.md").read_text()))
        archs = {r["arch"] for r in res["runs"]}
        missing = sorted({"rnn", "lstm", "gru"} - archs)
        if missing:
            out.append(para(f"Not (yet) in these results: {', '.join(missing)}."))
        out.append(bullets(ANCHORS["imdb"]))
        break
    else:
        out.append(para("IMDB models: not run (no results.json in "
                        + ", ".join(map(str, imdb_dirs)) + "); `make reproduce FULL=1` runs "
                        "experiments/imdb_compare.py."))
    best = R / "imdb_best"
    if (best / "table.md").is_file():
        out += [heading(3, "The best LSTM setting (goal: ≥ 89 % in under 30 minutes)"),
                code_block(_cmd(man, "imdb_best", f"python experiments/imdb_compare.py --out {best}")),
                _config_block(read_if_present(best / "config.json") or {}),
                table_block((best / "table.md").read_text())]
    return out


def _clipped(text: str, source: Path, limit: int = 6000) -> str:
    """``text``, or its first ``limit`` characters and a line saying it was cut and where the
    whole file is."""
    if len(text) <= limit:
        return text
    return (text[:limit] + f"\n… truncated: {limit:,} of {len(text):,} characters shown; "
            f"the whole file is {source}")


def section_comparison(R: Path, man: dict) -> list:
    d = R / "comparison"
    out = [heading(2, "6. The essay's table, measured")]
    cmd = _cmd(man, "comparison",
               f"python experiments/comparison_table.py --results {R} --out {d}")
    res = read_if_present(d / "comparison.json")
    if res is None or not (d / "comparison.md").is_file():
        return out + [para("Not run."), code_block(cmd)]
    out += [code_block(cmd), _config_block(res["config"]), table_block((d / "comparison.md").read_text()),
            para("Timing rows were measured on this machine while it was shared (see the load "
               "averages in the header): treat them as ratios, not absolute speeds. Rows marked "
               "'not run' have no result file yet; nothing is filled in by hand.")]
    return out


def build_blocks(results: Path, imdb_dirs: list[Path]) -> list:
    man = read_if_present(results / "manifest.json") or {}
    machine = None
    for sub in ("decay_init", "stability"):
        r = read_if_present(results / sub / "results.json")
        if r and "machine" in r:
            machine = r["machine"]
            break
    head = [heading(1, "lstm_jax: reproducing the essay's claims"),
            para(f"Built {time.strftime('%Y-%m-%d %H:%M')} from the results in {results}: "
                 f"{what_was_run(man)} Made by `python -m lstm_jax.report` from results files "
                 "only (no training).")]
    if man.get("stages"):
        longest: dict = {}
        for h in man.get("history", []):
            if h["seconds"] > longest.get(h["stage"], {"seconds": -1})["seconds"]:
                longest[h["stage"]] = h
        t = ["| stage | command | wall s, last run (reuses results) | load avg before → after | "
             "wall s, longest recorded run (load before → after) |", "|---|---|---|---|---|"]
        for name, s in man["stages"].items():
            lg = longest.get(name)
            t.append(f"| {name} | `{s['command']}` | {s.get('seconds', s.get('skipped', ''))} | "
                     f"{s.get('load_before', '')} → {s.get('load_after', '')} | "
                     + ("" if lg is None else f"{lg['seconds']} ({lg['load_before']} → "
                        f"{lg['load_after']})") + " |")
        head.append(table_block("\n".join(t)))
        if "total_s" in man:
            head.append(para(f"Total wall time of the last reproduce run: {man['total_s']:.0f} s."))
        rec = man.get("recorded_training")
        if rec:
            head.append(para(f"Training time recorded by the {rec['runs']} runs behind these results "
                             f"(each run's summary.json, summed over resumes): "
                             f"{rec['total_s'] / 3600:.1f} h — what this mode costs from scratch "
                             "on this machine, plus evaluation and the probes."))
    if machine:
        head.append(("details", "machine", json.dumps(machine, indent=1, default=str)))
    dis = disagreements(results, imdb_dirs)
    if dis:
        head += [heading(2, "Where the data disagree with the essay or the anchors"), bullets(dis),
                 para("Quick-mode sizes are small (see each section's configuration); they show "
                    "the shape of each effect, and `make reproduce FULL=1` the README's sizes.")]
    return (head + section_decay_init(results, man)
            + section_decay_trained(results, man, imdb_dirs) + section_lag(results, man)
            + section_stability(results, man) + section_imdb(results, man, imdb_dirs)
            + section_comparison(results, man))


def what_was_run(man: dict) -> str:
    """One sentence on what made the results folder, from its ``manifest.json``."""
    mode = man.get("mode")
    if not man:
        return ("no manifest.json, so not a `make reproduce` folder; each section shows what the "
                "folder holds.")
    sizes = {"quick": "`make reproduce` at quick sizes (minutes; the shape of each effect)",
             "full": "`make reproduce FULL=1` at the sizes the README quotes"}
    ran = [n for n, s in man.get("stages", {}).items() if "seconds" in s and n != "report"]
    skipped = [n for n, s in man.get("stages", {}).items() if "skipped" in s]
    text = sizes.get(mode, f"`experiments/reproduce.py` (mode {mode!r})") + "; stages run: "
    text += (", ".join(ran) or "none") + "."
    if skipped:
        text += " Skipped: " + ", ".join(skipped) + "."
    return text


def write_report(results: str | Path, out: str | Path, imdb: str | list | None = None
                 ) -> tuple[Path, Path]:
    """Write ``out/report.md`` and ``out/report.html`` from the files under ``results``.

    Args:
      results: the results folder (what ``experiments/reproduce.py --out`` wrote).
      out: where the report goes (created).
      imdb: folders of ``experiments/imdb_compare.py`` results (comma-separated or a list);
        default ``results/imdb_compare``. Nothing else is read.
    """
    from lstm_jax.io import atomic_write_text, ensure_out_dir

    results, out = Path(results), ensure_out_dir(out)
    if imdb is None:
        imdb = [results / "imdb_compare"]
    dirs = [Path(x) for x in (imdb.split(",") if isinstance(imdb, str) else imdb) if x]
    blocks = build_blocks(results, dirs)
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, render_markdown(blocks, out))
    atomic_write_text(page, render_html(blocks))
    return md, page


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lstm_jax.report",
        description="Build report.md and a standalone report.html from one results folder "
                    "(written by experiments/reproduce.py). Reads only that folder (and --imdb "
                    "when given) and never trains: a missing result is shown as 'not run' with "
                    "the command that makes it.")
    p.add_argument("--results", default="runs/reproduce", metavar="DIR",
                   help="the results folder to report on (experiments/reproduce.py --out; "
                        "default: runs/reproduce)")
    p.add_argument("--imdb", default=None, metavar="DIR[,DIR]",
                   help="folders of experiments/imdb_compare.py results, comma-separated; "
                        "default: DIR/imdb_compare inside --results")
    p.add_argument("--out", default="runs/report", metavar="DIR",
                   help="where report.md, report.html and the copied figures go (default: runs/report)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    md, page = write_report(args.results, args.out, args.imdb)
    print(f"wrote {md} and {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
