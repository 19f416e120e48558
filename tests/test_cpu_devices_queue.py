"""Training on a CPU split into several devices waits for every step (``sharding.steps_in_flight``).

Left to JAX's asynchronous dispatch, the hundreds of data-parallel steps queued between two
evaluations stall XLA:CPU's in-process all-reduce until its rendezvous timeout aborts the process
(jaxlib 0.10.2; ``experiments/cpu_devices_stall_repro.py`` reproduces it without lstm_jax). The
stall itself takes a minute to show, so it is measured in docs/robustness.md, not here; this test
checks the guard: a process with 2 CPU devices waits for each step; a one-device mesh keeps the
asynchronous queue.
"""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys, tempfile
    import jax
    from jax.sharding import Mesh
    import lstm_jax.train as train_mod
    from lstm_jax.config import TrainConfig
    from lstm_jax.sharding import data_mesh, steps_in_flight

    calls = []
    real = jax.block_until_ready
    train_mod.jax.block_until_ready = lambda x: (calls.append(1), real(x))[1]
    cfg = TrainConfig(task="adding", seq_len=6, arch="rnn", hidden=4, steps=12, batch=8,
                      seeds=1, eval_every=12, eval_size=8, checkpoint_every=12)
    with tempfile.TemporaryDirectory() as out:
        train_mod.train(cfg, out, log=lambda *_: None)
    print(json.dumps({"devices": len(jax.devices()),
                      "in_flight": steps_in_flight(data_mesh()),
                      "one_device_mesh": steps_in_flight(Mesh(jax.devices()[:1], ("data",))),
                      "waits": len(calls)}))
""")


def _run(devices: int) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_several_cpu_devices_wait_for_every_step():
    two = _run(2)
    assert two["devices"] == 2
    assert two["in_flight"] == 1 and two["one_device_mesh"] is None
    assert two["waits"] >= 12  # one per step (the first step adds its own)
