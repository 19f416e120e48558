"""Optimisers and learning-rate schedules from a :class:`lstm_jax.config.TrainConfig`.

``clip_by_global_norm`` (Pascanu et al. 2013, "On the difficulty of training recurrent neural
networks") rescales the whole gradient when its norm exceeds ``clip``; it runs before the
optimiser. Schedules: constant, or cosine decay to 0 over the run (Loshchilov & Hutter 2017),
either after ``warmup`` steps of linear warm-up from 0. ``embed_lr_scale`` multiplies the
embedding table's updates (0 freezes it, e.g. to keep pre-trained word vectors as they are).
"""

from __future__ import annotations

import jax
import optax

from lstm_jax.config import TrainConfig


def learning_rate(cfg: TrainConfig) -> optax.Schedule:
    if cfg.schedule == "cosine":
        if cfg.warmup:
            return optax.warmup_cosine_decay_schedule(0.0, cfg.lr, cfg.warmup, cfg.steps, 0.0)
        return optax.cosine_decay_schedule(cfg.lr, cfg.steps)
    if cfg.warmup:
        return optax.join_schedules([optax.linear_schedule(0.0, cfg.lr, cfg.warmup),
                                     optax.constant_schedule(cfg.lr)], [cfg.warmup])
    return optax.constant_schedule(cfg.lr)


def optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    lr = learning_rate(cfg)
    if cfg.optimizer == "adam":
        opt = optax.adam(lr)
    elif cfg.optimizer == "rmsprop":
        opt = optax.rmsprop(lr, decay=0.9, momentum=cfg.momentum or None)
    else:
        opt = optax.sgd(lr, momentum=cfg.momentum or None)
    if cfg.embed_lr_scale != 1.0:
        opt = optax.chain(opt, optax.masked(optax.scale(cfg.embed_lr_scale), embedding_mask))
    if cfg.clip is None:
        return opt
    return optax.chain(optax.clip_by_global_norm(cfg.clip), opt)


def embedding_mask(params):
    """True on the leaves of a ``SequenceModel``'s embedding table (``params["embed"]``)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: path[0] == jax.tree_util.DictKey("embed"), params)
