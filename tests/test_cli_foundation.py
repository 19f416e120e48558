"""`lstm-jax info` and `lstm-jax demo`, and the CLI's handling of user errors."""

import json
import subprocess
import sys

import pytest

from lstm_jax.cli import main


def test_info_reports_backend_and_devices(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "cpu" and info["devices"]
    assert info["versions"]["jax"].startswith("0.10")


def test_cpuinfo_reads_the_first_cpu_and_its_isa(tmp_path, monkeypatch):
    from lstm_jax import machine as info

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
                       "model name\t: Intel(R) Xeon(R)\nflags\t\t: fpu avx2 fma avx512f amx_bf16\n\n"
                       "processor\t: 1\nmodel name\t: other\nflags\t\t: sve\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: real_open(
        cpuinfo if f == "/proc/cpuinfo" else f, *a, **k))
    monkeypatch.setattr(info.glob, "glob", lambda pattern: [])
    assert info._cpuinfo() == {"model name": "Intel(R) Xeon(R)", "vendor_id": "GenuineIntel",
                               "cpu family": "6", "model": "143",
                               "isa": ["avx2", "fma", "avx512f", "amx_bf16"]}


def test_demo_writes_every_part(tmp_path):
    out = tmp_path / "demo"
    argv = ["demo", "--seq-len", "30", "--batch", "4", "--hidden", "8", "--train-steps", "4",
            "--train-seq-len", "10", "--out", str(out)]
    assert main(argv) == 0
    states = json.loads((out / "states" / "summary.json").read_text())
    assert set(states["state_norms"]) == {"rnn", "lstm", "gru"}
    assert all(len(v) == 30 for v in states["state_norms"].values())
    # An LSTM has 4 gate blocks, a GRU 3, an RNN 1: parameters in that ratio (plus GRU's b_hn).
    p = states["parameters"]
    assert p["lstm"] == 4 * p["rnn"] and p["gru"] == 3 * p["rnn"] + 8
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["training"]) == {"rnn", "lstm", "gru"}
    for figure in summary["figures"]:
        assert (out / figure).stat().st_size > 10_000, figure
    probe = json.loads((out / "probe" / "probe.json").read_text())
    assert probe["k"][-1] == 29


@pytest.mark.parametrize("argv, needle", [
    (["demo", "--arch", "transformer"], "--arch='transformer' is not allowed; choose one of rnn, lstm, gru"),
    (["demo", "--hidden", "0"], "must be a positive integer"),
    (["demo", "--recurrent-init", "xavier"], "recurrent_init='xavier'"),
    (["demo", "--chrono", "1"], "chrono_tmax"),
])
def test_user_errors_exit_2_with_one_line(argv, needle, capsys):
    assert run_cli(argv + ["--out", "/tmp/lstm_jax_never_written"]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def run_cli(argv) -> int:
    """The exit code of ``lstm-jax ARGV``, whether argparse exits or ``main`` returns."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def test_out_dir_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["demo", "--seq-len", "5", "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_console_script_exit_code_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "lstm_jax.cli", "demo", "--arch", "lstmm"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "choose one of rnn, lstm, gru" in proc.stderr and "Traceback" not in proc.stderr


def test_cpu_devices_splits_the_cpu_and_refuses_once_jax_has_started(capsys):
    import jax

    jax.devices()  # this process's backend is running: its device count is fixed
    assert main(["--cpu-devices", "2", "info"]) == 2
    assert "cpu_devices=2: JAX's backend has already started" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "lstm_jax.cli", "--cpu-devices", "3", "info",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["devices"] == ["cpu:0", "cpu:1", "cpu:2"]
