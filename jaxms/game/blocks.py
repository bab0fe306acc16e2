"""Which blocks of a large map the tick reads: lists of block ids carried in the state.

A board read by blocks (`grid.board_layout`) is cut into BLOCK x BLOCK blocks. A tick's conquest reads only
the blocks that may hold a frontier, and a bot decision only those that may hold a border, so neither
passes over the map. The state carries them (`GameState.block_lists`, `block_counts`, `block_tags`):

- The border list: every block holding a "border tile" (a land tile 4-adjacent to a tile of a player other
  than its owner), possibly more. Every frontier tile of every attack is a border tile, and every pair of
  neighbours that the bots' border contacts count has one, so this list is all the tick needs to read.
  Rows 0 and 1 hold it, by tick parity: tick t reads row t % 2 (its first round and ageing when
  the frontier list below cannot serve) and builds the next tick's list in the other row, from the blocks
  the ageing reads (those that still hold a border at the tick's end), the blocks where
  a tile changed hands and their neighbours across the edge of the change (`conquest.take_tiles`), and
  the blocks of boat landings (`boats._land`). A border can appear only where a tile changes hands, so the
  list stays complete; annihilation only removes borders.
- Rows 2 and 3: the blocks a later round of the tick reads (those with a frontier in the round before,
  and the neighbours of what it took), alternating from list to list across ticks (`round_row`). The
  tick's last round adds to its own list the neighbours of what it takes, so that list then holds every
  block with a frontier of the attacks that conquered in the tick (the "frontier list"): the next tick's
  first round reads it instead of the border list unless an attack conquers that did not in this tick's
  first round (`GameState.frontier_pairs`), or tiles changed hands outside the conquest. Late in a game
  the border list holds several times the blocks of the frontier list (every border, attacked or not).
  With two rounds the tick's ageing then reads the frontier list too: it lists those of its blocks that
  still hold a border, and the rest of the border list is carried into the next tick's (`carry_list`),
  stale entries included (pruned at the next tick whose ageing reads the border list).

Appending dedups with tags rather than a pass over all blocks: a block is in a list under construction
when its tag (`block_tags`, one row for the border list, one for the round lists) equals that list's tag,
a number unique to the tick and the list (`list_tag`). A list's entries past its count are never read
(`conquest._chunk` masks them with the empty block), so nothing is cleared. A map read whole carries
1-element placeholders.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxms.game.control import loop_bound
from jaxms.game.grid import (
    BLOCK,
    CHUNK_WINDOW_TILES,
    INFO_TERRAIN_SHIFT,
    NEIGHBOURS,
    block_counts,
    board_layout,
    compact,
    running_count,
    shift,
)

BORDER_ROWS = 2  # rows 0, 1: the border list at even and odd ticks
ROUND_ROWS = 2  # rows 2, 3: the lists of a tick's later rounds (alternating, see `round_row`)


def chunk_blocks(num_blocks: int) -> int:
    """Blocks handled together by one step of the loops over listed blocks."""
    return min(num_blocks + 1, max(1, CHUNK_WINDOW_TILES // (BLOCK + 2) ** 2))


def list_shape(height: int, width: int, substeps: int) -> tuple[int, int, int]:
    """(rows, length, blocks) of the block lists of an H x W map whose conquest has `substeps` rounds:
    length holds every block, rounded up to whole chunks; (1, 1, 0) for a map read whole."""
    if board_layout(height, width)[2]:
        return 1, 1, 0
    rows, cols = block_counts(height, width)
    num_blocks = rows * cols
    chunk = chunk_blocks(num_blocks)
    return BORDER_ROWS + (ROUND_ROWS if substeps > 1 else 0), -(-num_blocks // chunk) * chunk, num_blocks


def round_row(tick: jax.Array, substeps: int, round_index: jax.Array | int) -> jax.Array:
    """int32: the row of the list round `round_index` (1..substeps - 1) of tick `tick` reads; the lists
    alternate between rows 2 and 3 across rounds and ticks, so that the last round's list (the next tick's
    frontier list) is kept while the next tick's first round builds its successor."""
    return (BORDER_ROWS + (tick * (substeps - 1) + round_index - 1) % ROUND_ROWS).astype(jnp.int32)


def frontier_row(tick: jax.Array, substeps: int) -> jax.Array:
    """int32: the row of the frontier list tick `tick` may read (the list of tick - 1's last round)."""
    return round_row(tick - 1, substeps, substeps - 1)


def list_tag(tick: jax.Array, substeps: int, round_index: int = 0) -> jax.Array:
    """int32: the tag of tick `tick`'s border list (round 0) or of the list its round `round_index` reads."""
    return (tick * (substeps + 1) + 1 + round_index).astype(jnp.int32)


class BlockLists(NamedTuple):
    """The block lists of a state (see the module docstring)."""

    ids: jax.Array  # int32[rows, length]: block ids (row-major: block (i, j) is i * cols + j)
    count: jax.Array  # int32[rows]
    tags: jax.Array  # int32[2, blocks + 1]: row 0 the border list's tags, row 1 the round lists'

    def append(self, row: jax.Array | int, tag_row: int, tag: jax.Array, candidates: jax.Array,
               wanted: jax.Array) -> BlockLists:
        """Append the `wanted` ids of `candidates` (int32[K], an id may come several times) that list `row`
        (tagged `tag` in tag row `tag_row`) does not hold yet, each once, in the order of their first
        place among the candidates. One call for all of a chunk's candidates: its cost is mostly its ops."""
        return self.append_rows((row,), (tag_row,), (tag,), candidates, wanted[None])

    def append_rows(self, rows: tuple, tag_rows: tuple[int, ...], tags: tuple, candidates: jax.Array,
                    wanted: jax.Array) -> BlockLists:
        """`append` to several lists at once from the same candidates: list `rows[r]` (tagged `tags[r]` in
        tag row `tag_rows[r]`, distinct) gets the candidates `wanted[r]` (bool[R, K]). The same ops as one
        `append`, batched over the R lists (an append's cost is its ops, not its few hundred ids)."""
        assert len(set(tag_rows)) == len(tag_rows), "each list needs its own tag row"
        num_blocks = self.tags.shape[1] - 1
        num_candidates = candidates.shape[0]
        rows, tag_rows = jnp.asarray(rows, jnp.int32), jnp.asarray(tag_rows, jnp.int32)
        tag = jnp.asarray(tags, jnp.int32)[:, None]
        safe = jnp.minimum(candidates, num_blocks)
        tag_rows = tag_rows[:, None]
        new = wanted & (candidates < num_blocks) & (self.tags[tag_rows, safe] != tag)
        # Repeated ids: each new candidate marks its block with -(K - i) (tags are >= 0), the first place
        # marking lowest, and keeps its place if its mark is the block's. The marks are made in the tags
        # themselves (no copy of a tag row: that is a pass over the map's blocks) and every marked block
        # is then tagged.
        order = num_candidates - jnp.arange(num_candidates, dtype=jnp.int32)
        marks = self.tags.at[tag_rows, jnp.where(new, candidates, num_blocks + 1)].min(-order, mode="drop")
        new = new & (marks[tag_rows, safe] == -order)
        before = running_count(new) - 1
        place = before + self.count[rows][:, None]
        ids = self.ids.at[rows[:, None], jnp.where(new, place, self.ids.shape[1])].set(
            jnp.broadcast_to(candidates, new.shape), mode="drop")
        tags = marks.at[tag_rows, jnp.where(new, candidates, num_blocks + 1)].set(
            jnp.broadcast_to(tag, new.shape), mode="drop")
        return BlockLists(ids, self.count.at[rows].add(new.sum(axis=1, dtype=jnp.int32)), tags)


CARRY_CHUNK = 512  # ids appended together when a list is carried into another (`carry_list`)


def carry_list(lists: BlockLists, source: jax.Array | int, row: jax.Array | int, tag: jax.Array,
               carries: jax.Array, skip_tag: jax.Array) -> BlockLists:
    """`lists` with the ids of list `source` appended to the border list under construction in row `row`
    (tagged `tag`) when `carries` (bool[]), else unchanged, but for the ids on the round list tagged
    `skip_tag` (tag row 1): CARRY_CHUNK ids at a time up to the source's count, so the cost follows the list,
    not the map's blocks."""
    count = lists.count[source]
    length = lists.ids.shape[1]
    num_chunks = loop_bound(jnp.where(carries, (count + CARRY_CHUNK - 1) // CARRY_CHUNK, 0))

    def carry_chunk(step, lists):
        at = step * CARRY_CHUNK + jnp.arange(CARRY_CHUNK, dtype=jnp.int32)
        ids = lists.ids[source, jnp.minimum(at, length - 1)]
        return lists.append(row, 0, tag, ids, carries & (at < count) & (lists.tags[1, ids] != skip_tag))

    return jax.lax.fori_loop(0, num_chunks, carry_chunk, lists)


def state_lists(state) -> BlockLists:
    return BlockLists(state.block_lists, state.block_counts, state.block_tags)


def border_tiles(owner: jax.Array, info: jax.Array) -> jax.Array:
    """bool[H', W']: the border tiles of a board (owner, info: uint8[H', W'] in the board layout): land tiles
    with a 4-neighbour owned by a player other than their owner (whole-grid: set-up only)."""
    land = (info >> INFO_TERRAIN_SHIFT & 3) > 0
    border = jnp.zeros(owner.shape, bool)
    for dy, dx in NEIGHBOURS:
        n = shift(owner, dy, dx, 0)
        border |= (n > 0) & (n != owner)
    return border & land


def new_lists(owner: jax.Array, info: jax.Array, height: int, width: int, substeps: int,
              row: jax.Array | int = 0, lists: BlockLists | None = None) -> BlockLists:
    """Block lists whose border list (row `row`) is every block holding a border tile of the board (owner,
    info: uint8[H', W']), counted from scratch (a pass over the map: set-up only); `lists`: lists to
    update (new, empty ones if None)."""
    rows, length, num_blocks = list_shape(height, width, substeps)
    if lists is None:
        lists = BlockLists(jnp.full((rows, length), num_blocks, jnp.int32), jnp.zeros(rows, jnp.int32),
                           jnp.zeros((2, num_blocks + 1), jnp.int32))
    if num_blocks == 0:
        return lists
    block_rows, cols = block_counts(height, width)
    border = border_tiles(owner, info)[1:block_rows * BLOCK + 1, 1:cols * BLOCK + 1]
    flags = border.reshape(block_rows, BLOCK, cols, BLOCK).any(axis=(1, 3)).ravel()
    ids, _ = compact(flags, 1)
    count = flags.sum(dtype=jnp.int32)
    ids = jnp.where(jnp.arange(ids.shape[0]) < count, ids, num_blocks)
    full = jnp.full(length, num_blocks, jnp.int32).at[:ids.shape[0]].set(ids)
    return BlockLists(lists.ids.at[row].set(full), lists.count.at[row].set(count), lists.tags)


def record_changed_tiles(state, index: jax.Array, changed: jax.Array, substeps: int):
    """`state` (a GameState after its tick's conquest) with the blocks of the map tiles `index` (flat y W + x,
    int32[n]) where `changed` (bool[n]), and their four neighbours, on the next tick's border list: the
    tiles changed hands outside the conquest (boat landings), so borders may have appeared there."""
    _, _, num_blocks = list_shape(state.height, state.width, substeps)
    if num_blocks == 0:
        return state
    rows, cols = block_counts(state.height, state.width)
    y, x = index // state.width, index % state.width
    block_row, block_col = y // BLOCK, x // BLOCK
    block = block_row * cols + block_col
    row = BORDER_ROWS - 1 - state.tick % BORDER_ROWS
    tag = list_tag(state.tick, substeps)

    candidates = jnp.concatenate([block, block - cols, block + cols, block - 1, block + 1])
    inside = jnp.concatenate([jnp.ones_like(changed), block_row > 0, block_row < rows - 1, block_col > 0,
                              block_col < cols - 1])
    lists = state_lists(state).append(row, 0, tag, candidates, inside & jnp.tile(changed, 5))
    # Tiles changed hands where the frontier list may not reach: the next tick reads the border list.
    return state.replace(block_lists=lists.ids, block_counts=lists.count, block_tags=lists.tags,
                         frontier_pairs=state.frontier_pairs & ~changed.any())
