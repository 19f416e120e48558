"""Protocol files: every bad field is a UserError that names it; chrono T_max specs; the shipped
protocols parse and declare what issue 21 asks (same budget for every arm, ≥ 5 seeds)."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest

from lstm_jax.compare.protocol import Point, chrono_tmax, load_protocol, parse_protocol
from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError

PROTOCOLS = Path(__file__).parent.parent / "experiments" / "protocols"
BASE = tomllib.loads((PROTOCOLS / "smoke.toml").read_text())


def _with(path: str, value):
    """BASE with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    raw = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = raw
    for k in parents:
        node = node.setdefault(k, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return raw


BAD = [
    ("lr_grid", ..., "lr_grid"),
    ("lr_grid", [], "lr_grid"),
    ("lr_grid", [0.01, -1.0], "lr_grid"),
    ("lr_grid", [0.01, 0.01], "lr_grid"),
    ("lr_grid", [0.01, "fast"], "lr_grid[1]"),
    ("seeds", 0, "seeds"),
    ("seeds", 2.5, "seeds"),
    ("first_seed", -1, "first_seed"),
    ("budget", ..., "budget"),
    ("budget.steps", 0, "budget.steps"),
    ("budget.batch", "64", "budget.batch"),
    ("budget.epochs", 3, "budget.epochs"),
    ("eval.every", 31, "eval.every"),
    ("eval.test_size", 0, "eval.test_size"),
    ("train.lr", 0.1, "train.lr"),
    ("train.steps", 10, "train.steps"),
    ("train.hiden", 8, "train.hiden"),
    ("tasks.nope", {"lengths": [10], "success": {"metric": "loss", "below": 1}}, "tasks.nope"),
    ("tasks.adding.lengths", [], "tasks.adding.lengths"),
    ("tasks.adding.lengths", [10, 0], "tasks.adding.lengths[1]"),
    ("tasks.adding.success", ..., "tasks.adding.success"),
    ("tasks.adding.success", {"metric": "accuracy", "below": 0.1}, "tasks.adding.success.metric"),
    ("tasks.adding.success", {"metric": "loss"}, "tasks.adding.success"),
    ("tasks.adding.success", {"metric": "loss", "below": 0.1, "at_least": 0.2},
     "tasks.adding.success"),
    ("tasks.adding.success", {"metric": "loss", "below": "low"}, "tasks.adding.success.below"),
    ("tasks.adding.success", {"metric": "loss", "below": 0.1, "when": "sometimes"},
     "tasks.adding.success.when"),
    ("arms.x", {"chrono": "T"}, "arms.x.arch"),
    ("arms.x", {"arch": "transformer"}, "arms.x"),
    ("arms.x", {"arch": "lstm", "chrono": "T+1"}, "arms.x.chrono"),
    ("arms.x", {"arch": "lstm", "chrono": 1.5}, "arms.x.chrono"),
    ("arms.x", {"arch": "lstm", "chrono": "T/0"}, "arms.x.chrono"),  # not a ZeroDivisionError
    ("arms.x", {"arch": "lstm", "chrono": "0T"}, "arms.x.chrono"),
    ("arms.x", {"arch": "lstm", "hidden": 0}, "arms.x.hidden"),
    ("arms.x", {"arch": "lstm", "hidden": "wide"}, "arms.x.hidden"),
    ("arms.x", {"arch": "lstm", "hidden": 64.0}, "arms.x.hidden"),
    ("arms.x", {"arch": "lstm", "width": 64}, "arms.x.width"),
    ("arms.x", {"arch": "rnn", "chrono": "T"}, "arms.x"),  # the tanh RNN has no gates
    ("arms.x", {"arch": "gru", "forget_bias": 2.0}, "arms.x.forget_bias"),  # GRU: no forget gate
    ("arms.x", {"arch": "exprnn", "recurrent_scale": 0.5}, "arms.x.recurrent_scale"),
    ("arms.x", {"arch": "rnn", "recurrent_init": "eye"}, "arms.x"),
    ("arms.x", {"arch": "lstm", "readout": "first"}, "arms.x"),
    ("arms.x", {"arch": "lstm", "bidirectional": "yes"}, "arms.x"),
    ("arms", {}, "arms"),
    ("tasks", {}, "tasks"),
    ("colour", "blue", "protocol.colour"),
]


@pytest.mark.parametrize(("path", "value", "field"), BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_field_names_it(path, value, field):
    with pytest.raises(UserError) as e:
        parse_protocol(_with(path, value))
    assert field in str(e.value), str(e.value)


def test_file_errors(tmp_path):
    with pytest.raises(UserError, match="is not a file"):
        load_protocol(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seeds = = 3\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_protocol(bad)


def test_chrono_specs():
    assert chrono_tmax("T", 100) == 100.0
    assert chrono_tmax("3T/2", 100) == 150.0
    assert chrono_tmax("2*T", 50) == 100.0
    assert chrono_tmax("1.5 T", 20) == 30.0
    assert chrono_tmax(40.0, 1000) == 40.0 and chrono_tmax(None, 10) is None


def test_readout_per_arm_or_for_every_arm_never_both():
    raw = _with("arms.lstm", {"arch": "lstm", "readout": "mean", "bidirectional": True})
    p = parse_protocol(raw)
    by_arm = {q.arm: p.config(q) for q in p.points()}
    assert (by_arm["lstm"].readout, by_arm["lstm"].bidirectional) == ("mean", True)
    assert (by_arm["rnn"].readout, by_arm["rnn"].bidirectional) == ("task", False)
    raw["train"]["readout"] = "max"  # [train] for every arm, but the lstm arm sets its own
    with pytest.raises(UserError, match=r"arms\.lstm\.readout is also set in \[train\]"):
        parse_protocol(raw)
    del raw["arms"]["lstm"]
    shared = parse_protocol(raw)
    assert {shared.config(q).readout for q in shared.points()} == {"max"}


def test_an_arm_may_set_its_own_width_over_train():
    """``hidden`` in [train] is every arm's width; an arm's own ``hidden`` wins (a wider RNN with
    the LSTM's parameter count is a declared arm, not a change to [train])."""
    raw = _with("arms.wide", {"arch": "rnn", "hidden": 32})
    p = parse_protocol(raw)
    width = {q.arm: p.config(q).hidden for q in p.points()}
    assert width == {"rnn": 8, "lstm+chrono": 8, "wide": 32}  # smoke.toml: [train] hidden = 8
    del raw["train"]["hidden"]
    p = parse_protocol(raw)
    default = TrainConfig().hidden
    assert {q.arm: p.config(q).hidden for q in p.points()}["rnn"] == default


def test_points_and_configs():
    p = parse_protocol(BASE)
    pts = p.points()
    assert [(q.arm, q.lr) for q in pts] == [("rnn", 0.01), ("rnn", 0.03), ("lstm+chrono", 0.01),
                                           ("lstm+chrono", 0.03)]
    cfgs = [p.config(q) for q in pts]
    assert {(c.steps, c.batch, c.seeds, c.seed, c.eval_every, c.hidden) for c in cfgs} == {
        (30, 8, 2, 0, 10, 8)}  # one budget, batch, seeds and shared settings for every arm
    assert [c.chrono for c in cfgs] == [None, None, 10.0, 10.0]
    assert Point("copy", 20, "rnn+orthogonal 0.9", 1e-3).slug == "copy/T20/rnn+orthogonal_0.9/lr0.001"


@pytest.mark.parametrize("name", ["adding", "copy", "adding_cells", "imdb"])
def test_shipped_protocols(name):
    p = load_protocol(PROTOCOLS / f"{name}.toml")
    assert p.seeds >= (3 if name == "imdb" else 5) and len(p.lr_grid) >= 2
    cfgs = [p.config(q) for q in p.points()]
    assert len({(c.steps, c.batch, c.optimizer, c.hidden, c.clip) for c in cfgs}) == 1
    (task,) = p.tasks
    if name == "adding":
        assert (task.lengths, task.success.metric, task.success.op, task.success.threshold) == (
            (50, 100, 200), "loss", "below", 0.01)
        assert (p.steps, p.batch) == (5000, 64)
        assert {a.name for a in p.arms} == {"rnn", "rnn+identity", "lstm", "lstm+chrono", "gru",
                                            "gru+chrono"}
    elif name == "adding_cells":  # the budget of adding.toml, so the rows compare with it
        base = load_protocol(PROTOCOLS / "adding.toml")
        assert (p.steps, p.batch, p.seeds, p.lr_grid, p.eval_every, p.eval_size, p.test_size) == (
            base.steps, base.batch, base.seeds, base.lr_grid, base.eval_every, base.eval_size,
            base.test_size)
        assert base.config(base.points()[0]).to_dict() | {"arch": "x"} == p.config(
            p.points()[0]).to_dict() | {"arch": "x", "forget_bias": 1.0}
        assert {c.arch for c in cfgs} == {"peephole", "cifg", "janet", "indrnn", "exprnn", "lru"}
        assert {c.chrono for c in cfgs if c.arch in ("janet", "indrnn")} == {50.0, 100.0, 200.0}
    elif name == "imdb":  # the 3 x 3 table: every arch with every readout, test = whole split
        assert {(c.arch, c.readout) for c in cfgs} == {
            (a, r) for a in ("rnn", "lstm", "gru") for r in ("last", "mean", "max")}
        assert (task.success.metric, task.success.op, task.success.when) == (
            "accuracy", "at_least", "final")
        assert p.test_size == 25_000 and {c.seq_len for c in cfgs} == {200}
    else:
        assert task.lengths[0] == 20 and (task.success.metric, task.success.threshold) == (
            "accuracy", 0.99)
        assert (cfgs[0].optimizer, p.batch) == ("rmsprop", 32)
        chrono = {c.seq_len: c.chrono for c in cfgs if c.arch == "lstm" and c.chrono}
        assert chrono == {20: 30.0, 100: 150.0, 200: 300.0}  # T_max = 3T/2


@pytest.mark.parametrize("name, val_split", [("imdb_pair", "review"), ("imdb_pair_movie", "movie")])
def test_imdb_pair_protocols_are_imdb_toml_restricted(name, val_split):
    """The LSTM − RNN replicates: exactly imdb.toml's last-readout RNN and LSTM points (every
    setting, seed and learning rate), differing only in the validation split."""
    base = load_protocol(PROTOCOLS / "imdb.toml")
    pair = load_protocol(PROTOCOLS / f"{name}.toml")
    wanted = {"rnn/last", "lstm/last"}
    base_cfgs = [base.config(q).to_dict() for q in base.points() if q.arm in wanted]
    pair_cfgs = [pair.config(q).to_dict() for q in pair.points()]
    assert {a.name for a in pair.arms} == wanted
    assert [c | {"val_split": val_split} for c in base_cfgs] == pair_cfgs
    assert (pair.test_size, pair.seeds, pair.tasks) == (base.test_size, base.seeds, base.tasks)


def test_imdb_best_protocol_is_the_documented_setting():
    """imdb_best.toml re-measures the 89.50 % attempt (attempts/11): its bidirectional arm has
    that run's every model, data and optimiser setting; the other arm differs only in direction."""
    import json

    attempt = json.loads((PROTOCOLS.parent / "results" / "imdb" / "attempts" /
                          "11_imdb_L800_ppmi_id025_b8_bi.json").read_text())["runs"][0]["config"]
    p = load_protocol(PROTOCOLS / "imdb_best.toml")
    cfgs = {q.arm: p.config(q).to_dict() for q in p.points()}
    protocol_owned = {"seeds", "seed", "eval_every", "eval_size", "checkpoint_every",
                      "keep_checkpoints", "val_split", "val_size", "val_seed", "eval_seed"}
    for key, value in attempt.items():
        if key not in protocol_owned:
            assert cfgs["bilstm/max"][key] == value, key
    assert cfgs["lstm/max"] | {"bidirectional": True} == cfgs["bilstm/max"]
    assert (p.seeds, p.test_size, cfgs["lstm/max"]["val_split"]) == (3, 25_000, "movie")


def test_indrnn_paper_protocol_differs_from_adding_cells_only_in_layers_and_rate():
    """adding_indrnn_paper.toml is adding_cells.toml's IndRNN arm with the paper's two layers and
    learning rate 2e-4 (the favour it declares), and nothing else changed."""
    cells = load_protocol(PROTOCOLS / "adding_cells.toml")
    paper = load_protocol(PROTOCOLS / "adding_indrnn_paper.toml")
    base = {q.T: cells.config(q).to_dict() for q in cells.points()
            if q.arm == "indrnn+bound" and q.lr == 1e-3}
    got = {q.T: paper.config(q).to_dict() for q in paper.points()}
    assert sorted(got) == sorted(base) == [50, 100, 200]
    for T, cfg in got.items():
        assert cfg == base[T] | {"layers": 2, "lr": 2e-4}, T
        assert cfg["chrono"] == T  # |u| <= 2^(1/T), as in the paper
    assert (paper.seeds, paper.test_size, paper.tasks) == (cells.seeds, cells.test_size, cells.tasks)


@pytest.mark.parametrize("name, change", [("adding_indrnn_rate", {"lr": 2e-4}),
                                          ("adding_indrnn_layers", {"layers": 2})])
def test_indrnn_ablations_change_one_thing_each(name, change):
    """The two IndRNN ablations separate adding_indrnn_paper.toml's two favours: each is
    adding_cells.toml's IndRNN arm with exactly one of them (the paper's rate, or two layers)."""
    cells = load_protocol(PROTOCOLS / "adding_cells.toml")
    ablation = load_protocol(PROTOCOLS / f"{name}.toml")
    base = {(q.T, q.lr): cells.config(q).to_dict() for q in cells.points()
            if q.arm == "indrnn+bound"}
    got = {(q.T, q.lr): ablation.config(q).to_dict() for q in ablation.points()}
    lrs = [2e-4] if "lr" in change else [1e-3, 3e-3]
    assert sorted(got) == [(T, lr) for T in (50, 100) for lr in lrs]
    for (T, lr), cfg in got.items():
        assert cfg == base[(T, 1e-3)] | {"lr": lr} | change, (T, lr)
    assert (ablation.seeds, ablation.test_size) == (cells.seeds, cells.test_size)


def test_indrnn_init_protocols_change_only_the_init():
    """adding_indrnn_init.toml is adding_cells.toml's IndRNN arm with indrnn_init="paper" and
    nothing else; adding_indrnn_paper_init.toml is adding_indrnn_paper.toml with it."""
    for name, base_name, arm in (("adding_indrnn_init", "adding_cells", "indrnn+bound"),
                                 ("adding_indrnn_paper_init", "adding_indrnn_paper",
                                  "indrnn2+paper")):
        base_proto = load_protocol(PROTOCOLS / f"{base_name}.toml")
        proto = load_protocol(PROTOCOLS / f"{name}.toml")
        base = {(q.T, q.lr): base_proto.config(q).to_dict() for q in base_proto.points()
                if q.arm == arm}
        got = {(q.T, q.lr): proto.config(q).to_dict() for q in proto.points()}
        assert sorted(got) == sorted(base), name
        for key, cfg in got.items():
            assert cfg == base[key] | {"indrnn_init": "paper"}, (name, key)
        assert (proto.seeds, proto.test_size, proto.tasks) == (
            base_proto.seeds, base_proto.test_size, base_proto.tasks)


def _assert_one_change(base_file: str, arm: str, T: int, file: str, change: dict):
    """``file``'s points are ``base_file``'s points of ``arm`` at ``T``, with ``change`` alone."""
    base_proto = load_protocol(PROTOCOLS / base_file)
    proto = load_protocol(PROTOCOLS / file)
    base = {(q.T, q.lr): base_proto.config(q).to_dict() for q in base_proto.points()
            if q.arm == arm and q.T == T}
    got = {(q.T, q.lr): proto.config(q).to_dict() for q in proto.points()}
    assert sorted(got) == sorted(base) and len(got) == 2
    for key, cfg in got.items():
        assert cfg == base[key] | change, key
    assert (proto.seeds, proto.test_size, proto.steps, proto.batch) == (
        base_proto.seeds, base_proto.test_size, base_proto.steps, base_proto.batch)


def test_janet_init_protocol_changes_only_the_kernels_init():
    """adding_janet_init.toml is adding_cells.toml's JANET arm at T = 200 with Glorot kernels."""
    _assert_one_change("adding_cells.toml", "janet+chrono", 200, "adding_janet_init.toml",
                       {"input_init": "glorot", "recurrent_init": "glorot"})


def test_rnn_width_protocol_changes_only_the_width():
    """adding_rnn_width.toml is adding.toml's tanh RNN arm at T = 100 with H = 256, which gives
    it the LSTM's parameter count to within 1 % (closed form: G·(D·H + H² + H) + H + 1)."""
    _assert_one_change("adding.toml", "rnn", 100, "adding_rnn_width.toml", {"hidden": 256})
    n = lambda G, H, D=2: G * (D * H + H * H + H) + H + 1  # noqa: E731
    assert (n(1, 256), n(4, 128)) == (66_561, 67_201)
    assert abs(n(1, 256) / n(4, 128) - 1) < 0.01


def test_exprnn_orth_lr_protocol_changes_only_the_generators_rate():
    """adding_exprnn_orth_lr.toml is adding_cells.toml's expRNN arm with recurrent_lr_scale=0.1
    and nothing else, at T = 50 and 100."""
    cells = load_protocol(PROTOCOLS / "adding_cells.toml")
    proto = load_protocol(PROTOCOLS / "adding_exprnn_orth_lr.toml")
    base = {(q.T, q.lr): cells.config(q).to_dict() for q in cells.points() if q.arm == "exprnn"}
    got = {(q.T, q.lr): proto.config(q).to_dict() for q in proto.points()}
    assert sorted(got) == [(T, lr) for T in (50, 100) for lr in (1e-3, 3e-3)]
    for key, cfg in got.items():
        assert cfg == base[key] | {"recurrent_lr_scale": 0.1}, key
    assert (proto.seeds, proto.test_size) == (cells.seeds, cells.test_size)


SMOKE_YAML = (PROTOCOLS / "smoke.yaml").read_text()  # smoke.toml in YAML


def test_a_yaml_protocol_is_the_toml_one(tmp_path):
    path = tmp_path / "smoke.yaml"
    path.write_text(SMOKE_YAML)
    toml = load_protocol(Path(__file__).parent.parent / "experiments" / "protocols" / "smoke.toml")
    assert load_protocol(path).to_dict() == toml.to_dict()
    assert load_protocol(path).lr_grid == (0.01, 0.03)
    yml = tmp_path / "smoke.yml"
    yml.write_text(SMOKE_YAML.replace("[1e-2, 3e-2]", "[0.01, 3.0e-2]"))
    assert load_protocol(yml).to_dict() == toml.to_dict()


@pytest.mark.parametrize("text, says", [
    ("name: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "must be a mapping"),
    ("name: x\nlr_grid: ['1e-3x']\n", "lr_grid[0]"),
])
def test_bad_yaml_is_named(tmp_path, text, says):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=re.escape(says)):
        load_protocol(path)


def test_other_suffixes_are_refused(tmp_path):
    path = tmp_path / "smoke.json"
    path.write_text("{}")
    with pytest.raises(UserError, match=r"\.toml, \.yaml, \.yml"):
        load_protocol(path)
