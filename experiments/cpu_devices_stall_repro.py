"""JAX-only reproduction of the XLA:CPU all-reduce stall (jax/jaxlib 0.10.2, 2 cores).

A tanh-RNN training step with its batch split over 2 CPU devices (so every step ends in an
all-reduce of the gradient), dispatched 300 times. ``WAIT_EVERY=0`` leaves JAX's asynchronous
queue alone: on the 2-core AMD EPYC the process aborted after 64 s with "Termination timeout for
all reduce … of 40 seconds exceeded" (exit 134). ``WAIT_EVERY=1`` waits for each step: 12 s, done.
lstm_jax waits for each step on a multi-device CPU mesh (``lstm_jax.sharding.waits_for_each_step``;
docs/robustness.md; checked by ``tests/test_train.py::test_eight_devices_match_one``).

    python experiments/cpu_devices_stall_repro.py WAIT_EVERY
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

jax.config.update("jax_num_cpu_devices", 2)
mesh = Mesh(np.array(jax.devices()), ("data",))
H, B, T = 128, 320, 50


def loss(w, x):
    def f(h, xt):
        h = jnp.tanh(h @ w + xt)
        return h, None
    h, _ = jax.lax.scan(f, jnp.zeros((x.shape[1], H)), x)
    return jnp.mean(h ** 2)


@jax.jit
def step(w, x):
    value, grad = jax.value_and_grad(loss)(w, x)
    return w - 1e-3 * grad, value


w = jax.device_put(jnp.eye(H), NamedSharding(mesh, P()))
x = jax.device_put(jnp.ones((T, B, H)), NamedSharding(mesh, P(None, "data")))
wait_every = int(sys.argv[1])  # 0: never wait (JAX's default asynchronous dispatch)
for i in range(300):
    w, value = step(w, x)
    if wait_every and (i + 1) % wait_every == 0:
        value.block_until_ready()
print("done", float(value))
