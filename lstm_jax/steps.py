"""The compiled programs of a run: initialisation, one training step, evaluation.

Every function here is pure and works on ``S`` independent models at once (``jax.vmap`` over a
leading seeds axis): model ``i`` has its own initialisation, data and dropout keys, derived from
seed ``cfg.seed + i``, so ``--seeds 5`` trains exactly the five models that five separate runs with
``--seed s, s+1, ...`` would (up to float reassociation in batched matmuls).

Keys (Salmon et al. 2011's counter-based threefry, via ``jax.random``)::

    base_i   = key(seed + i)
    init     = fold_in(base_i, 0)
    data     = fold_in(base_i, 1)    batch at step s: task.train_batch(data, fold_in(data, s))
    dropout  = fold_in(base_i, 2)    mask at step s: fold_in(dropout, s)
    validation = fold_in(key(eval_seed), 3)    (the same held-out set for every seed)
    test       = fold_in(key(eval_seed), 4)    (scored once, after training: lstm_jax.evaluate)

So a synthetic task's three splits come from three disjoint key streams: training batches from
the per-seed ``data`` keys (tag 1 under ``key(seed + i)``), validation and test from two different
tags under ``key(eval_seed)``. A data-backed task (IMDB) holds its validation reviews out of the
train split instead (:mod:`lstm_jax.tasks.imdb`). Training reports validation metrics only.

The training state is a dict of arrays, each with the leading seeds axis::

    params    the model's nnx.State (merged with the graphdef inside the step)
    opt       optax state
    loss_sum  sum of training losses since the last metrics line (reset in the step that
              follows one, so it is a function of the step and survives a resume mid-interval)
    bad_step  −1, or the first step whose loss or gradient norm was not finite (from then on the
              update is skipped, so params stay the last finite ones)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import use_abstract_mesh

from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError, check_choice
from lstm_jax.model import SequenceModel
from lstm_jax.optim import optimizer
from lstm_jax.sharding import batch_sharding, constrain_batch, replicated
from lstm_jax.tasks.registry import Batch, Task


def all_finite(tree) -> jax.Array:
    """True when every element of every leaf is finite. Checked leaf by leaf: the global norm
    overflows float32 once it passes ~1.8e19, which would call finite gradients non-finite."""
    return functools.reduce(jnp.logical_and,
                            (jnp.isfinite(x).all() for x in jax.tree.leaves(tree)),
                            jnp.asarray(True))


def build_model(cfg: TrainConfig, task: Task, key) -> SequenceModel:
    table = None if cfg.embed_init == "random" else task.embedding_table(cfg.embed_dim,
                                                                         cfg.embed_init)
    return SequenceModel.for_task(
        task.spec, cfg.cell(), layers=cfg.layers,
        readout=None if cfg.readout == "task" else cfg.readout, embed_dim=cfg.embed_dim,
        embed_table=table,
        dropout=cfg.dropout, input_dropout=cfg.input_dropout, unroll=cfg.unroll, remat=cfg.remat,
        impl=cfg.impl, matmul_dtype=cfg.matmul_dtype, bidirectional=cfg.bidirectional,
        rngs=nnx.Rngs(params=key))


def seed_keys(cfg: TrainConfig) -> dict[str, jax.Array]:
    """Per-seed ``init``/``data``/``dropout`` keys, each ``(S,)``."""
    return _seed_keys(jnp.arange(cfg.seed, cfg.seed + cfg.seeds, dtype=jnp.uint32))


@jax.jit
def _seed_keys(seeds):
    base = jax.vmap(jax.random.key)(seeds)
    return {name: jax.vmap(lambda k, t=tag: jax.random.fold_in(k, t))(base)
            for tag, name in enumerate(("init", "data", "dropout"))}


SPLITS = ("validation", "test")  # the held-out splits; "train" is the batch stream
_SPLIT_TAGS = {"validation": 3, "test": 4}


def eval_key(cfg: TrainConfig, split: str = "validation") -> jax.Array:
    """The key of a held-out split (see the module docstring)."""
    check_choice("split", split, SPLITS)
    return jax.random.fold_in(jax.random.key(cfg.eval_seed), _SPLIT_TAGS[split])


@dataclasses.dataclass
class Programs:
    """The jitted functions of one run (built once by :func:`build_programs`)."""

    task: Task
    graphdef: Any
    tx: optax.GradientTransformation
    init: Any  # (init_keys (S,)) -> state
    train_step: Any  # (state, data_keys, dropout_keys, step, data) -> (state, loss (S,))
    evaluate: Any  # (params, chunks) -> {metric: (S,)}
    eval_chunks: Any  # (data, split=, size=) -> a held-out split in chunks (see eval_chunks)
    learning_rate: Any  # (step) -> learning rate


# Fields that do not change the compiled programs (steps only matters to the cosine schedule).
_HOST_ONLY = {"checkpoint_every": 1, "keep_checkpoints": 1, "probe_every": 0}


def build_programs(cfg: TrainConfig, mesh) -> Programs:
    """The compiled programs of ``cfg`` on ``mesh``, cached: runs of one configuration in one
    process (a resumed run, a longer run, another checkpoint cadence) compile once."""
    key = cfg.replace(**_HOST_ONLY)
    if cfg.schedule == "constant":
        key = key.replace(steps=10**9)
    return _build_programs(key, mesh)


@functools.lru_cache(maxsize=8)
def _build_programs(cfg: TrainConfig, mesh) -> Programs:
    from lstm_jax.optim import learning_rate
    from lstm_jax.tasks import make_task

    task = make_task(cfg.task, cfg.seq_len, **cfg.task_options())
    tx = optimizer(cfg)
    shape_model = nnx.eval_shape(lambda: build_model(cfg, task, jax.random.key(0)))
    graphdef = nnx.graphdef(shape_model)
    constrained = shape_model.constrained  # e.g. IndRNN's |u| bound
    B = cfg.batch

    def init_one(key):
        params = nnx.split(build_model(cfg, task, key))[1]
        return {"params": params, "opt": tx.init(params), "loss_sum": jnp.zeros((), jnp.float32),
                "bad_step": jnp.full((), -1, jnp.int32)}

    def loss_fn(params, batch: Batch, dropout_key):
        model = nnx.merge(graphdef, params)
        return task.loss(model(batch.x, batch.mask, dropout_key=dropout_key), batch)

    def step_one(state, data_key, dropout_key, step, data):
        with use_abstract_mesh(mesh.abstract_mesh):  # the fused layers split the batch over it
            return _step_one(state, data_key, dropout_key, step, data)

    def _step_one(state, data_key, dropout_key, step, data):
        batch = constrain_batch(task.train_batch(data, data_key, step, B), mesh)
        dkey = (jax.random.fold_in(dropout_key, step)
                if cfg.dropout > 0 or cfg.input_dropout > 0 else None)
        params = state["params"]
        if task.bucket_lengths is None:
            loss, grads = jax.value_and_grad(loss_fn)(params, batch, dkey)
        else:  # one branch per length bucket, each on the batch cut to its length
            loss, grads = jax.lax.switch(task.train_bucket(step, B),
                                         [functools.partial(_cut_grads, loss_fn, n)
                                          for n in task.bucket_lengths], params, batch, dkey)
        updates, opt = tx.update(grads, state["opt"], params)
        new_params = optax.apply_updates(params, updates)
        if constrained:  # back into the cells' constraint sets (RecurrentCell.project)
            model = nnx.merge(graphdef, new_params)
            model.project()
            new_params = nnx.state(model)
        # the update's result too: a finite gradient times a huge rate can overflow the
        # parameters, and Adam's second moment g² overflows for |g| > ~1.8e19 (then freezes)
        finite = jnp.isfinite(loss) & all_finite(grads) & all_finite(new_params) & all_finite(opt)
        ok = finite & (state["bad_step"] < 0)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        bad = jnp.where(~finite & (state["bad_step"] < 0), step, state["bad_step"])
        return {"params": keep(new_params, params), "opt": keep(opt, state["opt"]),
                "loss_sum": jnp.where(step % cfg.eval_every == 0, 0.0, state["loss_sum"])
                + jnp.where(ok, loss, 0.0),
                "bad_step": bad.astype(jnp.int32)}, loss

    def eval_one(params, chunks: Batch):
        with use_abstract_mesh(mesh.abstract_mesh):
            return _eval_one(params, chunks)

    def _eval_one(params, chunks: Batch):
        model = nnx.merge(graphdef, params)

        def chunk_metrics(batch):
            batch = constrain_batch(batch, mesh)
            return task.metrics(model(batch.x, batch.mask), batch)

        return jax.tree.map(lambda m: jnp.mean(m, axis=0), jax.lax.map(chunk_metrics, chunks))

    return Programs(
        task=task, graphdef=graphdef, tx=tx,
        eval_chunks=jax.jit(functools.partial(eval_chunks, cfg, task),
                            static_argnames=("split", "size")),
        learning_rate=jax.jit(learning_rate(cfg)),
        init=jax.jit(jax.vmap(init_one)),
        train_step=jax.jit(jax.vmap(step_one, in_axes=(0, 0, 0, None, None)), donate_argnums=0),
        evaluate=jax.jit(jax.vmap(eval_one, in_axes=(0, None))))


def _cut_grads(loss_fn, length: int, params, batch: Batch, dkey):
    """``value_and_grad(loss_fn)`` on ``batch`` cut to its first ``length`` steps (which, for a
    length bucket, drops only padding)."""
    cut = Batch(batch.x[:, :length], batch.y,
                None if batch.mask is None else batch.mask[:, :length])
    return jax.value_and_grad(loss_fn)(params, cut, dkey)


def eval_chunks(cfg: TrainConfig, task: Task, data, split: str = "validation",
                size: int | None = None) -> Batch:
    """A held-out split (``"validation"`` or ``"test"``) as ``(n_chunks, batch, ...)`` chunks of
    ``size`` examples (default ``cfg.eval_size``; rounded up to whole batches; a data-backed
    task's fixed set is cut to whole batches)."""
    n = -(-(size or cfg.eval_size) // cfg.batch)
    B = cfg.batch
    full = task.eval_set(data, eval_key(cfg, split), n * B, split=split)
    size = full.y.shape[0] // B * B
    if size == 0:
        raise UserError(f"the {split} split has {full.y.shape[0]} examples, fewer than one batch "
                        f"(batch={B}); use a smaller batch or a larger {split} split")
    return jax.tree.map(lambda a: a[:size].reshape(size // B, B, *a.shape[1:]), full)


def placed_inputs(progs: Programs, mesh, split: str, size: int | None = None):
    """``(data, chunks)`` placed as the compiled programs expect them: the task's device data
    (None for generated tasks) replicated, and the ``split``'s held-out chunks
    ``(n_chunks, batch, ...)`` split over the mesh along their batch axis."""
    data = progs.task.device_data()
    if data is not None:
        data = jax.device_put(data, replicated(mesh))
    chunks = progs.eval_chunks(data, split=split, **({} if size is None else {"size": size}))
    return data, jax.device_put(chunks, batch_sharding(mesh, leading=1))


@jax.jit(static_argnums=1)
def seed_slice(tree, i: int):
    """Model ``i``'s arrays from a seeds-stacked tree."""
    return jax.tree.map(lambda a: a[i], tree)
