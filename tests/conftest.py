"""Test configuration: CPU, float32 by default; tests that need float64 use ``jax.enable_x64``.

Compiled programs go to a persistent XLA cache in ``.jax_test_cache/`` (git-ignored), shared by
the xdist workers and by the processes tests start: the same tiny configuration compiled in two
modules or two processes is compiled once. A fresh clone starts with an empty cache.
"""

import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parents[1] / ".jax_test_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
# XLA's optimisation passes cost more than they save on the tiny programs tests compile (a third
# of the time of test_fused + test_probes); the numbers tests compare are unchanged in meaning.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# One XLA thread per process: the xdist workers already fill the cores, and the tiny programs lose
# more to two workers' thread pools contending than they gain from intra-op parallelism (a fifth of
# the suite is 12 % faster this way on the 2-core CPU). Processes tests start inherit it.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")

import pytest  # noqa: E402

# The heaviest tests (10-60 s each on a 2-core CPU), moved out of the default run so that it stays
# under 4 minutes; `make test-all` runs them. Each has a cheaper sibling in the default run that
# exercises the same code path (named after the #).
HEAVY = {
    "tests/test_cli_foundation.py::test_demo_writes_every_part",  # test_cli_runs, test_probes CLI
    "tests/test_experiments.py",  # experiment scripts (make reproduce)
    "tests/test_compare_run.py::test_compare_stops_resumes_and_scores_test_once",  # compare units
    "tests/test_fused_devices.py::test_split_batch_matches_one_device_and_never_gathers",
    # ^ test_train::test_eight_devices_match_one
    "tests/test_benchmarks.py::test_imdb_buckets_benchmark_on_a_small_archive",
    "tests/test_benchmarks.py::test_probe_cost_tiny_and_report",
    "tests/test_crash_resume.py::test_same_command_twice_is_bitwise_identical",
    # ^ test_crash_resume's default test compares a CLI run with an in-process run bitwise
    "tests/test_imdb_buckets.py::test_cli_bucketed_bidirectional_run_resumes_exactly",
    "tests/test_imdb_buckets.py::test_bucketed_step_equals_full_length_step[gru]",  # [lstm]
    "tests/test_imdb_task.py::test_train_cli_end_to_end",  # test_cli_runs
    "tests/test_train.py::test_scan_backward_trains_the_same_model",  # test_fused
    "tests/test_train.py::test_lstm_learns_adding_at_T50[0]",
    "tests/test_train.py::test_vmapped_seeds_equal_separate_runs",  # test_initializers
    "tests/test_recurrence.py::test_padding_never_changes_results",  # test_fused padding
    "tests/test_cli_train.py::test_bfloat16_run_trains_and_records_its_matmul_dtype",
    "tests/test_mixed_precision.py::test_bfloat16_fused_layer_matches_mixed_precision_reference[gru]",
    "tests/test_mixed_precision.py::test_bfloat16_fused_layer_matches_mixed_precision_reference[rnn]",
    "tests/test_embeddings.py::test_frozen_pretrained_embedding_stays_put_in_training",
    "tests/test_embeddings.py::test_embed_lr_scale_scales_only_the_embedding_update[0.0]",
    "tests/test_bidirectional.py::test_bidirectional_gradients_match_scan_impl",
    "tests/test_initializers.py::test_one_seed_equals_its_slice_of_several[gru]",  # [lstm]
    "tests/test_initializers.py::test_one_seed_equals_its_slice_of_several[rnn]",
    "tests/test_probes_flax.py::test_docs_page_runs",  # the page's record is checked elsewhere
    "tests/test_imdb_buckets.py::test_bucketed_step_equals_full_length_step[lstm]",
    "tests/test_mixed_precision.py::test_bfloat16_fused_layer_matches_mixed_precision_reference[lstm]",
    # ^ test_mixed_precision's per-step bfloat16 checks
    "tests/test_embeddings.py::test_embed_lr_scale_scales_only_the_embedding_update[0.25]",  # [1.0]
    "tests/test_cell_lru.py::test_gradients_match_finite_differences_of_numpy_loop",
    # ^ the parallel scan's gradients against the sequential loop's
    "tests/test_cell_lru.py::test_probes_match_jacrev_of_reference_loop",  # the closed form
    "tests/test_cli_foundation.py::test_console_script_exit_code_and_no_traceback",  # CLI in-process
    "tests/test_fused.py::test_fused_matches_scan_float32[lstm]",  # the float64 comparisons
    "tests/test_probes.py::test_cli_probe_writes_json_and_figures",  # test_cli_runs probe
    "tests/test_probes_flax.py::test_hutchinson_agrees_with_exact_in_expectation_and_time_major_matches",
    "tests/test_imdb_task.py::test_max_readout_against_unpadded_reviews",  # mean/last readouts
    "tests/test_tasks.py::test_batches_are_a_pure_function_of_key_and_step[temporal_order]",  # [copy]
    "tests/test_crash_resume.py::test_kill9_sigterm_and_corruption_then_resume_is_bitwise_identical",
    # ^ test_crash_resume::test_kill9_inside_a_save_then_resume_equals_an_uninterrupted_run (one
    #   kill -9 of a real CLI run, then --resume); SIGTERM in test_interrupts, a corrupt checkpoint
    #   in test_reliability
    "tests/test_cell_indrnn.py::test_training_keeps_u_inside_the_papers_bound",
    # ^ test_project_clips_u_to_the_papers_bound (the projection itself, no training program)
    "tests/test_fused.py::test_padding_gives_unpadded_result[rnn]",
    "tests/test_fused.py::test_padding_gives_unpadded_result[gru]",
    "tests/test_fused.py::test_fused_matches_scan_when_only_the_final_state_is_used[rnn]",
    "tests/test_fused.py::test_fused_matches_scan_when_only_the_final_state_is_used[gru]",
    # ^ the [lstm] cases; every arch's masked steps in test_fused_matches_scan_float64
    "tests/test_tasks.py::test_batches_are_a_pure_function_of_key_and_step[adding_hochreiter]",
    # ^ [adding], [copy]
}


# The longest modules of the default run (30-40 s each on a 2-core CPU, measured with
# `--junitxml`), run first: `--dist loadscope` hands out whole modules in collection order, so a
# long module handed out last keeps one worker busy after the other has finished.
LONGEST_FIRST = ("test_probes", "test_fused", "test_train", "test_crash_resume", "test_cell_exprnn",
                 "test_probes_flax", "test_imdb_task", "test_cell_lru", "test_tasks", "test_cells",
                 "test_recurrence", "test_reliability")


def _module_rank(item) -> int:
    name = Path(item.nodeid.split("::")[0]).stem
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in HEAVY or item.nodeid.split("::")[0] in HEAVY:
            item.add_marker(pytest.mark.slow)
    items.sort(key=_module_rank)  # stable: the order inside a module is kept
