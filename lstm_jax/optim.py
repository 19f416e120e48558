"""Optimisers and learning-rate schedules from a :class:`lstm_jax.config.TrainConfig`.

``clip_by_global_norm`` (Pascanu et al. 2013, "On the difficulty of training recurrent neural
networks") rescales the whole gradient when its norm exceeds ``clip``; it runs before the
optimiser. Schedules: constant, or cosine decay to 0 over the run (Loshchilov & Hutter 2017),
either after ``warmup`` steps of linear warm-up from 0.
"""

from __future__ import annotations

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
    if cfg.clip is None:
        return opt
    return optax.chain(optax.clip_by_global_norm(cfg.clip), opt)
