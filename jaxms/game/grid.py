"""Grid helpers shared by the simulation (game/) and the env: 4-neighbour shifts, per-tile hash bits,
uniforms from random bits and small-table lookups.

Pure jnp functions over [H, W] grids (and the prefix counts and index compaction the block loops share),
usable inside jit; no state and no knowledge of players or rules.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxms.game.control import loop_bound

NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # N, S, W, E: (dy, dx) of the 4-neighbours


def select_lookup(table: jax.Array, keys: jax.Array) -> jax.Array:
    """table[keys] for a small table (keys < len(table)), as a chain of selects, one per entry: vector code,
    where a gather fused into an element-wise pass over tiles makes XLA CPU's whole loop scalar. Its cost
    grows with the table: worth it for a few dozen entries at most."""
    out = jnp.zeros(keys.shape, table.dtype)
    for key, value in enumerate(table):
        out = jnp.where(keys == key, value, out)
    return out


def first_argmax(x: jax.Array) -> jax.Array:
    """int32: the flat index of the first largest element of `x` (any shape, no NaN), as `jnp.argmax` of
    `x.ravel()` gives it, from two plain reductions: the largest value, then the smallest index holding it.
    XLA CPU runs argmax's paired (value, index) reduction as scalar code: 57 against 11 us on a 113 x 113
    float32 grid (one core of the 2-core AMD EPYC)."""
    return _first_index_of(x.ravel(), x.max())


def first_argmin(x: jax.Array) -> jax.Array:
    """int32: the flat index of the first smallest element of `x` (no NaN); see `first_argmax`."""
    return _first_index_of(x.ravel(), x.min())


def _first_index_of(flat: jax.Array, value: jax.Array) -> jax.Array:
    """int32: the smallest index of `flat` holding `value` (which it holds)."""
    return jnp.where(flat == value, jnp.arange(flat.size, dtype=jnp.int32), flat.size).min()


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


def uniform_of_bits(bits: jax.Array) -> jax.Array:
    """float32 in [0, 1): the top 24 of 32 random bits (uint32), each value as likely as any other."""
    return (bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))


def uniforms(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """float32[shape] uniform in [0, 1), from one `jax.random.bits` call. On a CPU a call to the generator
    is a loop of ~80 small ops however few values it makes, so a tick draws what it needs at once."""
    return uniform_of_bits(jax.random.bits(key, shape, jnp.uint32))


def uniform_integers(bits: jax.Array, count: int) -> jax.Array:
    """float32: integers uniform in 0..count - 1 from random uint32 bits (bias below count / 2^24)."""
    return jnp.floor(uniform_of_bits(bits) * count)


def running_count(flags: jax.Array) -> jax.Array:
    """int32[..., K]: how many of `flags[..., :k + 1]` are set (bool[..., K]), a prefix count along the last
    axis. Written as float32 matmuls with a triangle of ones, on blocks of 32 and then across the blocks'
    totals (recursively; exact below 2^24): on a CPU a log-depth scan is two small ops a level (405 flags:
    ~20 ops, 4.4 us) and XLA's cumsum a reduce-window (6.1 us); this is a few ops (2.8 us)."""
    assert flags.shape[-1] < 1 << 24, "counts past 2^24 are not exact in float32"
    return _running_sum(flags.astype(jnp.float32)).astype(jnp.int32)


def _running_sum(x: jax.Array, inner: int = 32) -> jax.Array:
    k = x.shape[-1]
    if k <= inner:
        return x @ np.triu(np.ones((k, k), np.float32))
    pad = [(0, 0)] * (x.ndim - 1) + [(0, -k % inner)]
    blocks = jnp.pad(x, pad).reshape(*x.shape[:-1], -1, inner)
    within = blocks @ np.triu(np.ones((inner, inner), np.float32))
    totals = within[..., -1]
    before = _running_sum(totals, inner) - totals  # the sum of the blocks before each block
    return (within + before[..., None]).reshape(*x.shape[:-1], -1)[..., :k]


def compact(mask: jax.Array, group: int) -> tuple[jax.Array, jax.Array]:
    """(int32[groups * group]: the indices where `mask` (bool[n]) is set, then n; number of groups used).

    The number of groups is a loop bound (`control.loop_bound`): under vmap, the largest of the batch, so
    a loop over the groups must take a group of only n's (past an env's own list) as nothing to do.
    """
    n = mask.shape[0]
    size = -(-n // group) * group
    # Each set index's place in the list: a prefix count (jnp.nonzero is several times slower on CPU).
    place = running_count(mask) - 1
    ids = jnp.full(size, n, jnp.int32).at[jnp.where(mask, place, size)].set(
        jnp.arange(n, dtype=jnp.int32), mode="drop", unique_indices=True)
    return ids, loop_bound((place[-1] + group) // group)


# ---------------------------------------------------------------------------------------------------------
# The board: the game's grids in the layout the conquest reads (carried in `GameState`, updated in place)
# ---------------------------------------------------------------------------------------------------------

BLOCK = 8  # conquest works on BLOCK x BLOCK blocks of the map, skipping those with no frontier
CHUNK_TILES = 1 << 15  # a map of at most this many tiles is read whole
# Window tiles per chunk of listed blocks (81 windows of 10 x 10). A chunk costs its size however few of
# its places are listed, so smaller chunks follow activity more closely; but each chunk step costs its ops
# however small. Fastest of 32k / 16k / 8k windows, ms a tick on one core of the 2-core AMD EPYC (best of
# 21 calls): 1024 x 1024 with 10 tribes 1.72 / 1.39 / 1.36, with 50 tribes 10.7 / 10.5 / 9.4; 4096 x 4096
# with 10 tribes 2.60 / 2.48 / 2.14.
CHUNK_WINDOW_TILES = 1 << 13

# A tile's `info` byte (`GameState.board_info`): the terrain and a tick's frontier bookkeeping.
INFO_FRONTIER = 128  # bit 7: on an attack's frontier at the tick's first round (set and cleared in a tick)
INFO_COVER = 64  # bit 6: covered by a defense post of its owner (set and cleared in a tick)
INFO_TERRAIN_SHIFT = 4  # bits 4-5: terrain + 1 (plains 1, highland 2, mountain 3); 0 is water or off-map
INFO_AGE = 15  # bits 0-3: ticks on a frontier, 0..15 (older counts as 15)


def board_layout(height: int, width: int) -> tuple[int, int, bool]:
    """(rows, columns, whole) of the board of an H x W map.

    Tile (y, x) of the map is at (y + 1, x + 1) of the board; everything else is zero (never land), so a
    tile's four neighbours always lie in the board. A map of at most `CHUNK_TILES` tiles is read whole
    (one row and column of zeros each side). A larger one is read by BLOCK x BLOCK blocks, `ceil(H / B)` x
    `ceil(W / B)` of them, through windows of B + 2 tiles a side: its board also covers the blocks that
    overhang the map, plus one spare block row of zeros (the "empty block" unused places read and write).
    """
    if height * width <= CHUNK_TILES:
        return height + 2, width + 2, True
    return (-(-height // BLOCK) + 1) * BLOCK + 2, -(-width // BLOCK) * BLOCK + 2, False


def block_counts(height: int, width: int) -> tuple[int, int]:
    """(rows, cols) of BLOCK x BLOCK blocks covering an H x W map."""
    return -(-height // BLOCK), -(-width // BLOCK)


def stamp_size(height: int, width: int) -> int:
    """Entries of `GameState.age_stamp`: one per block plus the empty block, or 1 for a board read whole."""
    if board_layout(height, width)[2]:
        return 1
    rows, cols = block_counts(height, width)
    return rows * cols + 1


def to_board(grid: jax.Array, height: int, width: int) -> jax.Array:
    """An [..., H, W] grid in the board layout of `board_layout` (zeros around; whole-grid: set-up only)."""
    rows, cols, _ = board_layout(height, width)
    lead = grid.shape[:-2]
    board = jnp.zeros((*lead, rows, cols), grid.dtype)
    return board.at[..., 1:height + 1, 1:width + 1].set(grid)


def board_info(land: jax.Array, terrain: jax.Array, age: jax.Array | None = None) -> jax.Array:
    """uint8[H, W] info bytes (see INFO_*) of tiles: land's terrain + 1 in bits 4-5, the age in bits 0-3."""
    info = jnp.where(land, (jnp.minimum(terrain, 2).astype(jnp.uint8) + 1) << INFO_TERRAIN_SHIFT, 0)
    if age is not None:
        info = info | jnp.minimum(age, INFO_AGE).astype(jnp.uint8)
    return info.astype(jnp.uint8)
