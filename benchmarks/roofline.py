"""The matmul roofline of one training step: the time of just the matrix products it must do.

For a layer with ``G`` gate blocks (RNN 1, LSTM 4, GRU 3), batch B, T steps, input D, hidden H::

    forward   input projection   (T·B, D) × (D, G·H)           once
              recurrent          (B, H) × (H, G·H)             T times, sequentially
    backward  recurrent data     (B, G·H) × (G·H, H)           T times, sequentially
              dW_hh              (H, T·B) × (T·B, G·H)         once
              dW_ih              (D, T·B) × (T·B, G·H)         once

(no input gradient: the benchmarked step differentiates parameters only). Every product is
timed with each available library (PyTorch's oneDNN/MKL BLAS, NumPy's BLAS) on preallocated
outputs; the roofline is the faster library's total. The T sequential small products are a
Python loop, so the roofline includes ~1–3 µs of call overhead per product (a few % at the
smallest shapes): it is a slightly generous limit.
"""

from __future__ import annotations

import numpy as np

from benchmarks.steps import GATES


def matmul_flops(arch: str, B: int, T: int, D: int, H: int) -> float:
    GH = GATES[arch] * H
    return 2.0 * T * B * GH * (2 * D + 3 * H)


def _operands(arch, B, T, D, H, seed=0):
    GH = GATES[arch] * H
    rng = np.random.default_rng(seed)
    f = lambda *s: (rng.standard_normal(s) * 0.1).astype(np.float32)
    return {"x": f(T * B, D), "w_ih": f(D, GH), "h": f(B, H), "w_hh": f(H, GH),
            "dz": f(B, GH), "w_hh_t": f(GH, H), "hs_t": f(H, T * B), "xs_t": f(D, T * B),
            "dzs": f(T * B, GH),
            "out_proj": np.empty((T * B, GH), np.float32), "out_rec": np.empty((B, GH), np.float32),
            "out_dh": np.empty((B, H), np.float32), "out_dwhh": np.empty((H, GH), np.float32),
            "out_dwih": np.empty((D, GH), np.float32)}


def _matmul_sequence(mm, o, T):
    """The matmuls of one training step: input projection, T recurrent products forward, T data
    gradients backward, and the two weight gradients as single products over all steps."""

    def run():
        mm(o["x"], o["w_ih"], out=o["out_proj"])
        h, w, out = o["h"], o["w_hh"], o["out_rec"]
        for _ in range(T):
            mm(h, w, out=out)
        dz, wt, dh = o["dz"], o["w_hh_t"], o["out_dh"]
        for _ in range(T):
            mm(dz, wt, out=dh)
        mm(o["hs_t"], o["dzs"], out=o["out_dwhh"])
        mm(o["xs_t"], o["dzs"], out=o["out_dwih"])

    return run


def numpy_roofline(arch, B, T, D, H):
    return _matmul_sequence(np.matmul, _operands(arch, B, T, D, H), T)


def torch_roofline(torch, arch, B, T, D, H):
    o = {k: torch.from_numpy(v) for k, v in _operands(arch, B, T, D, H).items()}
    return _matmul_sequence(torch.mm, o, T)
