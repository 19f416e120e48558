"""Optimisers and learning-rate schedules from a :class:`lstm_jax.config.TrainConfig`.

``clip_by_global_norm`` (Pascanu et al. 2013, "On the difficulty of training recurrent neural
networks") rescales the whole gradient when its norm exceeds ``clip``; it runs before the
optimiser. Schedules: constant, or cosine decay to 0 over the run (Loshchilov & Hutter 2017),
either after ``warmup`` steps of linear warm-up from 0. ``embed_lr_scale`` multiplies the
embedding table's updates (0 freezes it, e.g. to keep pre-trained word vectors as they are);
``recurrent_lr_scale`` the updates of every cell's recurrent parameters (its
``recurrent_names``: ``w_hh``, GRU's ``b_hn``, IndRNN's ``u``, expRNN's ``w_skew``, the LRU's
``ν, θ, γ``, …), as expRNN's
authors train the skew-symmetric generator at a tenth of the rate (Lezcano-Casado & Martínez-Rubio
2019, their ``lr_orth``). Both scale the optimiser's update, so with Adam they act as a smaller
learning rate for those parameters.
"""

from __future__ import annotations

import jax
import optax

from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError


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
    if cfg.recurrent_lr_scale != 1.0:
        opt = optax.chain(opt, optax.masked(optax.scale(cfg.recurrent_lr_scale),
                                            recurrent_mask(recurrent_names(cfg))))
    if cfg.clip is None:
        return opt
    return optax.chain(optax.clip_by_global_norm(cfg.clip), opt)


def embedding_mask(params):
    """True on the leaves of a ``SequenceModel``'s embedding table (``params["embed"]``)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: path[0] == jax.tree_util.DictKey("embed"), params)


def recurrent_names(cfg: TrainConfig) -> frozenset[str]:
    """The recurrent parameters of ``cfg``'s cell (:attr:`RecurrentCell.recurrent_names`)."""
    from lstm_jax.cells import cell_class

    return frozenset(cell_class(cfg.arch).recurrent_names)


def recurrent_mask(names: frozenset[str]):
    """A mask function: True on the leaves named in ``names`` inside a stack's ``cells``; a
    model in which none matches is refused (the scale would silently do nothing)."""
    def key(k):
        return getattr(k, "key", getattr(k, "idx", getattr(k, "name", None)))

    def is_recurrent(path, _):
        keys = [key(k) for k in path]
        return "cells" in keys and any(k in names for k in keys[keys.index("cells") + 1:])

    def mask(params):
        out = jax.tree_util.tree_map_with_path(is_recurrent, params)
        if not any(jax.tree.leaves(out)):
            raise UserError(f"recurrent_lr_scale: the model's cells have no parameter named "
                            f"{sorted(names)} (the cell's recurrent_names)")
        return out

    return mask
