"""Parity with PyTorch's nn.RNN / nn.LSTM / nn.GRU on the same weights: outputs and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax import CellConfig, Recurrence, UserError
from lstm_jax.interop import load_torch_state_dict, to_torch_state_dict


class _Torch:
    """PyTorch, imported when a test first uses it rather than while pytest collects every module
    in every worker (the import costs ≈ 3 s)."""

    def __getattr__(self, name):
        if name.startswith("_"):
            # pytest's collector probes objects for ``__test__``, ``_fixture_function_marker``…
            raise AttributeError(name)
        module = pytest.importorskip(
            "torch", reason="PyTorch is the independent reference here; `pip install -e .[dev]` "
                            "brings it")
        return getattr(module, name)


torch = _Torch()

ARCHS = ["rnn", "lstm", "gru"]
B, T, D, H, L = 3, 11, 4, 5, 2


def _torch_module(arch):
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[arch]
    torch.manual_seed(0)
    kwargs = {"nonlinearity": "tanh"} if arch == "rnn" else {}
    return cls(D, H, num_layers=L, batch_first=True, **kwargs).double()


@pytest.mark.parametrize("arch", ARCHS)
def test_outputs_and_gradients_match_pytorch(arch):
    theirs = _torch_module(arch)
    with jax.enable_x64(True):
        ours = Recurrence(D, CellConfig(arch=arch, hidden=H), L, rngs=nnx.Rngs(0),
                          dtype=jnp.float64)
        load_torch_state_dict(ours, {k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        rng = np.random.default_rng(0)
        x = rng.normal(size=(B, T, D))
        w = rng.normal(size=(B, T, H))

        def loss(model, x):
            return jnp.sum(model(x).outputs * w)

        value, (g_params, g_x) = nnx.jit(nnx.value_and_grad(loss, argnums=(0, 1)))(
            ours, jnp.asarray(x))

    xt = torch.tensor(x, requires_grad=True)
    out, _ = theirs(xt)
    t_loss = (out * torch.tensor(w)).sum()
    t_loss.backward()
    np.testing.assert_allclose(value, t_loss.item(), rtol=1e-10)
    np.testing.assert_allclose(g_x, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    tg = {k: p.grad.numpy() for k, p in theirs.named_parameters()}
    for layer in range(L):
        g = g_params.cells[layer]
        np.testing.assert_allclose(g.w_ih[...], tg[f"weight_ih_l{layer}"].T, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(g.w_hh[...], tg[f"weight_hh_l{layer}"].T, rtol=1e-9, atol=1e-12)
        if arch == "gru":
            np.testing.assert_allclose(g.bias[...], tg[f"bias_ih_l{layer}"], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(g.b_hn[...], tg[f"bias_hh_l{layer}"][2 * H:], rtol=1e-9,
                                       atol=1e-12)
        else:
            # bias = b_ih + b_hh, so its gradient equals each of theirs.
            np.testing.assert_allclose(g.bias[...], tg[f"bias_hh_l{layer}"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("arch", ARCHS)
def test_export_round_trips_through_pytorch(arch):
    ours = Recurrence(D, CellConfig(arch=arch, hidden=H), L, rngs=nnx.Rngs(3))
    theirs = _torch_module(arch).float()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in to_torch_state_dict(ours).items()})
    x = np.random.default_rng(1).normal(size=(B, T, D)).astype(np.float32)
    with torch.no_grad():
        ref = theirs(torch.tensor(x))[0].numpy()
    np.testing.assert_allclose(ours(jnp.asarray(x)).outputs, ref, rtol=1e-5, atol=1e-5)
    back = Recurrence(D, CellConfig(arch=arch, hidden=H), L, rngs=nnx.Rngs(9))
    load_torch_state_dict(back, to_torch_state_dict(ours))
    jax.tree.map(np.testing.assert_array_equal, nnx.state(back, nnx.Param),
                 nnx.state(ours, nnx.Param))


def test_wrong_state_dict_is_a_clear_error():
    ours = Recurrence(D, CellConfig(arch="lstm", hidden=H), rngs=nnx.Rngs(0))
    gru = {k: v.detach().numpy() for k, v in _torch_module("gru").state_dict().items()}
    with pytest.raises(UserError, match="weight_ih_l0"):
        load_torch_state_dict(ours, gru)
    with pytest.raises(UserError, match="bias_hh_l0"):
        load_torch_state_dict(ours, {k: v for k, v in gru.items() if k != "bias_hh_l0"})
