"""A comparison protocol: one TOML (or YAML) file that declares everything before anything is trained.

The file names the arms (an architecture with its initialisation: ``lstm`` and ``lstm+chrono`` are
two arms), the tasks with their lengths and success criteria, one budget (steps × batch) and one
learning-rate grid shared by every arm, the seeds, and the training settings every arm shares::

    name = "adding"
    seeds = 5                      # models per point, vmapped in one program (default 5)
    first_seed = 0
    lr_grid = [1e-3, 3e-3]         # each arm picks its rate on VALIDATION

    [budget]
    steps = 5000                   # the declared budget: evaluations after it never count
    batch = 64

    [eval]
    every = 250                    # validation metrics every N steps (steps-to-success resolution)
    size = 512                     # validation examples
    test_size = 2048               # test examples, scored once per selected configuration

    [train]                        # any other TrainConfig field, the same for every arm
    hidden = 128
    clip = 1.0

    [tasks.adding]
    lengths = [50, 100, 200]
    success = { metric = "loss", below = 0.01 }        # or at_least = 0.99; when = "any"|"final"

    [arms."lstm+chrono"]
    arch = "lstm"
    chrono = "T"                   # T_max: "T", "3T/2", "2*T" (of each point's T) or a number

The same protocol in YAML (a ``.yaml`` or ``.yml`` file) has the same fields: ``budget: {steps:
5000, batch: 64}``, ``arms: {"lstm+chrono": {arch: lstm, chrono: T}}``, and so on; ``1e-3`` is
read as a number there too.

An arm may also set ``readout`` and ``bidirectional`` (e.g. IMDB's ``lstm/mean``), unless
``[train]`` sets them for every arm, and ``hidden``, which overrides ``[train]``'s (an arm
``"rnn H=256"`` with about as many parameters as an LSTM of H = 128).

:func:`load_protocol` parses and checks the file; every problem is a :class:`UserError` naming
the field (``arms.rnn.chrono``, ``tasks.copy.success.below``, ...). Each (task, T, arm, lr) is
one training run (:meth:`Protocol.config`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError

ARM_FIELDS = ("arch", "forget_bias", "chrono", "recurrent_init", "recurrent_scale",
              "gru_reset_after", "indrnn_init", "input_init", "readout", "bidirectional",
              "hidden")
# Arm fields that [train] may set for every arm instead (never both for one arm).
SHARED_ARM_FIELDS = frozenset({"readout", "bidirectional"})
# Arm fields that [train] sets for every arm and an arm may override (a wider tanh RNN with as
# many parameters as the LSTM is its own declared arm).
OVERRIDABLE_ARM_FIELDS = frozenset({"hidden"})
TOP_FIELDS = ("name", "description", "seeds", "first_seed", "lr_grid", "budget", "eval", "train",
              "tasks", "arms")
# TrainConfig fields the protocol sets itself (so [train] may not).
RESERVED = frozenset({"task", "seq_len", "steps", "batch", "lr", "seeds", "seed", "eval_every",
                      "eval_size", "probe_every", *ARM_FIELDS}) - SHARED_ARM_FIELDS \
    - OVERRIDABLE_ARM_FIELDS
WHEN = ("any", "final")
_CHRONO = re.compile(r"^\s*(?:(\d+(?:\.\d*)?)\s*\*?\s*)?T\s*(?:/\s*(\d+(?:\.\d*)?))?\s*$")


def _field_error(field: str, value, allowed: str) -> UserError:
    return UserError(f"{field}={value!r} is not allowed; {allowed}")


def _int(field: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _field_error(field, value, f"it must be an integer ≥ {minimum}")
    return value


def _number(field: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _field_error(field, value, "it must be a finite number")
    return float(value)


def _table(field: str, value) -> dict:
    if not isinstance(value, dict):
        raise _field_error(field, value, "it must be a table")
    return value


def _known(field: str, table: dict, allowed) -> None:
    for key in table:
        if key not in allowed:
            raise UserError(f"{field}.{key} is not a known field; known: {', '.join(allowed)}")


def parse_chrono(field: str, value) -> str | float | None:
    """``None``, a number > 2, or a multiple of T (``"T"``, ``"3T/2"``, ``"1.5*T"``)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not _CHRONO.match(value):
            raise _field_error(field, value, 'use a number > 2 or a multiple of T such as "T", '
                                             '"3T/2" or "2*T"')
        a, b = _CHRONO.match(value).groups()
        if float(a or 1) <= 0 or float(b or 1) <= 0:
            raise _field_error(field, value, "the multiple of T must be positive, with a "
                                             "divisor > 0")
        return value
    if _number(field, value) <= 2:
        raise _field_error(field, value, "T_max must be > 2")
    return float(value)


def chrono_tmax(spec: str | float | None, T: int) -> float | None:
    """The T_max a chrono spec gives at length ``T`` (``"3T/2"`` at T = 100 → 150.0)."""
    if spec is None or isinstance(spec, float | int):
        return spec
    a, b = _CHRONO.match(spec).groups()
    return float(a or 1) * T / float(b or 1)


@dataclasses.dataclass(frozen=True)
class Criterion:
    """Success: ``metric`` (a validation metric of the task) below / at least ``threshold``, at
    any evaluation up to the budget (``when="any"``; steps-to-success is the first such step) or
    at the last evaluation of the budget (``"final"``)."""

    metric: str
    op: str  # "below" | "at_least"
    threshold: float
    when: str = "any"

    def met(self, value: float) -> bool:
        if value is None or not math.isfinite(value):
            return False
        return value < self.threshold if self.op == "below" else value >= self.threshold

    def sign(self) -> float:
        """+1 when larger values are better (``at_least``), −1 when smaller are (``below``)."""
        return 1.0 if self.op == "at_least" else -1.0

    def __str__(self) -> str:
        op = "<" if self.op == "below" else "≥"
        return f"validation {self.metric} {op} {self.threshold:g} ({self.when} evaluation ≤ budget)"


@dataclasses.dataclass(frozen=True)
class TaskPlan:
    name: str
    lengths: tuple[int, ...]
    success: Criterion


@dataclasses.dataclass(frozen=True)
class Arm:
    name: str
    arch: str
    options: tuple[tuple[str, Any], ...]  # the other ARM_FIELDS it sets

    def fields(self, T: int) -> dict[str, Any]:
        out = {"arch": self.arch, **dict(self.options)}
        if "chrono" in out:
            out["chrono"] = chrono_tmax(out["chrono"], T)
        return out


@dataclasses.dataclass(frozen=True)
class Point:
    """One training run of the comparison."""

    task: str
    T: int
    arm: str
    lr: float

    @property
    def slug(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9._+-]", "_", self.arm)
        return f"{self.task}/T{self.T}/{safe}/lr{self.lr:g}"


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    seeds: int
    first_seed: int
    lr_grid: tuple[float, ...]
    steps: int
    batch: int
    eval_every: int
    eval_size: int
    test_size: int
    train: tuple[tuple[str, Any], ...]
    tasks: tuple[TaskPlan, ...]
    arms: tuple[Arm, ...]

    def task(self, name: str) -> TaskPlan:
        return next(t for t in self.tasks if t.name == name)

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def points(self) -> list[Point]:
        """Every run, task by task, short lengths first (so a positive control comes first)."""
        return [Point(t.name, T, a.name, lr) for t in self.tasks for T in t.lengths
                for a in self.arms for lr in self.lr_grid]

    def config(self, p: Point) -> TrainConfig:
        """The :class:`TrainConfig` of one point (same budget, batch and seeds for every arm)."""
        return TrainConfig(task=p.task, seq_len=p.T, steps=self.steps, batch=self.batch, lr=p.lr,
                           seeds=self.seeds, seed=self.first_seed, eval_every=self.eval_every,
                           eval_size=self.eval_size,
                           **{**dict(self.train), **self.arm(p.arm).fields(p.T)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SUFFIXES = (".toml", ".yaml", ".yml")


def load_protocol(path: str | Path) -> Protocol:
    """Parse and check a protocol file, TOML or YAML by its suffix (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"protocol={str(path)!r} is not a file")
    return parse_protocol(read_protocol_text(path.read_text(), path), default_name=path.stem)


def read_protocol_text(text: str, path: Path) -> dict:
    """The raw table of a protocol file's ``text``, read as TOML or YAML by ``path``'s suffix."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"protocol={str(path)!r}: the file must end in {', '.join(SUFFIXES)} "
                        "(TOML or YAML)")
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise UserError(f"protocol {path} is not valid TOML ({e})") from None
    import yaml

    try:
        raw = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise UserError(f"protocol {path} is not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise UserError(f"protocol {path}: the YAML must be a mapping of fields "
                        f"(name, lr_grid, budget, tasks, arms, ...), not {type(raw).__name__}")
    return raw


def _yaml_loader():
    """PyYAML's SafeLoader, but reading ``1e-3`` as a number as TOML and YAML 1.2 do (YAML 1.1,
    which PyYAML follows, wants ``1.0e-3`` and reads ``1e-3`` as a string)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
        list("-+0123456789."))
    return Loader


def parse_protocol(raw: dict, default_name: str = "comparison") -> Protocol:
    _known("protocol", raw, TOP_FIELDS)
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise _field_error("name", name, "it must be a non-empty string")
    seeds = _int("seeds", raw.get("seeds", 5))
    first_seed = _int("first_seed", raw.get("first_seed", 0), minimum=0)
    grid = raw.get("lr_grid")
    if not isinstance(grid, list) or not grid:
        raise _field_error("lr_grid", grid, "declare a non-empty list of learning rates")
    grid = tuple(_number(f"lr_grid[{i}]", v) for i, v in enumerate(grid))
    if any(v <= 0 for v in grid) or len(set(grid)) != len(grid):
        raise _field_error("lr_grid", list(grid), "rates must be > 0 and distinct")

    budget = _table("budget", raw.get("budget"))
    _known("budget", budget, ("steps", "batch"))
    steps, batch = (_int(f"budget.{k}", budget.get(k)) for k in ("steps", "batch"))
    ev = _table("eval", raw.get("eval", {}))
    _known("eval", ev, ("every", "size", "test_size"))
    every = _int("eval.every", ev.get("every", max(1, steps // 20)))
    if every > steps:
        raise _field_error("eval.every", every, f"it must be ≤ budget.steps={steps}")
    size = _int("eval.size", ev.get("size", 512))
    test_size = _int("eval.test_size", ev.get("test_size", size))

    train = _table("train", raw.get("train", {}))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for k in train:
        if k in RESERVED:
            raise UserError(f"train.{k} is set by the protocol itself (budget, eval, lr_grid, "
                            "seeds, tasks, arms); move it there")
        if k not in known:
            raise UserError(f"train.{k} is not a TrainConfig field; known: {sorted(known - RESERVED)}")

    tasks_raw = _table("tasks", raw.get("tasks"))
    if not tasks_raw:
        raise _field_error("tasks", tasks_raw, "declare at least one [tasks.NAME] table")
    tasks = tuple(_parse_task(n, _table(f"tasks.{n}", t)) for n, t in tasks_raw.items())
    arms_raw = _table("arms", raw.get("arms"))
    if len(arms_raw) < 1:
        raise _field_error("arms", arms_raw, "declare at least one [arms.NAME] table")
    arms = tuple(_parse_arm(n, _table(f"arms.{n}", a)) for n, a in arms_raw.items())
    for arm in arms:
        for k, _ in arm.options:
            if k in train and k not in OVERRIDABLE_ARM_FIELDS:
                raise UserError(f"arms.{arm.name}.{k} is also set in [train]; declare it in one "
                                "place (in [train] for every arm, or per arm)")
    proto = Protocol(name=name, description=str(raw.get("description", "")), seeds=seeds,
                     first_seed=first_seed, lr_grid=grid, steps=steps, batch=batch,
                     eval_every=every, eval_size=size, test_size=test_size,
                     train=tuple(sorted(train.items())), tasks=tasks, arms=arms)
    for t in tasks:  # every point must be a valid run, before anything trains
        for arm in arms:
            for T in t.lengths:
                try:
                    proto.config(Point(t.name, T, arm.name, grid[0]))
                except UserError as e:
                    raise UserError(f"arms.{arm.name} on tasks.{t.name} at T={T}: {e}") from None
    return proto


def _parse_task(name: str, t: dict) -> TaskPlan:
    from lstm_jax.tasks import make_task, task_names

    where = f"tasks.{name}"
    if name not in task_names():
        raise _field_error(where, name, f"choose a task from {', '.join(task_names())}")
    _known(where, t, ("lengths", "success"))
    lengths = t.get("lengths")
    if not isinstance(lengths, list) or not lengths:
        raise _field_error(f"{where}.lengths", lengths, "declare a non-empty list of lengths T")
    lengths = tuple(_int(f"{where}.lengths[{i}]", v) for i, v in enumerate(lengths))
    s = _table(f"{where}.success", t.get("success"))
    _known(f"{where}.success", s, ("metric", "below", "at_least", "when"))
    spec = make_task(name, lengths[0]).spec if name != "imdb" else None
    metrics = ["loss", *(spec.metric_baselines if spec else ["accuracy"])]
    metric = s.get("metric")
    if metric not in metrics:
        raise _field_error(f"{where}.success.metric", metric,
                           f"task {name!r} reports {', '.join(metrics)}")
    ops = [k for k in ("below", "at_least") if k in s]
    if len(ops) != 1:
        raise UserError(f"{where}.success needs exactly one of below / at_least (got {ops or 'none'})")
    threshold = _number(f"{where}.success.{ops[0]}", s[ops[0]])
    when = s.get("when", "any")
    if when not in WHEN:
        raise _field_error(f"{where}.success.when", when, f"choose {' or '.join(WHEN)}")
    return TaskPlan(name, lengths, Criterion(metric, ops[0], threshold, when))


def _parse_arm(name: str, a: dict) -> Arm:
    where = f"arms.{name}"
    _known(where, a, ARM_FIELDS)
    if "arch" not in a:
        raise UserError(f"{where}.arch is missing; every arm names its architecture")
    options = {k: v for k, v in a.items() if k != "arch"}
    from lstm_jax.cells import ARCHS, CellConfig, cell_accepts

    cell_fields = {f.name for f in dataclasses.fields(CellConfig)} - {"arch", "hidden"}

    if a["arch"] in ARCHS:  # TrainConfig would leave such a field out: an arm means what it says
        for k in options:
            field = {"chrono": "chrono_tmax"}.get(k, k)
            if field in cell_fields and not cell_accepts(a["arch"], field):
                raise UserError(f"{where}.{k} does not apply to arch {a['arch']} (it does not "
                                f"read {field}); leave it out of the arm")
    if "chrono" in options:
        options["chrono"] = parse_chrono(f"{where}.chrono", options["chrono"])
    if "hidden" in options:
        _int(f"{where}.hidden", options["hidden"])
    return Arm(name, a["arch"], tuple(sorted(options.items())))
