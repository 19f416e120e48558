"""Smoke test of the benchmark suite: one tiny configuration runs end to end and the report
reads its results. (The suite itself is `make bench`; it is not part of the test run.)"""

import pytest

from benchmarks import report, roofline, train
from benchmarks.timing import interleaved_medians, paired_ratio_quartiles
from benchmarks.torch_setup import setup_torch


def test_matmul_flops_by_hand():
    # LSTM, B=2, T=3, D=5, H=7: G·H = 28; per token 2·28·(D + H) forward (projection +
    # recurrent), 2·28·H backward data, 2·28·(H + D) weight gradients.
    per_token = 2 * 28 * (5 + 7) + 2 * 28 * 7 + 2 * 28 * (7 + 5)
    assert roofline.matmul_flops("lstm", 2, 3, 5, 7) == pytest.approx(2 * 3 * per_token)


def test_interleaved_medians_alternates():
    order = []
    out = interleaved_medians({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                              reps=3, warmup=1, pause=0.0)
    assert order == ["a", "b"] * 4
    assert set(out) == {"a", "b"} and len(out["a"]["times_s"]) == 3
    assert all(v["minor_faults"] >= 0 for v in out.values())


def test_paired_ratio_quartiles_by_hand():
    # ratios 1, 2, 3, 4, 5 (inclusive quartiles: 2, 3, 4), whatever order the pairs come in
    q = paired_ratio_quartiles([5.0, 2.0, 9.0, 4.0, 1.0], [1.0, 1.0, 3.0, 1.0, 1.0])
    assert q == pytest.approx({"q25": 2.0, "median": 3.0, "q75": 4.0})
    assert paired_ratio_quartiles([3.0], [2.0]) == pytest.approx(
        {"q25": 1.5, "median": 1.5, "q75": 1.5})
    with pytest.raises(ValueError, match="equally many"):
        paired_ratio_quartiles([1.0, 2.0], [1.0])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_step_products_tiny_run(dtype):
    from benchmarks import step_products

    torch = setup_torch()
    res = step_products.run(torch, hidden=(4,), batch=2, steps=3, reps=2, dtype=dtype,
                            log=lambda m: None)
    (row,) = res["rows"]
    assert row["dtype"] == dtype
    assert set(row["timings"]) == {"jax_forward", "jax_backward", "torch_forward",
                                   "torch_backward"}
    assert all(len(t["times_s"]) == 2 and t["median_s"] > 0 for t in row["timings"].values())
    q = row["jax_vs_torch_paired"]["forward"]
    assert q["q25"] <= q["median"] <= q["q75"]


def test_report_shows_paired_quartiles_where_recorded():
    base = {"median_s": 0.1, "tokens_per_s": 10.0, "vs_torch": 1.05, "vs_roofline": 2.0}
    assert report._vs_torch(base) == "**1.05×**"  # results written before the field existed
    paired = {**base, "vs_torch_paired": {"q25": 0.98, "median": 1.04, "q75": 1.12}}
    assert report._vs_torch(paired) == "**1.05×** (0.98–1.12)"
    assert report._vs_torch({**base, "vs_torch": None}) == "–"


def test_bf16_rows_get_their_own_table_against_both_pytorch_precisions():
    def impl(s, vs, vs_bf16=None):
        return {"median_s": s, "tokens_per_s": 1.0, "vs_torch": vs, "vs_roofline": 2.0,
                **({"vs_torch_bf16": vs_bf16} if vs_bf16 else {})}
    row = {"arch": "lstm", "H": 256, "T": 100,
           "impls": {"jax_fused": impl(0.12, 1.1, 1.7), "jax_fused_bf16": impl(0.09, 0.8, 1.3),
                     "torch": impl(0.11, 1.0, 1.5), "torch_bf16": impl(0.07, 0.6, 1.0)}}
    assert report.bf16_table({"rows": [row]})[2] == (
        "| lstm | 256 | 100 | 120.0 | 90.0 | 110.0 | 70.0 | **0.80×** | **1.30×** |")
    assert report.bf16_table({"rows": [{**row, "impls": {"jax_fused": impl(0.1, 1.0)}}]}) == []
    main = report.train_table({"rows": [{**row, "roofline_s": 0.05, "timings": {}}]})
    assert "bf16" not in " ".join(main)  # the main table stays float32


def test_run_rejects_an_unknown_impl(capsys):
    from benchmarks.run import parse_args

    with pytest.raises(SystemExit) as e:
        parse_args(["--impls", "fused,fused_fp16"])
    assert e.value.code == 2
    assert "'fused_fp16' not allowed; choose from scan, fused, fused_bf16" in capsys.readouterr().err


@pytest.mark.slow  # ~10 s of CPU (imports, one compile); `make bench BENCH_ARGS=--quick` covers it too
def test_one_tiny_config_and_report(tmp_path):
    torch = setup_torch()
    row = train.bench_shape(torch, "lstm", B=2, T=3, D=2, H=3, impls=("fused", "fused_bf16"),
                            reps=1)
    assert set(row["impls"]) == {"jax_fused", "jax_fused_bf16", "torch", "torch_bf16"}
    assert row["impls"]["torch_bf16"]["vs_torch_bf16"] == pytest.approx(1.0)
    assert row["impls"]["jax_fused"]["tokens_per_s"] > 0
    assert row["impls"]["torch"]["vs_torch"] == pytest.approx(1.0)
    assert row["impls"]["torch"]["vs_torch_paired"]["median"] == pytest.approx(1.0)
    from lstm_jax.io import write_json

    write_json(tmp_path / "train_step.json", {
        "machine": {"cpu": "x", "cpu_count": 2, "backend": "cpu", "versions": {}},
        "threads": 2, "loadavg_start": [0.0], "loadavg_end": [0.0], "rows": [row]})
    text = report.write(tmp_path).read_text()
    assert "| lstm | 3 | 3 |" in text and "JAX fused / PyTorch" in text
    assert "Machine: x, 2 cores" in text  # results written before cpu_detail existed
    assert "JAX fused bf16 / PyTorch autocast bf16" in text


def test_a_pytorch_autocast_that_cannot_run_is_skipped_with_its_reason(monkeypatch):
    """On a CPU without AVX512-BF16, oneDNN builds no bfloat16 LSTM ("could not create a primitive
    descriptor"): the suite records that and goes on instead of losing every other row."""
    torch = setup_torch()
    real = train.steps.torch_step

    def torch_step(*args, autocast=False, **kwargs):
        if not autocast:
            return real(*args, **kwargs)

        def fail():
            raise RuntimeError("could not create a primitive descriptor for the LSTM forward")
        return fail

    monkeypatch.setattr(train.steps, "torch_step", torch_step)
    row = train.bench_shape(torch, "lstm", B=2, T=3, D=2, H=3, impls=("fused_bf16",), reps=1)
    assert "torch_bf16" not in row["impls"] and "vs_torch_bf16" not in row["impls"]["jax_fused_bf16"]
    assert "primitive descriptor" in row["skipped"]["torch_bf16"]
    other = {**row, "arch": "gru", "skipped": {}}
    lines = report.bf16_table({"rows": [row, other]})
    cells = lines[2].split(" | ")
    assert cells[6] == "–" and cells[7].startswith("**") and cells[8] == "– |"
    assert lines[-1] == ("\nPyTorch autocast bf16 row skipped at lstm H=3 T=3: RuntimeError: could not "
                         "create a primitive descriptor for the LSTM forward")
    assert not any("autocast" in line for line in report.train_table({"rows": [row]}))


def test_report_names_the_cpu_family_and_isa():
    machine = {"cpu": "AMD EPYC", "cpu_detail": {"cpu family": "23", "model": "49",
                                                 "isa": ["avx2", "fma"]}}
    assert report._cpu_detail(machine) == " (family 23 model 49; avx2 fma)"
    assert report._cpu_detail({"cpu": "x", "cpu_detail": {"isa": []}}) == ""


@pytest.mark.slow  # spawns a fresh interpreter that imports JAX and compiles once
def test_each_shape_runs_in_a_fresh_process():
    logged = []
    rows = train.run(None, [("rnn", 2, 3, 2, 3)], impls=("fused",), reps=1, isolate=True,
                     log=logged.append)
    assert rows[0]["impls"]["jax_fused"]["tokens_per_s"] > 0
    assert rows[0]["roofline_library"] == "numpy" and "faults" in logged[0]


def test_imdb_pipeline_benchmark_on_a_small_archive(tmp_path, monkeypatch):
    """The pipeline benchmark on a small archive of the original layout: the counts it reports
    are the archive's (reviews written, tokens from the tokeniser), and the report renders them."""
    import json

    from benchmarks import imdb_pipeline
    from lstm_jax.data import tokenize
    from lstm_jax.io import write_json
    from tests.test_imdb_task import write_archive

    monkeypatch.setenv("LSTM_JAX_CACHE", str(tmp_path / "never_used"))
    path = write_archive(tmp_path / "aclImdb_v1.tar.gz", n_train=6, n_test=4, n_unsup=3)
    res = imdb_pipeline.run(path, vocab_size=10, max_len=8, batch=4, vectors=True, vector_dim=3,
                            expected_sizes=None)
    import tarfile

    with tarfile.open(path) as tar:
        texts = [tar.extractfile(m).read().decode() for m in tar.getmembers()
                 if m.isfile() and "/unsup/" not in m.name and m.name.endswith(".txt")]
    assert res["prepare_cold"]["reviews"] == 10 == len(texts)
    assert res["prepare_cold"]["tokens"] == sum(len(tokenize(t)) for t in texts)
    for k in ("prepare_cold", "arrays_warm", "first_batch_warm", "vectors_cold"):
        assert res[k]["seconds"] > 0, k
    assert not (tmp_path / "never_used").exists()  # a private cache, removed afterwards
    write_json(tmp_path / "imdb_pipeline.json", json.loads(json.dumps(res)))
    text = report.write(tmp_path).read_text()
    assert f"({res['prepare_cold']['tokens']:,} tokens)" in text and "PPMI-SVD" in text


def test_imdb_buckets_benchmark_on_a_small_archive(tmp_path, monkeypatch):
    """The bucket benchmark times one step per bucket of the task's own buckets, and the
    report renders them."""
    import json

    from benchmarks import imdb_buckets
    from lstm_jax.io import write_json
    from lstm_jax.tasks import imdb as imdb_task
    from lstm_jax.tasks import make_task
    from tests.test_imdb_task import V, write_archive

    monkeypatch.setenv("LSTM_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(imdb_task, "EXPECTED_SIZES", None)
    path = str(write_archive(tmp_path / "aclImdb_v1.tar.gz"))
    res = imdb_buckets.run(seq_len=40, buckets=3, reps=2, hidden=4, embed_dim=4, vocab_size=V,
                           batch=2, data=path)
    want = make_task("imdb", 40, data=path, vocab_size=V, buckets=3).bucket_lengths
    unbucketed, bucketed = res["rows"]
    assert [b["length"] for b in unbucketed["per_bucket"]] == [40]
    assert tuple(b["length"] for b in bucketed["per_bucket"]) == want
    assert all(len(b["times_s"]) == 2 and min(b["times_s"]) > 0 for b in bucketed["per_bucket"])
    assert res["speedup"] == pytest.approx(
        unbucketed["epoch_mean_step_s"] / bucketed["epoch_mean_step_s"])
    write_json(tmp_path / "imdb_buckets.json", json.loads(json.dumps(res)))
    text = report.write(tmp_path).read_text()
    assert "IMDB training step with length buckets" in text and f"({want[-1]})" in text


def test_probe_cost_tiny_and_report(tmp_path):
    """The probe-cost section: every probe is timed beside training steps, its ratio is the ratio
    of the medians in its loop, and the report renders it."""
    from benchmarks import probe_cost
    from lstm_jax.io import write_json

    res = probe_cost.run(["lstm"], batch=2, features=2, hidden=3, seq_len=4, reps=2,
                         isolate=False, log=lambda m: None)
    lstm = res["archs"]["lstm"]
    assert set(lstm["timings"]) == {"train_step", "hutchinson_k4[hidden]", "exact[hidden]",
                                    "hutchinson_k4[hidden+cell+cec]", "exact[hidden+cell+cec]"}
    t = lstm["timings"]
    for group, name in (("hutchinson", "hutchinson_k4[hidden]"), ("exact", "exact[hidden]")):
        assert lstm["ratio_to_train_step"][name] == pytest.approx(
            t[name]["median_s"] / lstm["train_step_by_group"][group]["median_s"])
    assert all(len(r["times_s"]) == 2 and r["first_call_s"] > 0 for r in t.values())
    write_json(tmp_path / "probe_cost.json", res)
    text = report.write(tmp_path).read_text()
    assert "| lstm |" in text and "hutchinson_k4[hidden]" in text and "alternating" in text
