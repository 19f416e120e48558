"""JAX-only: a data-parallel step over 2 CPU devices, dispatched 300 times without waiting."""
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

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
    l, g = jax.value_and_grad(loss)(w, x)
    return w - 1e-3 * g, l


w = jax.device_put(jnp.eye(H), NamedSharding(mesh, P()))
x = jax.device_put(jnp.ones((T, B, H)), NamedSharding(mesh, P(None, "data")))
wait_every = int(sys.argv[1])  # 0: never wait (JAX's default asynchronous dispatch)
for i in range(300):
    w, l = step(w, x)
    if wait_every and (i + 1) % wait_every == 0:
        l.block_until_ready()
print("done", float(l))
