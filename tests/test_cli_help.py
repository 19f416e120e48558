"""The CLI says what it does: help text and default on every option, no reST, ``--version``,
one meaning of ``--arch a,b``, and the IMDB default path from the project root (no compiles)."""

import argparse
import re
from importlib.metadata import version
from pathlib import Path

import pytest

import lstm_jax
from lstm_jax.cli import COMMANDS, build_parser, main
from lstm_jax.cli.common import HelpFormatter, parse_archs, plain_text
from lstm_jax.errors import UserError


def _subparsers():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub


def _help_of(parser, action) -> str:
    """The help line argparse prints for ``action`` (with its default expanded)."""
    formatter = HelpFormatter(parser.prog)
    return formatter._expand_help(action)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_and_shows_its_default(command):
    parser = _subparsers().choices[command]
    text = parser.format_help()
    for bad in ("``", ":class:", ":func:", ":mod:", ":data:"):
        assert bad not in text, (command, bad)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{command} {name} has no help text"
        shown = _help_of(parser, action)
        takes_value = action.option_strings and action.nargs != 0
        if takes_value and not action.required:
            # a value-taking option says what it is when not given: its default or what it means
            assert "default:" in shown.lower(), f"{command} {name}: {shown!r}"
        if action.default not in (None, False, argparse.SUPPRESS) and takes_value:
            # the value itself, also where the help text words its default by hand
            assert f"default: {action.default}".lower() in shown.lower(), (command, name, shown)
    # and the printed help really carries them (argparse wraps lines: compare without spaces)
    flat = re.sub(r"\s+", "", text)
    for action in parser._actions:
        if action.option_strings and action.nargs != 0 and not action.required \
                and not isinstance(action, argparse._HelpAction):
            assert re.sub(r"\s+", "", _help_of(parser, action)) in flat


def test_train_help_shows_the_config_defaults():
    from lstm_jax.config import TrainConfig

    text = re.sub(r"\s+", " ", _subparsers().choices["train"].format_help())
    cfg = TrainConfig()
    assert f"optimisation steps (default: {cfg.steps})" in text
    assert f"global batch size (split over devices) (default: {cfg.batch})" in text
    assert f"first seed (initialisation, batches, dropout) (default: {cfg.seed})" in text
    assert "hidden size H (default: 128)" in text


def test_plain_text_unwraps_rest():
    assert plain_text("``lstm-jax train`` uses :class:`lstm_jax.config.TrainConfig` and "
                      ":func:`~a.b`") == "lstm-jax train uses lstm_jax.config.TrainConfig and a.b"


def test_version_and_top_level_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"lstm-jax {version('lstm_jax')}"
    text = build_parser().format_help()
    sub = _subparsers()
    for name in COMMANDS:  # each command is listed with what it does
        helps = {a.dest: a.help for a in sub._choices_actions}
        assert helps.get(name), name
        assert name in text
    assert "IMDB" in helps["train"]


@pytest.mark.parametrize("text, message", [
    ("rnn,,lstm", "has an empty item"),
    ("lstm,", "has an empty item"),
    (",", "names no architecture"),
    ("lstm,lstm", "names lstm twice"),
    ("rnn,transformer", "--arch='transformer' is not allowed; choose one of rnn, lstm, gru"),
])
def test_arch_lists_have_one_rule(text, message):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_archs(text)


@pytest.mark.parametrize("command", ["train", "probe", "demo"])
@pytest.mark.parametrize("text, message", [("rnn,,lstm", "empty item"), ("gru,gru", "gru twice"),
                                           ("lstmm", "'lstmm' is not allowed")])
def test_arch_errors_are_the_same_in_every_command(command, text, message, tmp_path, capsys):
    out = tmp_path / "never"
    assert main([command, "--arch", text, "--out", str(out)]) == 2
    cap = capsys.readouterr()
    assert cap.err.startswith(f"lstm-jax {command}: error: --arch=") and message in cap.err
    assert cap.out == "" and not out.exists()


def test_arch_list_parses_the_same_everywhere():
    assert parse_archs("rnn, gru") == ["rnn", "gru"]


# ------------------------------------------------------------------ IMDB default archive path

def test_imdb_default_is_relative_to_the_project_root_not_the_cwd(tmp_path, monkeypatch):
    from lstm_jax.data import imdb

    root = Path(lstm_jax.__file__).resolve().parents[1]
    assert imdb.PROJECT_ROOT == root
    assert imdb.DEFAULT_ARCHIVE == (root / ".." / "shared" / "data" / "aclImdb_v1.tar.gz").resolve()
    monkeypatch.delenv(imdb.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    fake = tmp_path / "elsewhere" / "aclImdb_v1.tar.gz"
    monkeypatch.setattr(imdb, "DEFAULT_ARCHIVE", fake)
    with pytest.raises(UserError) as info:
        imdb.resolve_archive()
    message = str(info.value)
    assert str(fake) in message and str(root) in message and "$LSTM_JAX_IMDB is not set" in message
    assert "does not exist" in message and "\n" not in message
    fake.parent.mkdir()
    fake.write_bytes(b"x")
    assert imdb.resolve_archive() == fake  # found from an unrelated working directory


def test_imdb_error_names_the_env_path(tmp_path, monkeypatch):
    from lstm_jax.data import imdb

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(imdb.ENV_VAR, "rel/missing.tar.gz")
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "rel" / "missing.tar.gz"))
                       + r".*\(\$LSTM_JAX_IMDB\) does not exist"):
        imdb.resolve_archive()


@pytest.mark.skipif(not (Path(lstm_jax.__file__).resolve().parents[1] / ".." / "shared" / "data"
                         / "aclImdb_v1.tar.gz").is_file(), reason="no archive beside the checkout")
def test_the_real_default_archive_is_found_from_a_temp_cwd(tmp_path, monkeypatch):
    from lstm_jax.data import imdb

    monkeypatch.delenv(imdb.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert imdb.resolve_archive().is_file()


# ------------------------------------------------- a model flag no chosen arch reads

def test_a_cell_field_the_arch_does_not_read_is_refused_not_ignored(tmp_path, capsys):
    """IndRNN, expRNN and the LRU initialise their own recurrence (no recurrent_init/scale); only
    the LSTM-family cells have a forget bias; only the GRU has a reset variant. A value that
    would be ignored is an error, in the Python API and on the command line; a flag shared by
    several archs applies to those that read it."""
    from lstm_jax.cells import CellConfig, cell_accepts
    from lstm_jax.errors import UserError

    assert cell_accepts("rnn", "recurrent_scale") and cell_accepts("peephole", "recurrent_init")
    assert not any(cell_accepts(a, "recurrent_scale") for a in ("indrnn", "exprnn", "lru"))
    for kw, needle in [({"arch": "exprnn", "recurrent_scale": 0.5}, "recurrent_scale=0.5"),
                       ({"arch": "lru", "recurrent_init": "normal"}, "recurrent_init='normal'"),
                       ({"arch": "gru", "forget_bias": 2.0}, "forget_bias=2.0"),
                       ({"arch": "lstm", "gru_reset_after": False}, "gru_reset_after=False")]:
        with pytest.raises(UserError, match=needle):
            CellConfig(**kw)
    assert CellConfig(arch="rnn", recurrent_scale=0.5).recurrent_scale == 0.5

    assert main(["probe", "--arch", "exprnn", "--recurrent-scale", "0.5",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--recurrent-scale does not apply to --arch=exprnn" in err and "Traceback" not in err
    out = tmp_path / "p"
    assert main(["probe", "--arch", "rnn,exprnn", "--recurrent-scale", "0.5", "--seq-len", "6",
                 "--batch", "2", "--hidden", "4", "--out", str(out)]) == 0
