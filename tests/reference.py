"""Independent references for the cells: the equations in plain NumPy, one loop over time."""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_run(arch: str, params: dict, x: np.ndarray, mask: np.ndarray | None = None,
              reset_after: bool = True):
    """Run one layer over ``x (B, T, D)``; returns ``hs (B, T, H)`` and the final carry dict.

    Written from the papers' equations, gate by gate, not from lstm_jax's code.
    """
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    B, T, _ = x.shape
    H = p["w_hh"].shape[0]
    h = np.zeros((B, H))
    c = np.zeros((B, H))
    hs = []
    for t in range(T):
        xt = np.asarray(x[:, t], np.float64)
        if arch == "rnn":
            h_new = np.tanh(xt @ p["w_ih"] + h @ p["w_hh"] + p["bias"])
            c_new = c
        elif arch == "lstm":
            W = lambda k: p["w_ih"][:, k * H:(k + 1) * H]  # noqa: E731
            U = lambda k: p["w_hh"][:, k * H:(k + 1) * H]  # noqa: E731
            b = lambda k: p["bias"][k * H:(k + 1) * H]  # noqa: E731
            i = sigmoid(xt @ W(0) + h @ U(0) + b(0))
            f = sigmoid(xt @ W(1) + h @ U(1) + b(1))
            c_tilde = np.tanh(xt @ W(2) + h @ U(2) + b(2))
            o = sigmoid(xt @ W(3) + h @ U(3) + b(3))
            c_new = f * c + i * c_tilde
            h_new = o * np.tanh(c_new)
        else:
            W = lambda k: p["w_ih"][:, k * H:(k + 1) * H]  # noqa: E731
            U = lambda k: p["w_hh"][:, k * H:(k + 1) * H]  # noqa: E731
            b = lambda k: p["bias"][k * H:(k + 1) * H]  # noqa: E731
            r = sigmoid(xt @ W(0) + h @ U(0) + b(0))
            z = sigmoid(xt @ W(1) + h @ U(1) + b(1))
            if reset_after:
                n = np.tanh(xt @ W(2) + b(2) + r * (h @ U(2) + p["b_hn"]))
            else:
                n = np.tanh(xt @ W(2) + b(2) + (r * h) @ U(2) + p["b_hn"])
            h_new = (1 - z) * n + z * h
            c_new = c
        if mask is not None:
            m = np.asarray(mask[:, t], bool)[:, None]
            h_new = np.where(m, h_new, h)
            c_new = np.where(m, c_new, c)
        h, c = h_new, c_new
        hs.append(h)
    final = {"h": h, "c": c} if arch == "lstm" else {"h": h}
    return np.stack(hs, axis=1), final
