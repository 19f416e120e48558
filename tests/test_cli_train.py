"""``lstm-jax train``: bad input gives one line and exit code 2; a run resumes from ``--out``."""

import json

import pytest

from lstm_jax.cli import main
from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError

TINY = ["--task", "adding", "--seq-len", "6", "--hidden", "4", "--steps", "4", "--batch", "4",
        "--eval-every", "2", "--eval-size", "4", "--no-progress"]


@pytest.mark.parametrize("argv,message", [
    (["--task", "nope"], "--task='nope' is not allowed; choose one of adding"),
    (["--arch", "transformer"], "arch='transformer' is not allowed; choose one of rnn, lstm, gru"),
    (["--task", "adding_hochreiter", "--seq-len", "10"], "seq_len=10 is not usable"),
    (["--optimizer", "lion"], "optimizer='lion' is not allowed"),
    (["--schedule", "step"], "schedule='step' is not allowed"),
    (["--dropout", "1.5"], "dropout=1.5 must be in [0, 1)"),
    (["--warmup", "10", "--steps", "5"], "warmup=10 must be smaller than steps=5"),
    (["--recurrent-init", "xavier"], "recurrent_init='xavier' is not allowed"),
    (["--matmul-dtype", "fp16"], "matmul_dtype='fp16' is not allowed; choose one of float32, "
                                 "bfloat16"),
    (["--impl", "scan", "--matmul-dtype", "bfloat16"], "matmul_dtype='bfloat16' needs "
                                                       "impl='fused'"),
    (["--arch", "rnn", "--chrono", "50"], "--chrono does not apply to --arch=rnn"),  # not ignored
    (["--arch", "rnn,lstm", "--chrono", "50"], None),  # shared: applies to the LSTM
])
def test_bad_flags_are_one_line_user_errors(argv, message, tmp_path, capsys):
    if message is None:  # the CLI's own checks accept it (plan() validates, trains nothing)
        from lstm_jax.cli import build_parser
        from lstm_jax.cli.train import plan

        plan(build_parser().parse_args(["train", *argv, "--out", str(tmp_path / "run")]))
        TrainConfig(arch="rnn", chrono=50.0).cell()
        return
    code = main(["train", *argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lstm-jax train: error: ") and err.count("\n") == 1
    assert message in err


def test_out_is_a_file_and_resume_without_run(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["train", *TINY, "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_bfloat16_run_trains_and_records_its_matmul_dtype(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--matmul-dtype", "bfloat16", "--out", str(out)]) == 0
    saved = TrainConfig.from_json((out / "config.json").read_text())
    assert saved.matmul_dtype == "bfloat16"
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"


def test_config_json_round_trip():
    cfg = TrainConfig(task="copy", seq_len=30, arch="gru", chrono=30.0, clip=None, seeds=3)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(UserError, match="unknown config fields.*bogus"):
        TrainConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    assert "arch=gru" in str(cfg)


def test_resume_flags_must_match_the_saved_run(tmp_path):
    from lstm_jax.cli import build_parser
    from lstm_jax.cli.train import config_from_args

    out = tmp_path / "run"
    out.mkdir()
    saved = TrainConfig(task="copy", seq_len=30, hidden=16, steps=100)
    (out / "config.json").write_text(saved.to_json())
    parse = lambda *a: build_parser().parse_args(["train", "--out", str(out), *a])
    assert config_from_args(parse("--resume")) == saved
    assert config_from_args(parse("--resume", "--steps", "200")) == saved.replace(steps=200)
    assert config_from_args(parse("--resume", "--hidden", "16")) == saved
    with pytest.raises(UserError, match="flags disagree.*--hidden was 16, now 32"):
        config_from_args(parse("--resume", "--hidden", "32"))
    cosine = saved.replace(schedule="cosine")
    (out / "config.json").write_text(cosine.to_json())
    with pytest.raises(UserError, match="--steps was 100, now 200"):
        config_from_args(parse("--resume", "--steps", "200"))
    fresh = config_from_args(parse("--task", "temporal_order", "--seq-len", "40", "--clip", "none"))
    assert (fresh.task, fresh.seq_len, fresh.clip, fresh.hidden) == ("temporal_order", 40, None, 128)


@pytest.mark.slow
def test_cli_run_then_resume_from_out_alone(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert "baseline (mse): 0.1667" in capsys.readouterr().out
    saved = json.loads((out / "config.json").read_text())
    assert saved["hidden"] == 4 and saved["steps"] == 4
    # a finished constant-schedule run can be extended with --steps; other flags must agree
    assert main(["train", "--out", str(out), "--resume", "--hidden", "5"]) == 2
    assert "flags disagree" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--steps", "6", "--no-progress"]) == 0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]
