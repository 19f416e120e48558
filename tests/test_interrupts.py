"""Signals reach a process whose main thread is blocked inside XLA (lstm_jax.interrupts).

The child process blocks in ``block_until_ready`` on a computation whose host callback sleeps,
which is where a plain Python signal handler never runs (it only runs between bytecodes of the
main thread)."""

import signal
import subprocess
import sys
import time

CHILD = r"""
import sys, time
import jax, jax.numpy as jnp
from lstm_jax import interrupts

def slow(x):
    print("blocked", flush=True)
    time.sleep(60)
    return x

with interrupts.installed(hard=True, what="child") as intr:
    if sys.argv[1] == "armed":
        intr.arm()
    y = jax.pure_callback(slow, jax.ShapeDtypeStruct((), jnp.float32), jnp.float32(1))
    jax.block_until_ready(jax.jit(lambda v: v * 2)(y))
print("finished without exiting", flush=True)
"""


def _start(mode):
    return subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_signals_end_a_process_blocked_in_xla():
    unarmed, armed = _start("unarmed"), _start("armed")  # both start up at once
    for p in (unarmed, armed):
        assert p.stdout.readline().strip() == "blocked"
    time.sleep(0.3)
    t0 = time.monotonic()
    unarmed.send_signal(signal.SIGTERM)
    assert unarmed.wait(timeout=10) == 128 + signal.SIGTERM
    assert time.monotonic() - t0 < 10
    assert "SIGTERM (nothing to save yet): exiting now" in unarmed.stderr.read()

    armed.send_signal(signal.SIGINT)  # armed: the first signal only asks the loop to stop
    time.sleep(1.0)
    assert armed.poll() is None
    armed.send_signal(signal.SIGINT)  # the second one ends it at once
    assert armed.wait(timeout=10) == 128 + signal.SIGINT
    assert "SIGINT (second signal): exiting now" in armed.stderr.read()
    for p in (unarmed, armed):
        p.stdout.close()
        p.stderr.close()


def test_arming_starts_afresh():
    """A policy shared by several runs in one process (``compare``, ``train --arch a,b``): a
    signal handled by one run is not carried into the next one's arm()."""
    import signal

    from lstm_jax.interrupts import Interrupts

    policy = Interrupts(hard=False)
    policy.arm()
    policy._received(signal.SIGINT)  # the first signal while armed: a stop request
    assert (policy.signal, policy.count) == ("SIGINT", 1)
    policy.disarm()
    policy.arm()  # the next run
    assert (policy.signal, policy.count, policy.armed) == (None, 0, True)
