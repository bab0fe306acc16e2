"""A conditional that stays a conditional under vmap.

`jax.lax.cond` with a batched predicate becomes a select: both branches run for every env on every call.
For work that is rarely needed (a bot decision, an annihilation) that is the whole cost of the work on
every tick. `cond_any` keeps the skip: under vmap it runs the expensive branch, for the whole batch, only
when some env's predicate holds, and each env still takes its own branch's result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def cond_any(pred: jax.Array, true_fn: Callable[..., Any], false_fn: Callable[..., Any],
             *operands: Any) -> Any:
    """`jax.lax.cond(pred, true_fn, false_fn, *operands)`, also under vmap (per-env results as cond's).

    `false_fn` should be the cheap branch: under vmap it runs on every call, `true_fn` only when some
    env's `pred` is True. The branches must read what they need from `operands`, not from batched values
    they close over (closed-over values must be the same for every env).
    """

    @jax.custom_batching.custom_vmap
    def branch(pred, *operands):
        return jax.lax.cond(pred, true_fn, false_fn, *operands)

    @branch.def_vmap
    def _batched(axis_size, in_batched, pred, *operands):
        pred_batched, *operands_batched = in_batched
        pred = pred if pred_batched else jnp.broadcast_to(pred, (axis_size,))
        def batch(x, batched):
            return x if batched else jnp.broadcast_to(x, (axis_size, *x.shape))

        operands = jax.tree.map(batch, tuple(operands), tuple(operands_batched))

        if _one_env_at_a_time():
            # On a CPU the batch's envs run one after another anyway: each env takes its own branch, so the
            # costly one runs only for the envs that need it (on a GPU, one batched branch for all).
            def one(args):
                p, xs = args
                return jax.lax.cond(p, true_fn, false_fn, *xs)

            out = jax.lax.map(one, (pred, operands))
            return out, jax.tree.map(lambda _: True, out)

        def both(*xs):
            taken, skipped = jax.vmap(true_fn)(*xs), jax.vmap(false_fn)(*xs)
            return jax.tree.map(lambda t, s: jnp.where(pred.reshape(-1, *([1] * (t.ndim - 1))), t, s),
                                taken, skipped)

        out = jax.lax.cond(jnp.any(pred), both, jax.vmap(false_fn), *operands)
        return out, jax.tree.map(lambda _: True, out)

    return branch(pred, *operands)


def _one_env_at_a_time() -> bool:
    """Whether `cond_any` under vmap runs each env's conditional in turn (CPU) or one for the batch."""
    return jax.default_backend() == "cpu"


@jax.custom_batching.custom_vmap
def loop_bound(count: jax.Array) -> jax.Array:
    """A loop's trip count, made the same for every env under vmap: the largest.

    A `fori_loop` whose bound differs between envs becomes, under vmap, a loop whose every step selects
    each carry (whole grids) between the step's result and the old value. With one bound for the batch
    the steps run as they are; the caller makes a step past an env's own count change nothing (the block
    loops read the empty block there).
    """
    return count


@loop_bound.def_vmap
def _loop_bound_vmap(axis_size, in_batched, count):
    del axis_size
    (batched,) = in_batched
    return (jnp.max(count) if batched else count), False
