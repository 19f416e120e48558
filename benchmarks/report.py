"""The markdown table ``results/README.md``, made from the JSON results files only."""

from __future__ import annotations

from pathlib import Path

from lstm_jax.io import atomic_write_text, read_json

NAMES = {"jax_scan": "JAX scan", "jax_fused": "JAX fused", "jax_cudnn": "JAX cuDNN",
         "torch": "PyTorch"}
#: The mixed-precision rows, in their own table (the main table is float32 throughout).
BF16_NAMES = {"jax_fused_bf16": "JAX fused bf16", "torch_bf16": "PyTorch autocast bf16"}


def _ms(s):
    return f"{s * 1e3:.1f}"


def _vs_torch(v: dict, key: str = "vs_torch") -> str:
    """The ratio of medians, and the quartiles of the per-repetition ratios where recorded."""
    if v.get(key) is None:
        return "–"
    q = v.get(f"{key}_paired")
    return f"**{v[key]:.2f}×**" + (f" ({q['q25']:.2f}–{q['q75']:.2f})" if q else "")


def _paired(data: dict) -> bool:
    return any(v.get("vs_torch_paired") for r in data["rows"] for v in r["impls"].values())


def train_table(data: dict) -> list[str]:
    rows = data["rows"]
    impls = [k for k in NAMES if any(k in r["impls"] for r in rows)]
    head = ["arch", "H", "T", "roofline ms"]
    for k in impls:
        head += [f"{NAMES[k]} ms", f"{NAMES[k]} tok/s"]
        if k != "torch":
            head.append(f"{NAMES[k]} / PyTorch")
        head.append(f"{NAMES[k]} / roofline")
    faults = all("minor_faults" in t for r in rows for t in r["timings"].values())
    if faults:
        head.append("minor page faults / call (" + " · ".join(NAMES[k] for k in impls) + ")")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["arch"], str(r["H"]), str(r["T"]), _ms(r["roofline_s"])]
        for k in impls:
            v = r["impls"].get(k)
            if v is None:
                cells += ["–"] * (4 if k != "torch" else 3)
                continue
            cells += [_ms(v["median_s"]), f"{v['tokens_per_s']:,.0f}"]
            if k != "torch":
                cells.append(_vs_torch(v))
            cells.append(f"{v['vs_roofline']:.2f}×")
        if faults:
            cells.append(" · ".join(f"{r['timings'][k]['minor_faults']:,.0f}" if k in r["timings"]
                                    else "–" for k in impls))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + _skipped(rows, lambda k: k != "torch_bf16")


def _skipped(rows: list[dict], keep) -> list[str]:
    """A line per skipped implementation that ``keep(name)`` selects: the first reason recorded,
    and the shapes it was skipped at unless that is every row."""
    where: dict[str, list[str]] = {}
    why: dict[str, str] = {}
    for r in rows:
        for k, reason in r.get("skipped", {}).items():
            if keep(k):
                why.setdefault(k, reason)
                where.setdefault(k, []).append(f"{r['arch']} H={r['H']} T={r['T']}")
    names = NAMES | BF16_NAMES
    at = {k: "" if len(w) == len(rows) else f" at {', '.join(w)}" for k, w in where.items()}
    return [f"\n{names.get(k, k)} row skipped{at[k]}: {why[k]}" for k in why]


def bf16_table(data: dict) -> list[str]:
    """The fused layer with bfloat16 products against PyTorch in float32 and under autocast."""
    rows = [r for r in data["rows"] if "jax_fused_bf16" in r["impls"]]
    if not rows:
        return []
    head = ["arch", "H", "T", "JAX fused ms", "JAX fused bf16 ms", "PyTorch ms",
            "PyTorch autocast bf16 ms", "JAX fused bf16 / PyTorch",
            "JAX fused bf16 / PyTorch autocast bf16"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        im = r["impls"]
        ms = [_ms(im[k]["median_s"]) if k in im else "–"
              for k in ("jax_fused", "jax_fused_bf16", "torch", "torch_bf16")]
        bf = im["jax_fused_bf16"]
        lines.append("| " + " | ".join([r["arch"], str(r["H"]), str(r["T"]), *ms, _vs_torch(bf),
                                        _vs_torch(bf, "vs_torch_bf16")]) + " |")
    return lines + _skipped(rows, lambda k: k == "torch_bf16")


def compile_table(data: dict) -> list[str]:
    rows = data["rows"]
    r0 = rows[0]
    lines = [f"{r0['arch']}, B={r0['B']}, D={r0['D']}, H={r0['H']}; memory from XLA's buffer "
             "assignment (`compiled.memory_analysis()`), peak ≈ arguments + outputs + temp − alias.",
             "",
             "| impl | remat | T | trace+lower s | compile s | temp MiB | peak MiB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["memory_bytes"]
        lines.append(f"| {r['impl']} | {r['remat']} | {r['T']} | {r['lower_s']:.2f} | "
                     f"{r['compile_s']:.2f} | {m['temp'] / 2**20:.1f} | "
                     f"{m['peak_estimate'] / 2**20:.1f} |")
    lines += ["", "Ratios (targets: compile(T=10⁴)/compile(T=10²) ≤ 1.5; "
              "peak(T=10⁴, remat)/peak(T=10⁴, no remat) ≤ 0.2):", ""]
    by = {(r["impl"], r["remat"], r["T"]): r for r in rows}
    Ts = sorted({r["T"] for r in rows})
    lo, hi = Ts[0], Ts[-1]
    for impl in dict.fromkeys(r["impl"] for r in rows):
        a, b = by.get((impl, False, lo)), by.get((impl, False, hi))
        if a and b:
            lines.append(f"- {impl}: compile T={hi} / T={lo}: "
                         f"{b['compile_s'] / a['compile_s']:.2f}× (compile only), "
                         f"{b['lower_plus_compile_s'] / a['lower_plus_compile_s']:.2f}× "
                         "(trace+lower+compile)")
        c = by.get((impl, True, hi))
        if b and c:
            pb, pc = b["memory_bytes"]["peak_estimate"], c["memory_bytes"]["peak_estimate"]
            lines.append(f"- {impl}: peak memory at T={hi}, remat / no remat: {pc / pb:.3f} "
                         f"({pc / 2**20:.0f} MiB / {pb / 2**20:.0f} MiB)")
    return lines


def _cpu_detail(machine: dict) -> str:
    """`` (family 23 model 49; avx2 fma)``, or "" for results written before ``cpu_detail``."""
    d = machine.get("cpu_detail")
    if not d:
        return ""
    fm = f"family {d['cpu family']} model {d['model']}" if "cpu family" in d else ""
    isa = " ".join(d.get("isa", []))
    inner = "; ".join(p for p in (fm, isa) if p)
    return f" ({inner})" if inner else ""


def write(out: Path) -> Path:
    out = Path(out)
    parts = ["# Benchmark results", "",
             "Made by `make bench` (`python -m benchmarks.run`) from the JSON files in this "
             "directory; see `benchmarks/README.md` for the method and how to run on a GPU.", ""]
    train = out / "train_step.json"
    if train.exists():
        d = read_json(train)
        m = d["machine"]
        ts = d.get("torch_settings", {})
        parts += ["## Training step (forward + BPTT, last-step readout, grads of all parameters)", "",
                  f"Machine: {m['cpu']}{_cpu_detail(m)}, {m['cpu_count']} cores"
                  + (f", this run pinned to {d['cores_pinned']} core(s)" if d.get("cores_pinned")
                     else "")
                  + f"; JAX and PyTorch use {d['threads']} thread(s); backend {m['backend']}"
                  + (f", {len(m['devices'])} JAX devices (each JAX step splits its batch over "
                     "them)" if len(m.get("devices", [])) > 1 else "") + "; "
                  f"jax {m['versions'].get('jax')}, torch {m['versions'].get('torch')}. "
                  f"PyTorch: flush-to-zero (`set_flush_denormal`) = {ts.get('flush_denormal')}, "
                  f"{ts.get('num_threads')} threads, oneDNN = {ts.get('mkldnn_enabled')}. "
                  f"XLA_FLAGS = `{d.get('xla_flags') or ''}`, "
                  f"OMP_WAIT_POLICY = `{d.get('omp_wait_policy') or ''}`, "
                  f"GLIBC_TUNABLES = `{d.get('glibc_tunables') or ''}`. "
                  f"Load average at start/end: {d['loadavg_start'][0]:.1f} / "
                  f"{d['loadavg_end'][0]:.1f}"
                  + (" (above the core count: the machine was shared with other jobs, so absolute "
                     "times are inflated; ratios come from alternating the implementations inside "
                     "one repetition loop)." if d["loadavg_start"][0] > m["cpu_count"] else "."),
                  "",
                  ("Each shape ran in a fresh process. " if d.get("process_per_shape") else "")
                  + f"B={d['rows'][0]['B']}, D={d['rows'][0]['D']}, float32; median of "
                  f"{len(next(iter(d['rows'][0]['timings'].values()))['times_s'])} "
                  "repetitions after one warm-up. The roofline is the time of the matmuls alone "
                  f"(best library: {', '.join(sorted({r['roofline_library'] for r in d['rows']}))})."
                  + (" In the `/ PyTorch` columns, the ratio of medians, then in parentheses the "
                     "quartiles of the ratios within each repetition (the two calls of a "
                     "repetition run back to back)." if _paired(d) else ""),
                  ""]
        parts += train_table(d) + [""]
        if bf16_table(d):
            parts += ["### Mixed precision: bfloat16 products", "",
                      "`matmul_dtype=\"bfloat16\"` (`lstm_jax.fused`): the input projection and "
                      "the per-step products `h W_hh`, `dz W_hhᵀ` take bfloat16 operands and "
                      "accumulate in float32; gates, cell state and weight gradients stay float32. "
                      "PyTorch's counterpart is `torch.autocast(\"cpu\", torch.bfloat16)` around "
                      "its forward pass (oneDNN's bfloat16 RNN; its gates and states are "
                      "bfloat16 too). Same repetitions as above, alternating with the float32 "
                      "rows.", ""]
            parts += bf16_table(d) + [""]
    cm = out / "compile_memory.json"
    if cm.exists():
        parts += ["## Compile time and peak memory against T", ""]
        parts += compile_table(read_json(cm)) + [""]
    for name, title, table in (("probe_cost.json", "Probe cost", probe_table),
                               ("imdb_pipeline.json", "IMDB input pipeline", pipeline_table),
                               ("imdb_buckets.json", "IMDB training step with length buckets",
                                buckets_table)):
        parts += [f"## {title}", ""]
        f = out / name
        parts += (table(read_json(f)) if f.exists()
                  else [f"Not measured yet (`{name}` is written by its own benchmark)."]) + [""]
    return atomic_write_text(out / "README.md", "\n".join(parts))


def probe_table(d: dict) -> list[str]:
    """``probe_cost.json`` (benchmarks/probe_cost.py): each probe's time / one training step."""
    c = d["config"]
    how = ("each probe alternating with training steps in one repetition loop"
           + (", each architecture in a fresh process" if c.get("process_per_arch") else "")
           if c.get("interleaved") else "timed one after another")
    lines = [f"B={c['batch']}, D={c['features']}, H={c['hidden']}, T={c['seq_len']}; median of "
             f"{c['reps']} calls, {how} (`python -m benchmarks.probe_cost`). Targets: Hutchinson "
             f"≤ {d['targets']['hutchinson_train_steps_max']} training steps, exact ≤ "
             f"{d['targets']['exact_train_steps_max']:g}.", "",
             "| arch | train step ms | probe | time / train step |", "|---|---|---|---|"]
    for arch, r in d["archs"].items():
        step = _ms(r["timings"]["train_step"]["median_s"])
        for name, ratio in r["ratio_to_train_step"].items():
            lines.append(f"| {arch} | {step} | {name} | {ratio:.2f}× |")
    return lines


def buckets_table(d: dict) -> list[str]:
    """``imdb_buckets.json`` (benchmarks/imdb_buckets.py)."""
    st = d["settings"]
    kind = "bidirectional LSTM" if st["bidirectional"] else "LSTM"
    lines = [f"`python -m benchmarks.imdb_buckets`: {kind}, H={st['hidden']}, embedding "
             f"{st['embed_dim']}, batch {st['batch']}, last {st['seq_len']} tokens; median of "
             f"{st['reps']} steps per bucket; load average at start "
             f"{d['loadavg_start'][0]:.1f}. Speed-up over an epoch: **{d['speedup']:.2f}×**.", "",
             "| buckets | compile s | ms/step, epoch mean | ms/step per bucket (its length) |",
             "|---|---|---|---|"]
    for r in d["rows"]:
        per = ", ".join(f"{1000 * b['median_s']:.0f} ({b['length']})" for b in r["per_bucket"])
        lines.append(f"| {r['buckets']} | {r['compile_s']:.1f} | "
                     f"{1000 * r['epoch_mean_step_s']:.0f} | {per} |")
    return lines


def pipeline_table(d: dict) -> list[str]:
    """``imdb_pipeline.json`` (benchmarks/imdb_pipeline.py)."""
    p, st = d["prepare_cold"], d["settings"]
    rows = [("prepare, cold (read archive + tokenise train and test, write cache)",
             f"{p['seconds']:.1f} s", f"{p['reviews_per_s']:,.0f} reviews/s, "
             f"{p['tokens_per_s']:,} tokens/s ({p['tokens']:,} tokens)"),
            (f"arrays, warm cache (vocab {st['vocab_size']:,}, L={st['max_len']})",
             f"{d['arrays_warm']['seconds']:.2f} s", ""),
            (f"first batch, warm cache (arrays + device + batch of {st['batch']})",
             f"{d['first_batch_warm']['seconds']:.2f} s", "")]
    if "vectors_cold" in d:
        v = d["vectors_cold"]
        rows.append((f"PPMI-SVD word vectors, cold ({', '.join(v['splits'])}; d={v['dim']})",
                     f"{v['seconds']:.0f} s", "once; cached"))
    load = d.get("loadavg_start", [None])[0]
    return ([f"`python -m benchmarks.imdb_pipeline --vectors`; archive {d['archive_bytes']:,} "
             f"bytes; load average at start {load:.1f}.", "",
             "| step | wall time | throughput |", "|---|---|---|"]
            + [f"| {a} | {b} | {c} |" for a, b, c in rows])
