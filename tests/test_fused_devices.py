"""The fused recurrence with its batch split over several devices (``fused._split_batch``).

In a process with 4 fake CPU devices and a data mesh in context (``jax.set_mesh``), the fused
layer runs each device's share of the batch under ``jax.shard_map``. Reference: ``jax.grad`` of
the plain scan on one device, float64; outputs and gradients with respect to parameters, inputs
and the initial carry, with a mask, with and without segment remat, for every cell with a fused
path.
The compiled step must not gather the batch (the partitioner, left alone, all-gathered inside
the step and ran 2× slower), and a batch that does not split evenly falls back to one program.
"""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, re
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from lstm_jax.cells import step_fn
    from lstm_jax.fused import fused_layer
    from lstm_jax.recurrence import scan_layer
    from lstm_jax.sharding import data_mesh
    from tests.test_fused import _outputs_and_grads, _setup

    assert len(jax.devices()) == 4, jax.devices()
    mesh = data_mesh()
    report = {}
    with jax.enable_x64(True):
        for arch in ("rnn", "lstm", "gru", "cifg", "janet", "peephole"):
            for B in (8, 6):
                cell, params, xs, mask, carry0, w_seq = _setup(arch, jnp.float64, T=9, B=B)
                step = step_fn(cell.config)
                ref = jax.jit(_outputs_and_grads(
                    lambda p, x, c: tuple(scan_layer(step, p, x, mask, c)), w_seq))(
                    params, xs, carry0)
                if B % 4 == 0:  # place the batch as lstm-jax train does
                    xs = jax.device_put(xs, NamedSharding(mesh, P(None, "data")))
                    carry0 = jax.device_put(carry0, NamedSharding(mesh, P("data")))
                for remat, seg in ((False, None), (True, 4)):
                    fn = jax.jit(_outputs_and_grads(
                        lambda p, x, c, r=remat, s=seg: fused_layer(arch, p, x, mask, c,
                                                                    remat=r, segment=s), w_seq))
                    with jax.set_mesh(mesh):
                        got = fn(params, xs, carry0)
                        hlo = fn.lower(params, xs, carry0).compile().as_text()
                    err = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                              for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got),
                                              strict=True))
                    counts = {op: len(re.findall(op + r"[-a-z]*\\(", hlo))
                              for op in ("all-gather", "all-reduce", "all-to-all")}
                    report[f"{arch} B={B} remat={remat}"] = {"err": err, **counts}
    print(json.dumps(report))
""")


def test_split_batch_matches_one_device_and_never_gathers():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report) == 24  # 6 cells × 2 batches × remat or not
    for case, r in report.items():
        assert r["err"] < 1e-11, (case, r)
        assert r["all-gather"] == 0 and r["all-to-all"] == 0, (case, r)
        if "B=8" in case:  # split: the weight gradients are summed over the 4 devices
            assert r["all-reduce"] >= 1, (case, r)
