"""XLA options of the test suite: compile fast everywhere, run fast where a test is runtime-bound.

Most of the suite's time is XLA compiling small programs, not running them. XLA CPU's older loop emitters,
LLVM without its expensive passes and at -O0 rather than -O3 compile the env's step faster and compute the
same bits (test_golden's hashes are unchanged); programs run slower with them (a small map's tick ~2x at
-O2, ~5x at -O0), so only the tests use them (conftest.py sets them before JAX starts). Cold suite on the
2-core Intel Xeon (2026-12-03, 387 tests): 10:01 with the three at -O2 (1,172 CPU-seconds), 11:36 at -O3
(1,361), 13:36-14:19 with the expensive passes off alone; on the 2-core AMD EPYC, 17:40 with the first two
and 20:26 with XLA's defaults (2026-12-02); -O2 -> -O0, same AMD EPYC (2026-12-04, fresh clone, 368 tests
run, 28 skipped): 816 -> 698 s of pytest (1,554 -> 1,304 test-seconds).

At -O0 a vmapped program and its single-env form may differ by an ulp (XLA's vector and scalar code for
`pow`, a batched dot's order): test_observe's vmap test compiles both with XLA's defaults, where a user's
programs agree (`compiled_as_users_run`), and the tests' minimal observer pools with integer sums (its
`jax.image.resize` was a dot).

The learning smoke tests are the other way round: a few programs run for a minute. `compiled_as_users_run`
compiles one of them with XLA's defaults, as a user's run has them (`users_vector_step` for a vector env
stepped from the host).
"""

from __future__ import annotations

TEST_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false", "--xla_llvm_disable_expensive_passes=true",
                  "--xla_backend_optimization_level=0")
# The same options at XLA's defaults, as per-program overrides (`Lowered.compile(compiler_options=...)`).
XLA_DEFAULTS = {"xla_cpu_use_fusion_emitters": True, "xla_llvm_disable_expensive_passes": False,
                "xla_backend_optimization_level": 3}


def compiled_as_users_run(jitted, *args):
    """`jitted` (a `jax.jit` function) compiled for `args` with XLA's default options rather than the suite's.

    For a test whose time is running the program: the JAX learning smoke's chunk ran in 6.8 s with the
    suite's options and 3.8 s with these, and compiled in 6.7 s rather than 10.0 s (2-core Intel Xeon).
    Returns the compiled program: call it with arguments shaped like `args`.
    """
    return jitted.lower(*args).compile(compiler_options=XLA_DEFAULTS)


def users_vector_step(envs) -> None:
    """Compile a `JaxVectorEnv`'s batched step with XLA's defaults (for tests that step it many times); after
    its reset (the step is compiled for its state)."""
    import jax
    import numpy as np

    keys = jax.random.split(jax.random.key(0), envs.num_envs)
    envs._step_fn = compiled_as_users_run(envs._step_fn, keys, envs._state, np.zeros(envs.num_envs, np.int32),
                                          envs.params)
