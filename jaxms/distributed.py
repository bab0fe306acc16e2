"""JAX's distributed runtime for runs over several processes (one per host, or several on one machine).

    initialize("10.0.0.1:1234", num_processes=2, process_id=0)   # before any other JAX call

Every process runs the same program; `jax.devices()` is then every process's devices and a mesh over them
spans the processes (jaxms.ppo.parallel). On CPUs the collectives go over gloo (TCP), which JAX needs to be
told before its CPU backend starts; GPUs use NCCL.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def initialize(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join the run's processes through `coordinator` (HOST:PORT, process 0's machine). Call once, before any
    other JAX computation; blocks until all `num_processes` have joined. Raises ValueError for settings
    RunConfig refuses (the checks live there)."""
    from jaxms.config import RunConfig

    RunConfig(coordinator=coordinator, num_processes=num_processes, process_id=process_id)
    if jax.distributed.is_initialized():
        return
    # Cross-process collectives of the CPU backend (tests, CPU clusters); GPU runs use NCCL regardless.
    if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
    except RuntimeError as error:
        if "must be called before" not in str(error):
            raise
        raise ValueError("--coordinator: JAX had already started in this process; in Python, call "
                         "jaxms.distributed.initialize(...) before anything else uses JAX") from None


def is_main_process() -> bool:
    """True in process 0 (the one that logs, evaluates and writes files), and in single-process runs."""
    return jax.process_index() == 0


def any_process(flag: bool) -> bool:
    """`flag` of any process (every process must call this at the same point): e.g. a signal one received."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(np.asarray(multihost_utils.process_allgather(np.array([flag], np.bool_))).any())


def from_main_process(value: Any) -> Any:
    """Process 0's `value` (a str or a number) in every process (each must call this at the same point)."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    if isinstance(value, str):
        data = np.zeros(4096, np.uint8)
        encoded = np.frombuffer(value.encode()[:4096], np.uint8)
        data[:len(encoded)] = encoded
        shared = np.asarray(multihost_utils.broadcast_one_to_all(data))
        return bytes(shared[shared != 0]).decode()
    return type(value)(np.asarray(multihost_utils.broadcast_one_to_all(np.array(value, np.float64))))


def local_copy(tree: Any) -> Any:
    """`tree` with each array as a host array of what this process holds: the whole of a replicated array
    (parameters), this process's rows of one sharded over envs (observations), for host-side work."""

    def local(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable or x.is_fully_replicated:
            return np.asarray(jax.device_get(x))
        shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
        rows = {s.index[0].start: s.data for s in shards}  # replicas of a row block are held once
        return np.concatenate([np.asarray(data) for _, data in sorted(rows.items())])

    return jax.tree.map(local, tree)
