"""Grid helpers shared by the simulation (game/) and the env: 4-neighbour shifts and per-tile hash bits.

Pure jnp functions over [H, W] grids (and the index compaction the block loops share), usable inside jit;
no state and no knowledge of players or rules.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxms.game.control import loop_bound

NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # N, S, W, E: (dy, dx) of the 4-neighbours


def shift(grid: jax.Array, dy: int, dx: int, fill) -> jax.Array:
    """grid[y + dy, x + dx] at (y, x), `fill` beyond the map edge (dy, dx in -1..1).

    Args:
        grid: [H, W], any dtype.
        dy, dx: static offsets in -1..1.
        fill: the value read beyond the map's edge (a scalar of grid's dtype).
    Returns:
        [H, W], grid's dtype.
    """
    height, width = grid.shape
    padded = jnp.pad(grid, ((1, 1), (1, 1)), constant_values=fill)
    return jax.lax.dynamic_slice(padded, (1 + dy, 1 + dx), (height, width))


def hash_bits(seed: jax.Array, index: jax.Array) -> jax.Array:
    """uint32 pseudo-random bits per index from a uint32 seed (a murmur3-style finaliser).

    Far cheaper than `jax.random` over every tile of a large map (one multiply-xorshift chain per tile);
    the seed comes from the game's `jax.random` key, so the same key still gives the same game.

    Args:
        seed: uint32 scalar (or broadcastable to `index`).
        index: integer array of any shape [...], e.g. flat tile indices y * W + x.
    Returns:
        uint32[...], the shape of `index` broadcast with `seed`.
    """
    x = index.astype(jnp.uint32) * jnp.uint32(0x9E3779B1) + seed
    x = (x ^ (x >> 16)) * jnp.uint32(0x85EBCA6B)
    x = (x ^ (x >> 13)) * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def compact(mask: jax.Array, group: int) -> tuple[jax.Array, jax.Array]:
    """(int32[groups * group]: the indices where `mask` (bool[n]) is set, then n; number of groups used).

    The number of groups is a loop bound (`control.loop_bound`): under vmap, the largest of the batch, so
    a loop over the groups must take a group of only n's (past an env's own list) as nothing to do.
    """
    n = mask.shape[0]
    size = -(-n // group) * group
    # Each set index's place in the list: a prefix count (jnp.nonzero is several times slower on CPU).
    place = jax.lax.associative_scan(jnp.add, mask.astype(jnp.int32)) - 1
    ids = jnp.full(size, n, jnp.int32).at[jnp.where(mask, place, size)].set(
        jnp.arange(n, dtype=jnp.int32), mode="drop", unique_indices=True)
    return ids, loop_bound((place[-1] + group) // group)
