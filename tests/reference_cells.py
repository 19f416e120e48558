"""Independent references for the cells added after the first three, from the papers' equations.

Each ``*_step(xp, p, carry, x_t)`` is one step written gate by gate with its own weight slicing
(not lstm_jax's code); ``xp`` is ``numpy`` (float64 loops, finite differences) or ``jax.numpy``
(``jax.jacrev`` of the unrolled loop for the probes). ``p`` holds lstm_jax's parameter names.
"""

from __future__ import annotations

import numpy as np


def _blocks(p, G):
    H = p["w_hh"].shape[0]
    W = [p["w_ih"][:, k * H:(k + 1) * H] for k in range(G)]
    U = [p["w_hh"][:, k * H:(k + 1) * H] for k in range(G)]
    b = [p["bias"][k * H:(k + 1) * H] for k in range(G)]
    return W, U, b


def _sig(xp, a):
    return 1.0 / (1.0 + xp.exp(-a))


def peephole_forget(xp, p, carry, x):
    """The peephole LSTM's forget gate f_t (it sees C_{t−1})."""
    W, U, b = _blocks(p, 4)
    return _sig(xp, x @ W[1] + carry["h"] @ U[1] + p["p_f"] * carry["c"] + b[1])


def peephole_step(xp, p, carry, x):
    """Gers & Schmidhuber (2000): i, f see C_{t−1}; o sees C_t."""
    W, U, b = _blocks(p, 4)
    h, c = carry["h"], carry["c"]
    i = _sig(xp, x @ W[0] + h @ U[0] + p["p_i"] * c + b[0])
    f = peephole_forget(xp, p, carry, x)
    g = xp.tanh(x @ W[2] + h @ U[2] + b[2])
    c_new = f * c + i * g
    o = _sig(xp, x @ W[3] + h @ U[3] + p["p_o"] * c_new + b[3])
    return {"h": o * xp.tanh(c_new), "c": c_new}


def cifg_forget(xp, p, carry, x):
    """CIFG's forget gate f_t (the input gate is 1 − f_t)."""
    W, U, b = _blocks(p, 3)
    return _sig(xp, x @ W[0] + carry["h"] @ U[0] + b[0])


def cifg_step(xp, p, carry, x):
    """Greff et al. (2017), CIFG: i = 1 − f."""
    W, U, b = _blocks(p, 3)
    h, c = carry["h"], carry["c"]
    f = cifg_forget(xp, p, carry, x)
    g = xp.tanh(x @ W[1] + h @ U[1] + b[1])
    o = _sig(xp, x @ W[2] + h @ U[2] + b[2])
    c_new = f * c + (1.0 - f) * g
    return {"h": o * xp.tanh(c_new), "c": c_new}


def janet_forget(xp, p, carry, x):
    """JANET's forget gate σ(s_t), s_t = W x_t + U h_{t−1} + b (eq. 9)."""
    W, U, b = _blocks(p, 2)
    return _sig(xp, x @ W[0] + carry["h"] @ U[0] + b[0])


def janet_step(xp, p, carry, x, beta=1.0):
    """van der Westhuizen & Lasenby (2018), eqs. 9–12: h_t = C_t."""
    W, U, b = _blocks(p, 2)
    h = carry["h"]
    s = x @ W[0] + h @ U[0] + b[0]
    c_tilde = xp.tanh(x @ W[1] + h @ U[1] + b[1])
    c = janet_forget(xp, p, carry, x) * h + (1.0 - _sig(xp, s - beta)) * c_tilde
    return {"h": c}


def indrnn_step(xp, p, carry, x):
    """Li et al. (2018), eq. 2: h_t = relu(W x_t + u ⊙ h_{t−1} + b)."""
    z = x @ p["w_ih"] + p["u"] * carry["h"] + p["bias"]
    return {"h": xp.maximum(z, 0.0)}


def exprnn_step(xp, p, carry, x):
    """Lezcano-Casado & Martínez-Rubio (2019): h_t = modrelu(W x_t + h_{t−1} expm(A) + b), with
    A = S − Sᵀ from the strict upper triangle; expm by SciPy (Padé, float64) on the host."""
    import scipy.linalg

    w = np.asarray(p["w_skew"], np.float64)
    a = np.triu(w, 1) - np.triu(w, 1).T
    b_rec = scipy.linalg.expm(a)
    z = x @ p["w_ih"] + carry["h"] @ b_rec + p["bias"]
    return {"h": xp.sign(z) * xp.maximum(xp.abs(z) + p["b_mod"], 0.0)}


def lru_step(xp, p, carry, x):
    """Orvieto et al. (2023), Appendix A, in complex arithmetic: x_t = λ x_{t−1} + γ (B u_t),
    y_t = Re(C x_t) + D u_t; the state is packed as [Re x | Im x]."""
    H = p["c_re"].shape[1]
    N = H // 2
    lam = xp.exp(-xp.exp(p["nu_log"]) + 1j * xp.exp(p["theta_log"]))
    gamma = xp.exp(p["gamma_log"])
    w, bias = p["w_ih"], p["bias"]
    bu = (x @ w[:, :N] + bias[:N]) + 1j * (x @ w[:, N:H] + bias[N:H])
    x_prev = carry["c"][:, :N] + 1j * carry["c"][:, N:]
    x_new = lam * x_prev + gamma * bu
    y = xp.real(x_new @ (p["c_re"] + 1j * p["c_im"])) + x @ w[:, H:] + bias[H:]
    return {"h": y, "c": xp.concatenate([xp.real(x_new), xp.imag(x_new)], axis=-1)}


# The forget gate of each cell that has one, for the ``cec`` probe's reference ∏f.
FORGET_GATES = {"peephole": peephole_forget, "cifg": cifg_forget, "janet": janet_forget}


def forget_product_log10(step, forget, p, x, mask, carry0, anchors):
    """log10 ‖∏_{j=a−k+1..a} f_j‖_F per row and lag k, ``(B, T)``, by a plain float64 loop
    (a padded step counts as f = 1: it copies the carry); NaN where k > a, the row's anchor."""
    carry, fs = dict(carry0), []
    for t in range(x.shape[1]):
        f = forget(np, p, carry, x[:, t])
        new = step(np, p, carry, x[:, t])
        m = mask[:, t][:, None]
        fs.append(np.where(m, f, 1.0))
        carry = {k: np.where(m, new[k], carry[k]) for k in carry}
    fs = np.stack(fs, axis=1)  # (B, T, H)
    out = np.full(mask.shape, np.nan)
    for row, a in enumerate(anchors):
        prod = np.ones(fs.shape[-1])
        for k in range(a + 1):
            out[row, k] = np.log10(np.linalg.norm(prod))
            prod = prod * fs[row, a - k]
    return out


def run(xp, step, p, x, carry0, mask=None):
    """Loop ``step`` over ``x (B, T, D)``; a masked step keeps the carry. Returns
    ``hs (B, T, H)`` and the final carry."""
    carry = dict(carry0)
    hs = []
    for t in range(x.shape[1]):
        new = step(xp, p, carry, x[:, t])
        if mask is not None:
            m = mask[:, t][:, None]
            new = {k: xp.where(m, new[k], carry[k]) for k in carry}
        carry = new
        hs.append(carry["h"])
    return xp.stack(hs, axis=1), carry


def finite_difference_grad(f, params: dict, eps: float = 1e-6) -> dict:
    """Central differences of the scalar ``f(params)`` (NumPy float64) w.r.t. every entry."""
    grads = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            g[idx] = (f(plus) - f(minus)) / (2 * eps)
        grads[name] = g
    return grads
