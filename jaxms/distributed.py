"""JAX's distributed runtime for runs over several processes (one per host, or several on one machine).

    initialize("10.0.0.1:1234", num_processes=2, process_id=0)   # before any other JAX call

Every process runs the same program; `jax.devices()` is then every process's devices and a mesh over them
spans the processes (jaxms.ppo.parallel). On CPUs the collectives go over gloo (TCP), which JAX needs to be
told before its CPU backend starts; GPUs use NCCL.
"""

from __future__ import annotations

import re

import jax

ADDRESS = re.compile(r"^[\w.\-]+:\d{1,5}$")


def check_address(address: str) -> None:
    """ValueError unless `address` is HOST:PORT."""
    if not ADDRESS.match(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise ValueError(f"--coordinator {address!r} is not accepted: give HOST:PORT (e.g. 10.0.0.1:1234) "
                         "of process 0's machine, a free port")


def initialize(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join the run's processes through `coordinator` (HOST:PORT, process 0's machine). Call once, before any
    other JAX computation; blocks until all `num_processes` have joined."""
    check_address(coordinator)
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id {process_id} is not accepted with --num-processes {num_processes}: "
                         f"give 0..{num_processes - 1}")
    # Cross-process collectives of the CPU backend (tests, CPU clusters); GPU runs use NCCL regardless.
    if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)


def is_main_process() -> bool:
    """True in process 0 (the one that logs, evaluates and writes files), and in single-process runs."""
    return jax.process_index() == 0
