"""A conditional that stays a conditional under vmap.

`jax.lax.cond` with a batched predicate becomes a select: both branches run for every env on every call.
For work that is rarely needed (a bot decision, an annihilation) that is the whole cost of the work on
every tick. `cond_any` keeps the skip: under vmap the expensive branch runs only when some env's predicate
holds (on a CPU only for those envs, on a GPU batched for all), and each env takes its own branch's result.

The other helpers here also steer what XLA computes where: `loop_bound` (one trip count for a batch),
`after` (a read before an in-place write) and `computed_once` (a value stored once, not recomputed in each
consumer).
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
    env's `pred` is True (for that env on a CPU, for the batch on a GPU). The branches must read what they
    need from `operands`, not from batched values they close over (closed-over values must be the same for
    every env).
    """

    @jax.custom_batching.custom_vmap
    def branch(pred, *operands):
        return jax.lax.cond(pred, true_fn, false_fn, *operands)

    @branch.def_vmap
    def _batched(axis_size, in_batched, pred, *operands):
        pred_batched, *operands_batched = in_batched
        pred = pred if pred_batched else jnp.broadcast_to(pred, (axis_size,))
        # Operands the same for every env stay unbatched (no copy per env of, say, a map's arrays).
        axes = tuple(jax.tree.map(lambda batched: 0 if batched else None, b) for b in operands_batched)
        skipped = jax.vmap(false_fn, in_axes=axes, axis_size=axis_size)

        if _one_env_at_a_time() and axis_size == 1:
            # One env (a batch of one): its own conditional on the operands as they are (indexing the size-1
            # axis statically is free, where a loop's dynamic index would copy every operand, whole grids).
            def taken(*xs):
                mine = jax.tree.map(lambda x, batched: x[0] if batched else x, xs, tuple(operands_batched))
                return jax.tree.map(lambda y: y[None], jax.lax.cond(pred[0], true_fn, false_fn, *mine))
        elif _one_env_at_a_time():
            # On a CPU the batch's envs run one after another anyway: each env takes its own branch, so the
            # costly one runs only for the envs that need it (each env's operands are sliced out: a copy).
            def taken(*xs):
                def one(i):
                    mine = jax.tree.map(lambda x, batched: x[i] if batched else x, xs,
                                        tuple(operands_batched))
                    return jax.lax.cond(pred[i], true_fn, false_fn, *mine)

                return jax.lax.map(one, jnp.arange(axis_size))
        else:
            # On a GPU one batched branch for all, each env keeping its own branch's result.
            def taken(*xs):
                return jax.tree.map(lambda t, s: jnp.where(pred.reshape(-1, *([1] * (t.ndim - 1))), t, s),
                                    jax.vmap(true_fn, in_axes=axes, axis_size=axis_size)(*xs), skipped(*xs))

        # With no env needing the costly branch (most calls) only the cheap one runs, copying nothing.
        out = jax.lax.cond(jnp.any(pred), taken, skipped, *operands)
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


def after(grid: jax.Array, *deps: Any) -> jax.Array:
    """`grid` (a [..., H', W'] grid of the state) unchanged, but only once every array in `deps` is computed.

    XLA orders ops by their data only: a conditional that reads a grid but whose result is needed only
    late in the tick (a bot's landing search) may be scheduled after the ops that then write the grid in
    place, and the grid is copied every tick to keep the old one. Writing the grid's corner (a tile of the
    zero border) with a value that depends on `deps` (it never changes it, but the compiler cannot know:
    the test is whether their sum is NaN) puts every such read before the writes. The sum is a pass over
    `deps` (on a CPU a large one is a slow reduce): for a large array that is stored (a conditional's
    result, e.g. `computed_once`), one of its values is dependency enough.
    """
    total = sum((jnp.sum(d, dtype=jnp.float32) for d in jax.tree.leaves(deps)), jnp.float32(0.0))
    first = (0,) * grid.ndim
    return grid.at[first].set(jnp.where(jnp.isnan(total), grid[first] + 1, grid[first]))


@jax.custom_batching.custom_vmap
def computed_once(values, token: jax.Array):
    """`values`, stored once rather than recomputed inside each consumer.

    XLA on CPU fuses a producer into every consumer: a gather fused into an element-wise loop turns it from
    vector into scalar code, and two consumers may round the same float expression differently (one with a
    fused multiply-add). A conditional's operands and results are always stored. `token` must be
    True, but not as a constant the compiler can see (e.g. `step >= 0` of a loop counter).
    """
    return jax.lax.cond(token, lambda v: v, lambda v: jax.tree.map(jnp.zeros_like, v), values)


@computed_once.def_vmap
def _computed_once_vmap(axis_size, in_batched, values, token):
    del axis_size
    values_batched, token_batched = in_batched
    # Under vmap a batched predicate would make the conditional a select, which stores nothing; every token
    # is True, so one token for the whole batch keeps it a conditional.
    return computed_once(values, jnp.all(token) if token_batched else token), values_batched
