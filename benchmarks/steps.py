"""The benchmarked training step, built three ways on the same weights.

One step = forward through time, a last-step linear readout ``ŷ = h_T w + b``, the scalar loss
``mean((ŷ − y)²)``, and the gradients with respect to every parameter (cell and readout; not the
inputs), i.e. forward + backpropagation through time (BPTT).

* :func:`jax_step`: :class:`lstm_jax.recurrence.Recurrence` in one of :data:`IMPLS`: ``"scan"``
  (``jax.grad`` of the plain ``lax.scan``), ``"fused"`` (:mod:`lstm_jax.fused`) or
  ``"fused_bf16"`` (the same with ``matmul_dtype="bfloat16"``), jitted with
  ``nnx.split``/``nnx.merge`` inside the jitted function;
* :func:`torch_step`: PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (``batch_first``) with the same
  weights, copied with :func:`lstm_jax.interop.to_torch_state_dict`; with ``autocast=True`` under
  ``torch.autocast("cpu", torch.bfloat16)``, PyTorch's own mixed precision;
* :func:`cudnn_step`: ``jax.experimental.rnn.lstm`` (cuDNN), only on a GPU backend.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lstm_jax.cells import CellConfig
from lstm_jax.recurrence import Recurrence
from lstm_jax.sharding import batch_sharding, data_mesh, replicated

# gate blocks: the roofline matmuls
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "cifg": 3, "janet": 2, "peephole": 4}

#: Benchmarked JAX variants: name -> (Recurrence ``impl``, ``matmul_dtype``).
IMPLS = {"scan": ("scan", "float32"), "fused": ("fused", "float32"),
         "fused_bf16": ("fused", "bfloat16")}


def make_data(B: int, T: int, D: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D), dtype=np.float32)
    y = rng.standard_normal((B,), dtype=np.float32)
    return x, y


def make_model(arch: str, D: int, H: int, *, impl: str = "scan", unroll: int = 1,
               remat: bool = False, seed: int = 0) -> Recurrence:
    """The benchmarked layer; ``impl`` is a key of :data:`IMPLS`."""
    if impl not in IMPLS:
        raise ValueError(f"impl={impl!r} is not one of {', '.join(IMPLS)}")
    recurrence_impl, matmul_dtype = IMPLS[impl]
    return Recurrence(D, CellConfig(arch, H), rngs=nnx.Rngs(seed), impl=recurrence_impl,
                      unroll=unroll, remat=remat, matmul_dtype=matmul_dtype)


def readout_init(H: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    return {"w": (rng.standard_normal((H, 1)) / np.sqrt(H)).astype(np.float32),
            "b": np.zeros((1,), np.float32)}


def jax_loss_and_grad(model: Recurrence):
    """Returns ``(fn, params)``: ``fn(params, x, y) -> (loss, grads)``, not yet jitted."""
    graphdef, state = nnx.split(model)

    def loss_fn(params, x, y):
        state, ro = params
        m = nnx.merge(graphdef, state)
        h = m(x).final_carry[-1]["h"]
        pred = (h @ ro["w"] + ro["b"])[:, 0]
        return jnp.mean((pred - y) ** 2)

    return jax.value_and_grad(loss_fn), state


def jax_step(model: Recurrence, readout: dict, x, y):
    """A zero-argument callable running one jitted training step and blocking on the result."""
    fn, state = jax_loss_and_grad(model)
    return _jitted_run(fn, (state, jax.tree.map(jnp.asarray, readout)), x, y)


def _jitted_run(loss_and_grad, params, x, y):
    """Jit ``loss_and_grad(params, x, y)``; return a callable that runs it and blocks on the grads.

    As ``lstm-jax train`` does, the batch is split over every device (``lstm_jax.sharding``) and
    the parameters replicated; with one device that is the plain single-device step.
    """
    mesh = data_mesh()
    step = jax.jit(loss_and_grad)
    params = jax.device_put(params, replicated(mesh))
    xj, yj = (jax.device_put(jnp.asarray(a), batch_sharding(mesh)) for a in (x, y))

    def run():
        with jax.set_mesh(mesh):
            loss, grads = step(params, xj, yj)
        jax.block_until_ready(grads)
        return loss

    return run


def torch_step(torch, model: Recurrence, readout: dict, x, y, *, autocast: bool = False):
    """The same step in PyTorch on the same weights (``torch`` from ``setup_torch()``).

    ``autocast``: run forward and loss under ``torch.autocast("cpu", dtype=torch.bfloat16)``
    (oneDNN's bfloat16 RNN; its outputs are bfloat16), the backward outside it, as PyTorch's
    documentation prescribes.
    """
    from lstm_jax.interop import to_torch_state_dict

    arch, H, D = model.config.arch, model.config.hidden, model.in_features
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[arch]
    kwargs = {"nonlinearity": "tanh"} if arch == "rnn" else {}
    rnn = cls(D, H, batch_first=True, **kwargs)
    rnn.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                         for k, v in to_torch_state_dict(model).items()})
    head = torch.nn.Linear(H, 1)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(readout["w"].T.copy()))
        head.bias.copy_(torch.from_numpy(readout["b"]))
    params = list(rnn.parameters()) + list(head.parameters())
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def forward():
        out, _ = rnn(xt)
        return ((head(out[:, -1]).squeeze(-1) - yt) ** 2).mean()

    def run():
        for p in params:
            p.grad = None
        if autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = forward()
        else:
            loss = forward()
        loss.backward()
        return loss.item()

    return run


def cudnn_step(model: Recurrence, readout: dict, x, y):
    """``jax.experimental.rnn.lstm`` (cuDNN) training step; raises on a non-GPU backend."""
    if jax.default_backend() != "gpu":
        raise RuntimeError(f"jax.experimental.rnn's cuDNN LSTM needs a GPU backend; "
                           f"this backend is {jax.default_backend()!r}")
    if model.config.arch != "lstm":
        raise RuntimeError("jax.experimental.rnn provides only an LSTM")
    from jax.experimental import rnn as jrnn

    H, D = model.config.hidden, model.in_features
    B = x.shape[0]
    weights = jrnn.init_lstm_weight(jax.random.key(0), D, H, 1, False)

    def loss_fn(params, x, y):
        w, ro = params
        h0 = jnp.zeros((1, B, H), x.dtype)
        seq_lengths = jnp.full((B,), x.shape[1], jnp.int32)
        _, h_n, _ = jrnn.lstm(x, h0, h0, w, seq_lengths, input_size=D, hidden_size=H,
                              num_layers=1, dropout=0.0, bidirectional=False)
        pred = (h_n[0] @ ro["w"] + ro["b"])[:, 0]
        return jnp.mean((pred - y) ** 2)

    return _jitted_run(jax.value_and_grad(loss_fn), (weights, jax.tree.map(jnp.asarray, readout)), x, y)
