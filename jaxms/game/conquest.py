"""Vectorised conquest: every running attack spends its per-tick budget on its frontier, inside jit.

The engine pops tiles one by one from a min-heap per attack with priority `U{10..16} * (1 - 0.5 k + g / 2)`
(k: attacker-owned 4-neighbours, g: 1 / 1.5 / 2 for plains / highland / mountain) until the tick's budget
is spent, each tile costing budget, attacker troops and defender troops by terrain and troop ratios.

Here that loop becomes a histogram. The priority takes few distinct values (4 k x 3 terrains x 7 draws,
minus the tile's age on the frontier, 0..15 ticks: the engine's `+ insertion tick` that makes older entries
go first), so every frontier tile falls in one of 1344 priority bins, ordered by value, and within a bin
every tile of an (attacker, target) pair has the same cost and losses. One segment-sum counts tiles per
(pair, bin); a prefix sum over the bins says how many tiles of each bin the budget (and the attack's troops)
can pay for: bins before the boundary are taken whole, the boundary bin partly, tiles chosen at random (the
engine's ties are random too). The budget is spent in `Rules.conquest_substeps` rounds with the frontier
recomputed in between, so tiles that become more surrounded during a tick are preferred, as in the engine.

Defense posts (§5): a tile within reach of a completed defense post of its owner costs the attacker
`defense_post_cost_factor` times the budget and `defense_post_loss_factor` times the troops. The post does
not change the tile's priority, so a covered tile shares its bin with uncovered ones: the histogram counts
covered tiles apart (a second half per pair, `Board.cover`), the plan prices a bin at its mean cost, every
tile of a bin is taken with the same chance, and the troops and budget are then charged for exactly the
tiles taken, covered or not.

Simplifications, each measured against the plain-Python reference engine in tests/: a tile bordered by
several attackers is claimed by one of them (the most surrounding, ties random) per round; a tile's age is
its time on anyone's frontier (saturating at 15 ticks) and its k is today's, where the engine keeps the
earliest heap entry with the k of its time; the boundary bin is sampled per tile; a tile's cover is
that of the tick's start (a post captured during the tick still covers until the next; a tile taken in the
first round keeps its old owner's cover if attacked again in the second).

Execution. A tick touches few tiles of a large map, so the map is cut into 8 x 8 blocks and only the
blocks the state lists are read (game/blocks.py: the first round reads the frontier list, the blocks with
a frontier at the last tick's end, or the border list when a new attack conquers; later rounds the blocks
with a frontier in the round before and the neighbours of what it took), in chunks inside
`fori_loop`s, as flat windows with a one-tile border; a small map is read whole. The grids are the
state's own (`GameState.board_owner` / `board_info`), written in place. A round reads the board as it was
at its start, except on a round that reads more than SAVED_CHUNKS chunks (1,296 blocks): the later
chunks' frontiers are found again when taking, on the board as the round's earlier chunks left it (tiles
on their edges may see those takes, as the engine's one-by-one conquest would), since reading the
round's starting board there would need a copy of the grids. Within a chunk (or a small map), only the
frontier tiles are counted and taken, listed once found (`_frontier_list`). The shape of the code follows
XLA's CPU backend: gathers are kept out of element-wise loops (they would turn vector code into scalar code),
results used several times are stored once (`computed_once`), and pad, cumsum and nonzero are avoided
(each is several times slower there than what replaces it). Each piece is traced once: the rounds of a
tick are one loop (`loop.conquer`), and so are a round's chunks, whether their frontier was saved or is found
again (compiling is most of a short run's time). Every tile's outcome is the same as when computing all tiles
of the map at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxms.game.blocks import BlockLists, chunk_blocks
from jaxms.game.control import after, computed_once, loop_bound
from jaxms.game.grid import (
    BLOCK,
    INFO_AGE,
    INFO_COVER,
    INFO_FRONTIER,
    INFO_TERRAIN_SHIFT,
    block_counts,
    board_info,
    board_layout,
    compact,
    hash_bits,
    select_lookup,
    stamp_size,
    to_board,
    uniform_of_bits,
)
from jaxms.game.rules import PlayerKind, Rules

NUM_AGES = 16  # ticks on the frontier 0..15 (older counts as 15)
NUM_K = 4  # attacker-owned neighbours 1..4
NUM_TERRAIN = 3
NUM_DRAWS = 7  # U{10..16}
NUM_BINS = NUM_AGES * NUM_K * NUM_TERRAIN * NUM_DRAWS  # 1344
_TERRAIN_BITS = 3 << INFO_TERRAIN_SHIFT  # non-zero on land
PLAN_PAIRS = 8  # (attacker, target) pairs per step of the loop that plans the takes
SAVED_CHUNKS = 16  # chunks whose frontier is kept from counting to taking (later ones are found again)
# Frontier tiles counted and taken together (`_frontier_list`): a chunk of 81 windows holds ~400-1,000 (2048 x
# 2048, 50 tribes). Pages of 512 / 1,024 / 2,048 cost 7.07 / 7.23 / 7.49 ms a tick there, 256 / 512 / 1,024
# 1.49 / 1.48 / 1.50 ms at 1024 x 1024 with 10 tribes (one core of a 2-core Intel Xeon; noise ~0.2 ms):
# 1,024 keeps nearly every chunk to one page.
FRONTIER_PAGE = 1024


@cache
def _priority_tables(rules: Rules) -> tuple[np.ndarray, np.ndarray]:
    """Priority bins sorted by the engine's key `U (1 - 0.5 k + g / 2) + insertion tick`.

    The insertion tick is `now - age`, so the key relative to now is `U (1 - 0.5 k + g / 2) - age`.
    Returns (rank int32[1344]: the sorted place of each unsorted bin `((age * 4 + k - 1) * 3 + terrain) * 7
    + draw`; terrain_of_bin int32[1344]: the terrain of each sorted bin).
    """
    age = np.arange(NUM_AGES)[:, None, None, None]
    k = np.arange(1, NUM_K + 1)[None, :, None, None]
    g = np.asarray(rules.terrain_priority)[None, None, :, None]
    draw = np.arange(10, 10 + NUM_DRAWS)[None, None, None, :]
    priority = draw * (1.0 - 0.5 * k + g / 2.0) - age
    order = np.argsort(priority.ravel(), kind="stable")
    rank = np.empty(order.size, dtype=np.int32)
    rank[order] = np.arange(order.size, dtype=np.int32)
    terrain_index = np.broadcast_to(np.arange(NUM_TERRAIN)[None, None, :, None], priority.shape).ravel()
    return rank, terrain_index[order].astype(np.int32)


def pair_tile_values(attack_troops: jax.Array, troops: jax.Array, tiles: jax.Array, kind: jax.Array,
                     rules: Rules) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per (attacker, target, terrain): cost, attacker loss, defender loss of taking one tile (§5).

    Args:
        attack_troops: float32[P + 1, P + 1], troops of each attack.
        troops, tiles, kind: per player, [P + 1].
    Returns:
        cost, attacker_loss, defender_loss: float32[P + 1, P + 1, 3].
    """
    loss = jnp.asarray(rules.terrain_loss, jnp.float32)
    speed = jnp.asarray(rules.terrain_cost, jnp.float32)
    a = jnp.maximum(attack_troops, 1e-6)[..., None]
    attacker_kind, defender_kind = kind[:, None, None], kind[None, :, None]
    attacker_tiles = tiles.astype(jnp.float32)[:, None, None]
    d = troops[None, :, None]
    n = jnp.maximum(tiles.astype(jnp.float32), 1.0)[None, :, None]

    # Against unowned land (target column 0).
    tn_cost = jnp.clip(2000.0 * jnp.maximum(10.0, speed) / a, 5.0, 100.0)
    tn_loss = loss / jnp.where(attacker_kind == PlayerKind.TRIBE, 10.0, 5.0)

    # Against a player.
    beats_tribe = (attacker_kind != PlayerKind.TRIBE) & (defender_kind == PlayerKind.TRIBE)
    mag = loss * jnp.where(beats_tribe, rules.human_vs_tribe_loss_factor, 1.0)
    rate = np.log(2.0) / rules.large_defender_scale
    large_defender = 0.7 + 0.3 * (1.0 - jax.nn.sigmoid(rate * (n - rules.large_defender_midpoint)))
    size_ratio = rules.large_attacker_tiles / jnp.maximum(attacker_tiles, 1.0)
    is_large = attacker_tiles > rules.large_attacker_tiles
    loss_factor = jnp.where(is_large, size_ratio**rules.large_attacker_loss_exponent, 1.0)
    cost_factor = jnp.where(is_large, size_ratio**rules.large_attacker_cost_exponent, 1.0)
    density = d / n
    player_loss = (0.7 * jnp.clip(d / a, 0.6, 2.0) * mag * 0.8 * large_defender * loss_factor
                   + 0.3 * 1.3 * density * mag / 100.0)
    player_cost = jnp.clip(d / (5.0 * a), 0.2, 1.5) * speed * large_defender * cost_factor

    to_unowned = (jnp.arange(troops.shape[0]) == 0)[None, :, None]
    cost = jnp.where(to_unowned, tn_cost, player_cost)
    attacker_loss = jnp.where(to_unowned, tn_loss, player_loss)
    defender_loss = jnp.where(to_unowned, 0.0, jnp.broadcast_to(jnp.floor(density), cost.shape))
    return cost, attacker_loss, defender_loss


class Board(NamedTuple):
    """The game's grids as the conquest reads them: `GameState.board_owner` / `board_info`, in the layout of
    `grid.board_layout`, updated in place (`game_board`, `new_board`).

    Both grids have a border of zeros, so every tile's four neighbours are in the grid. A map of at most
    `CHUNK_TILES` tiles is read whole. A larger one is cut into BLOCK x BLOCK blocks (`rows` x `cols`, the
    last ones overhanging the map), of which only those where a frontier may be are read, in chunks of
    windows of BLOCK + 2 tiles a side; its grids end with a spare block row of zeros, the "empty block" that
    the unused places of a chunk read and write.
    """

    owner: jax.Array  # uint8[H', W']: tile (y, x) of the map at (y + 1, x + 1)
    info: jax.Array  # uint8[H', W']: terrain + 1 (bits 4-5, 0: water), frontier age (bits 0-3), and within
    #                  a tick: covered by a defense post of its owner (bit 6), on a frontier (bit 7)
    width: int  # the map's width: tile (y, x) has index y * width + x, as `hash_bits` over the whole map
    whole: bool  # read whole rather than by blocks
    stamp: jax.Array  # int32[blocks + 1] (int32[1] read whole): a block's ages are valid when stamp == now
    now: jax.Array  # int32[]: the tick
    cover: bool = False  # bit 6 is read: costs come in 2 x 3 classes (terrain, then covered), not 3

    @property
    def cover_halves(self) -> int:
        """1, or 2 when each (attacker, target) pair's histogram has a half for covered tiles."""
        return 2 if self.cover else 1


def game_board(state) -> Board:
    """The `Board` of a `GameState` (its carried grids; no copy). It has no cover: see `cover_board`."""
    whole = board_layout(state.height, state.width)[2]
    return Board(state.board_owner, state.board_info, state.width, whole, state.age_stamp, state.tick)


def new_board(owner: jax.Array, land: jax.Array, terrain: jax.Array, age: jax.Array) -> Board:
    """A `Board` made from H x W grids (owner, land, terrain, age: uint8 / bool[H, W]; whole-grid: for tests
    and set-up). Its ages are valid at tick 0. It has no cover: see `cover_board`."""
    height, width = owner.shape
    return Board(to_board(owner, height, width), to_board(board_info(land, terrain, age), height, width),
                 width, board_layout(height, width)[2], jnp.zeros(stamp_size(height, width), jnp.int32),
                 jnp.int32(0))


def cover_board(board: Board, positions: jax.Array, owners: jax.Array, active: jax.Array,
                radius: int) -> Board:
    """`board` with its defense posts: bit 6 of `info` set on every tile within `radius` (Euclidean) of an
    active post of the tile's owner, and `cover` on, so that the conquest reads that bit.

    Args: positions: int32[S, 2], each post's (y, x) on the map; owners: uint8[S]; active: bool[S] (completed
    posts; other slots are skipped). One window of (2 radius + 1)^2 tiles per slot, moved inside the board
    where it would overhang, so the cost is S (2 radius + 1)^2 rather than a pass over the map. With no
    active post the conquest's outcome is exactly that of the board without cover.
    """
    rows, cols = _post_window(board, radius)
    dy, dx = jnp.arange(rows)[:, None], jnp.arange(cols)[None, :]

    def mark(slot, info):
        y, x = positions[slot, 0] + 1, positions[slot, 1] + 1  # the map's tile (y, x) in the board
        top, left = _post_corner(board, y, x, radius)
        near = (top + dy - y) ** 2 + (left + dx - x) ** 2 <= radius**2
        owned = jax.lax.dynamic_slice(board.owner, (top, left), (rows, cols)) == owners[slot]
        window = jax.lax.dynamic_slice(info, (top, left), (rows, cols))
        window = window | jnp.where(near & owned & active[slot], 64, 0).astype(jnp.uint8)
        return jax.lax.dynamic_update_slice(info, window, (top, left))

    info = jax.lax.fori_loop(0, positions.shape[0], mark, board.info)
    return board._replace(info=info, cover=True)


def _post_window(board: Board, radius: int) -> tuple[int, int]:
    """(rows, cols) of a defense post's window: 2 radius + 1 a side, at most the board."""
    return min(2 * radius + 1, board.owner.shape[0]), min(2 * radius + 1, board.owner.shape[1])


def _post_corner(board: Board, y: jax.Array, x: jax.Array, radius: int) -> tuple[jax.Array, jax.Array]:
    """The top-left corner of the window of a post on board tile (y, x): centred, moved inside the board."""
    rows, cols = _post_window(board, radius)
    return (jnp.clip(y - radius, 0, board.owner.shape[0] - rows),
            jnp.clip(x - radius, 0, board.owner.shape[1] - cols))


def uncover_board(board: Board, positions: jax.Array, radius: int) -> Board:
    """`board` with bit 6 cleared again in the windows `cover_board` marked (the same S windows)."""
    rows, cols = _post_window(board, radius)

    def clear(slot, info):
        top, left = _post_corner(board, positions[slot, 0] + 1, positions[slot, 1] + 1, radius)
        window = jax.lax.dynamic_slice(info, (top, left), (rows, cols)) & ~jnp.uint8(INFO_COVER)
        return jax.lax.dynamic_update_slice(info, window, (top, left))

    info = jax.lax.fori_loop(0, positions.shape[0], clear, board.info)
    return board._replace(info=info, cover=False)


def _block_counts(board: Board) -> tuple[int, int]:
    """(rows, cols) of blocks covering the map (a board read by blocks)."""
    return (board.owner.shape[0] - 2) // BLOCK - 1, (board.owner.shape[1] - 2) // BLOCK


_WINDOWS = jax.lax.GatherDimensionNumbers(offset_dims=(1, 2), collapsed_slice_dims=(), start_index_map=(0, 1))
_IN_BOUNDS = jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS  # all windows lie in the grid (empty block too)


class _Tiles(NamedTuple):
    """Tiles read together, as flat grids: the whole board, or a chunk of windows (S x S tiles each, S =
    BLOCK + 2, row-major, one after another). Per-tile results leave out the first and the last `stride`
    tiles (whose neighbours would lie outside): result i is tile i + stride."""

    place: jax.Array  # int32[N]: each tile's index in the flattened board
    stride: int  # tiles from one to the one below it
    ids: jax.Array | None = None  # int32[K]: the chunk's blocks (the empty block for unused places)
    origins: jax.Array | None = None  # int32[K, 2]: each window's top-left corner in the board


def _whole(board: Board) -> _Tiles:
    """All tiles of a board read whole."""
    return _Tiles(jnp.arange(board.owner.size, dtype=jnp.int32), board.owner.shape[1])


class Listed(NamedTuple):
    """The blocks a round reads: row `row` of the state's block lists (`blocks.BlockLists`), `count` ids."""

    row: jax.Array  # int32[]
    count: jax.Array  # int32[]
    num_chunks: jax.Array  # int32[]: chunks of `chunk_blocks` ids (the largest of the batch under vmap)


def listed(lists: BlockLists, row: jax.Array | int) -> Listed:
    """The `Listed` of row `row` of `lists`."""
    count = lists.count[row]
    chunk = chunk_blocks(lists.tags.shape[1] - 1)
    return Listed(jnp.asarray(row, jnp.int32), count, loop_bound((count + chunk - 1) // chunk))


def _chunk(board: Board, ids: jax.Array, blocks: Listed, step: jax.Array) -> _Tiles:
    """Chunk `step` of the blocks listed in row `blocks.row` of `ids` (int32[rows, length]); places past
    the list's count (under vmap, an env's list may be shorter than the batch's) read the empty block."""
    num_rows, cols = _block_counts(board)
    size = BLOCK + 2
    chunk = chunk_blocks(num_rows * cols)
    ids = jax.lax.dynamic_slice(ids, (blocks.row, step * chunk), (1, chunk))[0]
    ids = computed_once(jnp.where(step * chunk + jnp.arange(chunk) < blocks.count, ids, num_rows * cols),
                        step >= 0)
    origins = jnp.stack([ids // cols, ids % cols], axis=-1) * BLOCK
    cells = jnp.arange(size, dtype=jnp.int32)
    place = ((origins[:, 0, None, None] + cells[None, :, None]) * board.owner.shape[1]
             + origins[:, 1, None, None] + cells[None, None, :])
    # Stored as [K, S, S] and flattened afterwards: a flattening fusion would run as scalar code.
    return _Tiles(computed_once(place, step >= 0).ravel(), size, ids, origins)


def _read(board: Board, tiles: _Tiles, token: jax.Array, owner: bool = True
          ) -> tuple[jax.Array | None, jax.Array]:
    """(owner, info) of the tiles, flat (owner None unless `owner`); info is 0 off the tiles' own blocks,
    and its ages 0 in blocks whose ages are stale (`Board.stamp`)."""
    if tiles.origins is None:
        return board.owner.ravel() if owner else None, board.info.ravel()
    size = BLOCK + 2
    info = jax.lax.gather(board.info, tiles.origins, _WINDOWS, (size, size), mode=_IN_BOUNDS)
    inside = (jnp.arange(size) >= 1) & (jnp.arange(size) <= BLOCK)
    valid = board.stamp[tiles.ids] == board.now
    keep = jnp.where(valid, 255, 255 - INFO_AGE).astype(jnp.uint8)[:, None, None]
    info = jnp.where(inside[None, :, None] & inside[None, None, :], info & keep, 0)  # the border: others'
    if not owner:
        return None, computed_once(info, token).ravel()
    owner = jax.lax.gather(board.owner, tiles.origins, _WINDOWS, (size, size), mode=_IN_BOUNDS)
    owner, info = computed_once((owner, info), token)
    return owner.ravel(), info.ravel()


def map_yx(board: Board, place: jax.Array) -> tuple[jax.Array, jax.Array]:
    """int32 (y, x): the map coordinates of tiles given by their place in the flattened board."""
    return place // board.owner.shape[1] - 1, place % board.owner.shape[1] - 1


def _map_index(board: Board, place: jax.Array) -> jax.Array:
    """uint32: the map index `y * width + x` of tiles given by their place in the flattened board."""
    y, x = map_yx(board, place)
    return (y * board.width + x).astype(jnp.uint32)


def _focus_bonus(board: Board, place: jax.Array, target: jax.Array, neighbours: list[jax.Array],
                 focus: jax.Array, bonus: int, player: int = 1) -> jax.Array:
    """int32: the age bonus of a directed attack (`GameState.focus` of `player`, the agent, float32[4]: origin
    (y, x), unit direction (dy, dx); zeros: none): tiles next to `player`, not its own, within 45 degrees of
    the direction seen from the origin count `bonus` ticks older (its attack takes them first)."""
    oy, ox, dy, dx = (focus[i] for i in range(4))
    y, x = map_yx(board, place)
    vy, vx = y.astype(jnp.float32) - oy, x.astype(jnp.float32) - ox
    # cos 45 degrees: v . d >= |v| / sqrt(2), squared on the non-negative side.
    along = vy * dy + vx * dx
    in_cone = (along > 0) & (2.0 * along * along >= vy * vy + vx * vx)
    near = (neighbours[0] == player) | (neighbours[1] == player) | (neighbours[2] == player) | (
        neighbours[3] == player)
    active = (dy != 0) | (dx != 0)
    return jnp.where(active & in_cone & near & (target != player), bonus, 0)


class Beaches(NamedTuple):
    """Boat attacks held at their beach (game/boats.py): a held pair's frontier is only the tiles of its
    target within one tile of its box."""

    box: jax.Array  # int32[P + 1, P + 1, 4]: (y0, x0, y1, x1) per pair (`GameState.beach_box`)
    held: jax.Array  # bool[P + 1, P + 1]: the pairs with a box
    ids: jax.Array  # int32[K]: the held pairs a (P + 1) + t (`grid.compact`: then (P + 1)^2)
    count: jax.Array  # int32[]: how many (a loop bound)


def held_beaches(box: jax.Array) -> Beaches:
    """The `Beaches` of the boxes `box` (int32[P + 1, P + 1, 4], `GameState.beach_box`)."""
    held = box[..., 2] >= 0
    ids, count = compact(held.ravel(), 1)
    return Beaches(box, held, ids, count)


def _beach_attacker(board: Board, place: jax.Array, target: jax.Array, land: jax.Array, beaches: Beaches,
                    live: jax.Array) -> jax.Array:
    """int32: per tile, the attacker of a held pair (`Beaches`, conquering in `live`) whose box widened by
    one tile holds the tile, a land tile of the pair's target; -1 for none (of several, the last listed).
    A loop over the held pairs: nothing at all when none is."""
    num_pairs = live.size
    y, x = map_yx(board, place)
    boxes = beaches.box.reshape(num_pairs, 4)

    def one(i, claim):
        pair = jnp.minimum(beaches.ids[i], num_pairs - 1)
        y0, x0, y1, x1 = (boxes[pair, j] for j in range(4))
        held = (beaches.ids[i] < num_pairs) & live.ravel()[pair]
        inside = (held & land & (target == pair % live.shape[0]) & (y >= y0 - 1) & (y <= y1 + 1)
                  & (x >= x0 - 1) & (x <= x1 + 1))
        return jnp.where(inside, pair // live.shape[0], claim)

    return jax.lax.fori_loop(0, beaches.count, one, jnp.full(target.shape, -1, jnp.int32))


def _grow_boxes(board: Board, place: jax.Array, pair: jax.Array, beaches: Beaches, box: jax.Array
                ) -> jax.Array:
    """int32[P + 1, P + 1, 4]: `box` with each held pair's box grown to hold the tiles it took (`pair`: per
    tile, the taking pair a (P + 1) + t, -1 if not taken)."""
    y, x = map_yx(board, place)
    far = 1 << 20
    boxes = box.reshape(-1, 4)

    def one(i, boxes):
        held = beaches.ids[i]
        mine = pair == held
        took = jnp.stack([jnp.min(jnp.where(mine, y, far)), jnp.min(jnp.where(mine, x, far)),
                          jnp.max(jnp.where(mine, y, -1)), jnp.max(jnp.where(mine, x, -1))])
        now = boxes[jnp.minimum(held, boxes.shape[0] - 1)]
        grown = jnp.concatenate([jnp.minimum(now[:2], took[:2]), jnp.maximum(now[2:], took[2:])])
        return boxes.at[held].set(grown, mode="drop")

    return jax.lax.fori_loop(0, beaches.count, one, boxes).reshape(box.shape)


def _segments(board: Board, tiles: _Tiles, live: jax.Array, seed: jax.Array, token: jax.Array,
              focus: jax.Array | None = None, focus_bonus: int = 0, beaches: Beaches | None = None
              ) -> jax.Array:
    """Each tile's (attacker, target, unsorted priority bin) segment.

    Every tile of an attack's target 4-adjacent to the attacker is on its frontier (of a pair held at its
    beach, only those near its box: `Beaches`); a tile bordered by several attackers is claimed by the
    most surrounding one (two random bits per direction break ties).
    Args: live: bool[P + 1, P + 1]; seed: uint32[2]; token: see `computed_once`; focus: the agent's
        directed attack (`_focus_bonus`), None for none; beaches: None on a map without water.
    Returns int32[N - 2 stride]: `(pair * h + covered) * 1344 + bin` on a frontier (pair: claimant * (P + 1)
    + target; h: `Board.cover_halves`, covered 0 or 1 and always 0 when h = 1), else `_off_frontier`.
    """
    num_slots = live.shape[0]
    owner, info = _read(board, tiles, token)
    stride, end = tiles.stride, owner.shape[0] - tiles.stride
    owner, info = owner.astype(jnp.int32), info[stride:end].astype(jnp.int32) & ~INFO_FRONTIER
    target = owner[stride:end]
    land = (info & _TERRAIN_BITS) > 0
    neighbours = _neighbours(owner, stride, end)
    live = live.at[0].set(False)  # slot 0, unowned land, attacks nobody
    held_live = None
    if beaches is not None:  # held pairs reach only the tiles near their box (below), not the whole border
        live, held_live = live & ~beaches.held, live & beaches.held
    # Each target's attackers as the bits of words (bit a % 32 of word a // 32: attacker a), looked up once
    # per tile: by a chain of selects for a few slots, else by a gather kept out of the loop below (fused
    # into it, a gather makes the whole loop scalar code: 143 -> ~20 us a chunk with 51 players).
    slot = jnp.arange(num_slots, dtype=jnp.uint32)
    bits = jnp.where(live, jnp.left_shift(jnp.uint32(1), slot % 32)[:, None], jnp.uint32(0))
    words = [jnp.sum(jnp.where((slot // 32 == w)[:, None], bits, 0), axis=0, dtype=jnp.uint32)
             for w in range(-(-num_slots // 32))]  # uint32[P + 1] each, by target
    if num_slots <= 32:
        attackers = [jnp.where(land, select_lookup(words[0], target), 0)]
    else:
        attackers = computed_once([jnp.where(land, word[target], 0) for word in words], token)

    def attacked_by(n):
        word = attackers[0]
        for w in range(1, len(attackers)):
            word = jnp.where(n >= 32 * w, attackers[w], word)
        return ((word >> (n % 32).astype(jnp.uint32)) & 1) > 0

    place = tiles.place[stride:end]
    if beaches is not None:
        beach_attacker = _beach_attacker(board, place, target, land, beaches, held_live)
        attacked_freely = attacked_by

        def attacked_by(n):
            return attacked_freely(n) | (n == beach_attacker)

    rand = hash_bits(seed[0], _map_index(board, place))
    best = jnp.full(target.shape, -1, jnp.int32)
    claimant = jnp.zeros_like(target)
    for direction, n in enumerate(neighbours):
        surrounding = sum((m == n).astype(jnp.int32) for m in neighbours)  # k: attacker-owned neighbours
        tie_bits = ((rand >> (2 * direction)) & 3).astype(jnp.int32)
        score = jnp.where(attacked_by(n) & (n != target), surrounding * 4 + tie_bits, -1)
        # Strictly better only: the first direction wins exact ties, as argmax does.
        better = score > best
        best = jnp.where(better, score, best)
        claimant = jnp.where(better, n, claimant)
    k = jnp.maximum(best >> 2, 1)
    draw = ((rand >> 8) % NUM_DRAWS).astype(jnp.int32)
    age = info & INFO_AGE
    if focus is not None:
        age = jnp.minimum(age + _focus_bonus(board, place, target, neighbours, focus, focus_bonus),
                          NUM_AGES - 1)
    terrain = jnp.maximum((info >> INFO_TERRAIN_SHIFT & 3) - 1, 0)
    unsorted_bin = (((age * NUM_K + k - 1) * NUM_TERRAIN + terrain) * NUM_DRAWS + draw)
    group = claimant * num_slots + target
    if board.cover:
        group = group * 2 + (info >> 6 & 1)
    return computed_once(jnp.where(best >= 0, group * NUM_BINS + unsorted_bin,
                                   _off_frontier(board, num_slots)), token)


def _off_frontier(board: Board, num_slots: int) -> int:
    """The segment of tiles on no frontier: past every (attacker, target, cover half, bin)."""
    return num_slots * num_slots * board.cover_halves * NUM_BINS


def _pair_bin(board: Board, segment: jax.Array) -> jax.Array:
    """A segment without its cover half: `pair * 1344 + bin` (the segment itself when h = 1)."""
    if not board.cover:
        return segment
    return segment // (2 * NUM_BINS) * NUM_BINS + segment % NUM_BINS


def _sorted(segment: jax.Array, rules: Rules) -> jax.Array:
    """Segments by unsorted bin -> by priority-sorted bin (off-frontier segments stay past the end)."""
    unsorted_bin = segment % NUM_BINS
    return segment - unsorted_bin + jnp.asarray(_priority_tables(rules)[0])[unsorted_bin]


class ConquestScratch(NamedTuple):
    """Buffers the conquest works in, which a run of ticks makes once and hands from tick to tick
    (`loop.tick_carrying`) rather than writing them every tick (`loop.conquest_scratch`)."""

    # The histogram's table (`Frontier.counts`: int32[P + 1, P + 1, (2,) 1344]), all zeros: every tick leaves
    # it all zeros again (each round's plan zeroes the rows it read). With 50 tribes it is 14.5 MB, and its
    # zeros were ~0.5 ms of a 5.8 ms tick at 1024x1024 (one core, AMD EPYC).
    counts: jax.Array
    # Where a round keeps its first chunks' frontiers (`frontier_scratch`; None on a map read whole),
    # any values: a round writes every row it reads. Filling them each round was ~0.05 ms of a 1.4 ms tick
    # at 1024x1024 with 10 tribes (one core, Intel Xeon).
    saved: jax.Array | None
    listed: jax.Array | None


class Frontier(NamedTuple):
    """A round's frontier, found by `frontier_histogram` and taken by `take_tiles`."""

    counts: jax.Array  # int32[P + 1, P + 1, 1344]: frontier tiles per (attacker, target, sorted bin);
    #                    int32[P + 1, P + 1, 2, 1344] on a board with cover: uncovered ones, then covered ones
    saved: jax.Array  # int32: segments of the whole board, or [SAVED_CHUNKS + 1, ...] of the first chunks
    live: jax.Array  # bool[P + 1, P + 1]: the attacks that conquer this round
    seed: jax.Array  # uint32[2]: this round's randomness
    focus: jax.Array | None  # float32[4]: the agent's directed attack (`_focus_bonus`), None for none
    blocks: Listed | None = None  # the blocks read (a board read by blocks)
    beaches: Beaches | None = None  # boat attacks held at their beach (None on a map without water)
    # The frontier tiles of `saved` (`_frontier_list`): int32[L] of the whole board, or [SAVED_CHUNKS + 1, L]
    # per chunk, with their pages (int32[] or [SAVED_CHUNKS + 1]).
    listed: jax.Array | None = None
    pages: jax.Array | None = None


def frontier_histogram(board: Board, lists: BlockLists | None, blocks: Listed | None, live: jax.Array,
                       seed: jax.Array, rules: Rules, focus: jax.Array | None = None,
                       beaches: Beaches | None = None, *, counts: jax.Array, saved: jax.Array | None,
                       saved_listed: jax.Array | None) -> Frontier:
    """The frontier tiles of every conquering attack, counted per (attacker, target, priority bin).

    Args:
        lists, blocks: the blocks that may hold frontier tiles (others are not read), or None for a board
            read whole.
        live: bool[P + 1, P + 1], the attacks that conquer this round; seed: uint32[2], this round's.
        focus: float32[4], the agent's directed attack (`GameState.focus[1]`), or None.
        beaches: the boat attacks held at their beach (`held_beaches`), or None (a map without water).
        counts: the table to count in, all zeros (`loop.conquest_scratch`, or `Plan.counts` of the round
            before).
        saved, saved_listed: the buffers for the first chunks' frontiers (`frontier_scratch`: any values;
            None on a board read whole).
    """
    num_slots = live.shape[0]
    segments = partial(_segments, live=live, seed=seed, focus=focus, focus_bonus=rules.focus_age_bonus,
                       beaches=beaches)

    off_frontier = _off_frontier(board, num_slots)

    def count(counts, segment, listed, num_pages):  # (a pair's frontier tiles: its row's sum, `plan_takes`)
        def count_page(page, counts):
            _, segment_page = _frontier_page(segment, listed, page, off_frontier)
            return counts.at[_sorted(segment_page, rules)].add(1, mode="drop")

        return jax.lax.fori_loop(0, num_pages, count_page, counts)

    shape = counts.shape
    counts = counts.ravel()
    if board.whole:
        segment = segments(board, _whole(board), token=live.sum() >= 0)
        listed, num_pages = _frontier_list(segment, off_frontier)
        return Frontier(count(counts, segment, listed, num_pages).reshape(shape), segment, live, seed, focus,
                        beaches=beaches, listed=listed, pages=num_pages)

    def count_chunk(step, carry):
        counts, saved, saved_listed, saved_pages = carry
        segment = segments(board, _chunk(board, lists.ids, blocks, step), token=step >= 0)
        listed, num_pages = _frontier_list(segment, off_frontier)
        at = jnp.minimum(step, SAVED_CHUNKS)
        saved = jax.lax.dynamic_update_index_in_dim(saved, segment, at, 0)
        saved_listed = jax.lax.dynamic_update_index_in_dim(saved_listed, listed, at, 0)
        saved_pages = saved_pages.at[at].set(num_pages)
        return count(counts, segment, listed, num_pages), saved, saved_listed, saved_pages

    # Every row a take reads is written first: the take reads the rows of the chunks the loop below runs
    # (under vmap, those of the batch's longest list: an env's chunks past its own list are counted too).
    carry = (counts, saved, saved_listed, jnp.zeros(SAVED_CHUNKS + 1, jnp.int32))
    counts, saved, saved_listed, saved_pages = jax.lax.fori_loop(0, blocks.num_chunks, count_chunk, carry)
    return Frontier(counts.reshape(shape), saved, live, seed, focus, blocks, beaches, saved_listed,
                    saved_pages)


def frontier_scratch(height: int, width: int) -> tuple[jax.Array | None, jax.Array | None]:
    """(saved int32[SAVED_CHUNKS + 1, N], listed int32[SAVED_CHUNKS + 1, L]): the buffers in which a round
    keeps its first chunks' frontiers (`Frontier.saved`, `Frontier.listed`; N tiles of a chunk's windows, L
    rounded up to whole pages) on an H x W map read by blocks; (None, None) for one read whole."""
    if board_layout(height, width)[2]:
        return None, None
    rows, cols = block_counts(height, width)
    chunk_tiles = chunk_blocks(rows * cols) * (BLOCK + 2) ** 2 - 2 * (BLOCK + 2)  # a chunk's per-tile results
    pages = -(-chunk_tiles // FRONTIER_PAGE)
    return (jnp.zeros((SAVED_CHUNKS + 1, chunk_tiles), jnp.int32),
            jnp.zeros((SAVED_CHUNKS + 1, pages * FRONTIER_PAGE), jnp.int32))


def _frontier_list(segment: jax.Array, off_frontier: int) -> tuple[jax.Array, jax.Array]:
    """(int32[L]: the indices of the frontier tiles of `segment` (int32[N], `_segments`), then N; the pages
    of FRONTIER_PAGE of them a loop reads). Counting and taking read the frontier tiles only: ~5-25% of a
    chunk's window tiles, and every scatter and gather over tiles costs its length on a CPU."""
    return compact(segment < off_frontier, FRONTIER_PAGE)


def _frontier_page(segment: jax.Array, listed: jax.Array, page: jax.Array, off_frontier: int
                   ) -> tuple[jax.Array, jax.Array]:
    """(int32[FRONTIER_PAGE]: page `page` of the indices `listed` (`_frontier_list`), their segments; past the
    list's end the index N and the segment off the frontier)."""
    at = jax.lax.dynamic_slice_in_dim(listed, page * FRONTIER_PAGE, FRONTIER_PAGE)
    return at, segment.at[at].get(mode="fill", fill_value=off_frontier)


def _windows(flat: jax.Array) -> jax.Array:
    """A per-tile result of a chunk (see `_Tiles`) back to windows [K, S, S], False on the missing rows."""
    size = BLOCK + 2
    edge = jnp.zeros(size, flat.dtype)
    return jnp.concatenate([edge, flat, edge]).reshape(-1, size, size)


def _across_edges(tiles: _Tiles, lost: jax.Array, num_rows: int, cols: int
                  ) -> list[tuple[jax.Array, jax.Array]]:
    """(candidate ids int32[K], wanted bool[K]) of the blocks next to a chunk's blocks across an edge on
    which a tile changed hands (`lost`: per tile, see `_Tiles`), one pair per side: each side's ids are
    distinct, as `BlockLists.append` needs."""
    lost = _windows(lost)
    row, col = tiles.ids // cols, tiles.ids % cols
    return [(tiles.ids - cols, lost[:, 1].any(axis=1) & (row > 0)),
            (tiles.ids + cols, lost[:, BLOCK].any(axis=1) & (row < num_rows - 1)),
            (tiles.ids - 1, lost[:, :, 1].any(axis=1) & (col > 0)),
            (tiles.ids + 1, lost[:, :, BLOCK].any(axis=1) & (col < cols - 1))]


class ListUpdate(NamedTuple):
    """Where a round's take records blocks (`take_tiles`): the next tick's border list (row `border_row`,
    tag `border_tag`) and the list in row `next_row` (tag `next_tag`): the next round's, which gets the
    blocks with a frontier now and the neighbours across the edges where tiles changed hands, or, where
    not `next_live` (the tick's last round), the round's own list, which gets those neighbours only (the
    next tick's frontier list). See game/blocks.py."""

    border_row: jax.Array
    border_tag: jax.Array
    next_row: jax.Array | None = None
    next_tag: jax.Array | None = None
    next_live: jax.Array | bool = True


def take_tiles(board: Board, frontier: Frontier, plan: Plan, rules: Rules, first_round: jax.Array,
               lists: BlockLists | None = None, update: ListUpdate | None = None
               ) -> tuple[Board, jax.Array, BlockLists | None]:
    """Every frontier tile is taken with its bin's probability (the boundary bin's tiles at random).

    The board is written in place: new owners, and the frontier marks `age_frontier` reads at the tick's
    end (bit 7 of `info`): the first round marks its frontier tiles that it does not take, later rounds
    unmark the tiles they take.
    Args:
        plan: what every attack takes (`plan_takes`).
        first_round: this is the tick's first round (bool[], may be traced).
        lists, update: on a board read by blocks, the state's block lists and where to record the blocks
            where tiles changed hands and their neighbours across the changed edges (the next tick's border
            list) and the blocks the next round reads (those with a frontier now, and the same neighbours).
    Returns:
        board: with the new owners and marks; taken: float32[P + 1, P + 1, C] tiles taken per (attacker,
        target, cost class), exactly those changed in the board, the class being the terrain (C = 3), or on
        a board with `cover` the terrain plus 3 for tiles covered by a defense post (C = 6); lists: updated
        (None for a board read whole); beach_box: `frontier.beaches.box` grown to hold the tiles the held
        pairs took (None without beaches).
    """
    num_slots = frontier.live.shape[0]
    first_round = jnp.asarray(first_round)
    halves = board.cover_halves
    off_frontier = _off_frontier(board, num_slots)
    cutoff, partial, at_cutoff = plan.cutoff.ravel(), plan.partial.ravel(), plan.at_cutoff.ravel()

    def take(place, segment, owner, info, taken, token):
        # 24 random bits as a uniform in [0, 1): a tile of the boundary bin is taken with its bin's share.
        tie = hash_bits(frontier.seed[1], _map_index(board, place))
        # Covered or not, a bin's tiles are taken with the same chance. Off the frontier the pair is past
        # the end: cutoff 0 and part 0 of bin 0, no chance.
        pair_bin = _sorted(_pair_bin(board, segment), rules)
        pair_index, sorted_bin = pair_bin // NUM_BINS, pair_bin % NUM_BINS
        cut = cutoff.at[pair_index].get(mode="fill", fill_value=0)
        chance = jnp.where(sorted_bin < cut, 1.0, jnp.where(
            sorted_bin == cut, partial.at[pair_index].get(mode="fill", fill_value=0.0)
            / at_cutoff.at[pair_index].get(mode="fill", fill_value=1.0), 0.0))
        pair = jnp.where(uniform_of_bits(tie) < chance, segment // NUM_BINS, -1)
        # The taking (attacker, target) pair (times 2, plus 1 if covered, on a board with cover); -1 if not
        # taken.
        pair = computed_once(pair, token)
        owner = owner.ravel().at[jnp.where(pair >= 0, place, owner.size)].set(
            (pair // (num_slots * halves)).astype(jnp.uint8), mode="drop").reshape(owner.shape)
        terrain = segment % NUM_BINS // NUM_DRAWS % NUM_TERRAIN
        off = num_slots * num_slots * halves * NUM_TERRAIN
        taken = taken.at[jnp.where(pair >= 0, pair * NUM_TERRAIN + terrain, off)].add(1, mode="drop")
        flat = info.ravel()
        # Bit 7 is clear on every tile at a tick's start. (Both writes are made, each on no tile in the
        # rounds it does not apply to: the rounds are one loop.)
        kept = (segment < off_frontier) & (pair < 0) & first_round
        flat = flat.at[jnp.where(kept, place, flat.size)].add(jnp.uint8(INFO_FRONTIER), mode="drop")
        flat = flat.at[jnp.where((pair >= 0) & ~first_round, place, flat.size)].apply(
            lambda v: v & ~jnp.uint8(INFO_FRONTIER), mode="drop")
        return owner, flat.reshape(info.shape), taken, pair

    beaches = frontier.beaches

    def take_listed(place, segment, listed, num_pages, owner, info, taken, box, lost=False):
        """`take` of the frontier tiles `listed` (`_frontier_list`) of tiles `place` (int32[N]), a page at a
        time; with `lost`, also which tiles changed hands (bool[N]; else None)."""

        def take_page(page, carry):
            owner, info, taken, box, changed = carry
            at, segment_page = _frontier_page(segment, listed, page, off_frontier)
            place_page = place.at[at].get(mode="fill", fill_value=0)
            owner, info, taken, pair = take(place_page, segment_page, owner, info, taken, page >= 0)
            if changed is not None:
                changed = changed.at[at].set(pair >= 0, mode="drop")
            return owner, info, taken, grow_boxes(place_page, pair, box), changed

        changed = jnp.zeros(place.shape, jnp.bool_) if lost else None
        return jax.lax.fori_loop(0, loop_bound(num_pages), take_page, (owner, info, taken, box, changed))

    def grow_boxes(place, pair, box):  # the held pairs' boxes, grown to hold what they took
        if beaches is None:
            return box
        return _grow_boxes(board, place, jnp.where(pair >= 0, pair // halves, -1), beaches, box)

    taken = jnp.zeros(num_slots * num_slots * halves * NUM_TERRAIN, jnp.int32)
    box = None if beaches is None else beaches.box
    if board.whole:
        whole = _whole(board)
        owner, info, taken, box, _ = take_listed(whole.place[whole.stride:-whole.stride], frontier.saved,
                                                 frontier.listed, frontier.pages, board.owner, board.info,
                                                 taken, box)
    else:
        num_rows, cols = _block_counts(board)

        saved_chunks = jnp.minimum(frontier.blocks.num_chunks, SAVED_CHUNKS)

        def take_chunk(step, carry):
            owner, info, taken, lists, box = carry
            tiles = _chunk(board, lists.ids, frontier.blocks, step)  # (that row is not written here)
            # The first chunks' frontiers were kept by `frontier_histogram`; later ones (a round reading
            # more than SAVED_CHUNKS chunks) are found again on the board as this round's earlier chunks
            # left it: reading the round's starting board there would need a copy of the grids (a pass over
            # the map) on such rounds. (`step` is not batched: a real branch, and `take` compiled once.)

            def found_again():
                segment = _segments(board._replace(owner=owner, info=info), tiles, frontier.live,
                                    frontier.seed, step >= 0, frontier.focus, rules.focus_age_bonus, beaches)
                return segment, *_frontier_list(segment, off_frontier)

            at = jnp.minimum(step, SAVED_CHUNKS)
            segment, listed, num_pages = jax.lax.cond(
                step < saved_chunks, lambda: (frontier.saved[at], frontier.listed[at], frontier.pages[at]),
                found_again)
            owner, info, taken, box, lost = take_listed(tiles.place[tiles.stride:-tiles.stride], segment,
                                                        listed, num_pages, owner, info, taken, box, lost=True)
            edges = _across_edges(tiles, lost, num_rows, cols)
            # Both lists get all their candidates in one batched append (own blocks first, then across each
            # edge): the next tick's border list the blocks where tiles changed hands, the next round's list
            # those with a frontier now.
            candidates = jnp.concatenate([tiles.ids, *(ids for ids, _ in edges)])
            crossed = [wanted for _, wanted in edges]
            lost_blocks = jnp.concatenate([_windows(lost).any(axis=(1, 2)), *crossed])
            if update.next_row is None:
                lists = lists.append(update.border_row, 0, update.border_tag, candidates, lost_blocks)
            else:
                on = _windows(segment < off_frontier).any(axis=(1, 2))
                next_wanted = jnp.concatenate([on & update.next_live, *crossed])
                lists = lists.append_rows((update.border_row, update.next_row), (0, 1),
                                          (update.border_tag, update.next_tag), candidates,
                                          jnp.stack([lost_blocks, next_wanted]))
            return owner, info, taken, lists, box

        owner, info, taken, lists, box = jax.lax.fori_loop(0, frontier.blocks.num_chunks, take_chunk,
                                                           (board.owner, board.info, taken, lists, box))
    taken = taken.astype(jnp.float32).reshape(num_slots, num_slots, halves * NUM_TERRAIN)
    return board._replace(owner=owner, info=info), taken, lists, box


def age_frontier(board: Board, first_blocks: Listed | None, lists: BlockLists | None = None,
                 update: ListUpdate | None = None) -> tuple[Board, BlockLists | None]:
    """The tick's end: tiles marked on the first round's frontier (bit 7, kept by their owner) grow one tick
    older (up to 15), every other tile of the blocks read in that round restarts at 0, and the marks are
    cleared. On a board read by blocks those blocks' ages are stamped valid for the next tick; every other
    block's ages then read as 0 (none of its tiles was on a frontier), with no pass over the map. Those of
    the blocks that still hold a border tile go on the next tick's border list (`update.border_row`).
    """

    def aged(info):
        age = jnp.where((info & INFO_FRONTIER) > 0, jnp.minimum((info & INFO_AGE) + 1, INFO_AGE), 0)
        return (info & (INFO_COVER | _TERRAIN_BITS)) | age.astype(jnp.uint8)

    if board.whole:
        return board._replace(info=aged(board.info)), lists
    size = BLOCK + 2

    def age_chunk(step, carry):
        info, stamp, lists = carry
        tiles = _chunk(board, lists.ids, first_blocks, step)
        owner, window = _read(board._replace(info=info, stamp=stamp), tiles, step >= 0)
        land = (window & _TERRAIN_BITS) > 0  # only the blocks' own tiles (`_read`: 0 on the border)
        info = info.ravel().at[jnp.where(land, tiles.place, info.size)].set(aged(window), mode="drop")
        # Border tiles: land with a 4-neighbour of another player.
        stride, end = size, owner.shape[0] - size
        owner = owner.astype(jnp.int32)
        centre = owner[stride:end]
        border = jnp.zeros(centre.shape, bool)
        for n in _neighbours(owner, stride, end):
            border |= (n > 0) & (n != centre)
        border = _windows(border & land[stride:end]).any(axis=(1, 2))
        lists = lists.append(update.border_row, 0, update.border_tag, tiles.ids, border)
        # The stamps are written in place once `_read` has read them (else XLA copies them each chunk):
        # `window` is stored (`computed_once`), so one of its values depends on the whole read.
        stamp = after(stamp, window[:1]).at[tiles.ids].set(board.now + 1)
        return info.reshape(board.info.shape), stamp, lists

    info, stamp, lists = jax.lax.fori_loop(0, first_blocks.num_chunks, age_chunk,
                                           (board.info, board.stamp, lists))
    return board._replace(info=info, stamp=stamp), lists


def _neighbours(owner: jax.Array, stride: int, end: int) -> list[jax.Array]:
    """N, S, W, E neighbours of flat tiles [stride, end) (see `_Tiles`): a row up or down, a tile aside."""
    return [owner[:end - stride], owner[2 * stride:], owner[stride - 1:end - 1], owner[stride + 1:end + 1]]


class BorderTiles(NamedTuple):
    """Tiles read by `visit_border`: one chunk of the listed blocks (or the whole board), flat."""

    place: jax.Array  # int32[N]: each tile's place in the flattened board (`map_yx` gives its map (y, x))
    owner: jax.Array  # int32[N]
    neighbours: list[jax.Array]  # 4 x int32[N]: the owners of its N, S, W, E neighbours
    land: jax.Array  # bool[N]: land of the block being read (False on a window's border and on water)


def visit_border(board: Board, lists: BlockLists | None, blocks: Listed | None, visit, init, token):
    """`visit(carry, tiles: BorderTiles) -> carry` over every tile of the blocks of row `blocks` of `lists`
    (chunk by chunk), or over the whole board when it is read whole (`lists` None). The border list holds
    every tile next to another player's, so a question about such tiles needs no pass over the map; a
    block is read once however often it is listed (the lists hold no repeats). `token`: see
    `computed_once`."""

    def read(tiles, token):
        owner, info = _read(board, tiles, token)
        stride, end = tiles.stride, owner.shape[0] - tiles.stride
        owner = owner.astype(jnp.int32)
        return BorderTiles(tiles.place[stride:end], owner[stride:end], _neighbours(owner, stride, end),
                           (info[stride:end] & _TERRAIN_BITS) > 0)

    if board.whole:
        return visit(init, read(_whole(board), token))
    return jax.lax.fori_loop(0, blocks.num_chunks,
                             lambda step, carry: visit(carry, read(_chunk(board, lists.ids, blocks, step),
                                                                   step >= 0)), init)


def list_contacts(board: Board, lists: BlockLists, blocks: Listed, num_slots: int) -> jax.Array:
    """bool[P + 1, P + 1]: `contacts[i, j]` when a tile of i is 4-adjacent to a land tile owned by j (the
    bots' `border_contacts`), read from the listed blocks only (the border list holds every border tile)."""
    dummy = num_slots * num_slots

    def mark(seen, tiles):
        codes = [jnp.where(tiles.land & (n > 0) & (n != tiles.owner), n * num_slots + tiles.owner, dummy)
                 for n in tiles.neighbours]
        return seen.at[jnp.concatenate(codes)].set(True)

    seen = visit_border(board, lists, blocks, mark, jnp.zeros(dummy + 1, jnp.bool_), jnp.bool_(True))
    seen = seen[:-1].reshape(num_slots, num_slots)
    return seen | seen.T


def by_terrain(taken: jax.Array) -> jax.Array:
    """float32[P + 1, P + 1, 3]: tiles taken per terrain, covered or not (`taken`: see `take_tiles`)."""
    if taken.shape[-1] == NUM_TERRAIN:
        return taken
    return taken[..., :NUM_TERRAIN] + taken[..., NUM_TERRAIN:]


def charged(taken: jax.Array, per_tile: jax.Array, cover_factor: float) -> jax.Array:
    """float32[P + 1, P + 1]: the total of a per-tile value over the tiles taken.

    Args:
        taken: float32[P + 1, P + 1, C], per cost class (`take_tiles`: 3 terrains, then 3 covered ones).
        per_tile: float32[P + 1, P + 1, 3], the value of an uncovered tile per terrain (`pair_tile_values`);
            a covered tile's is `cover_factor` times as much.
    """
    total = sum_last(taken[..., :NUM_TERRAIN] * per_tile)
    if taken.shape[-1] > NUM_TERRAIN:  # added apart, so that with no covered tile the sum is unchanged
        total = total + sum_last(taken[..., NUM_TERRAIN:] * (per_tile * cover_factor))
    return total


def sum_last(x: jax.Array) -> jax.Array:
    """`x.sum(axis=-1)` for a short last axis, added in order. XLA CPU makes such a reduce a YNN fusion that
    cost ~0.2 ms on a [52, 52, 3] array (a tick with 50 tribes ran three a round)."""
    total = x[..., 0]
    for i in range(1, x.shape[-1]):
        total = total + x[..., i]
    return total


def _exclusive_cumsum(x: jax.Array) -> jax.Array:
    """Sums of the elements before each along the last axis (NUM_BINS = 84 x 16): within blocks of 16, then
    of the blocks before, each a matmul with a triangle of ones. XLA's cumsum on CPU is a slow
    reduce-window; written as a multiply and a sum, XLA CPU made it a YNN reduce fusion costing ~0.18 ms a
    call in a tick (a 1024 tick with 10 tribes: 1.33 ms that way, 1.15 ms with the matmuls, same bits)."""
    inner = 16
    blocks = x.reshape(*x.shape[:-1], -1, inner)
    before_in_block = np.triu(np.ones((inner, inner), np.float32), 1)  # [i, j] = 1 where i < j
    within = blocks @ before_in_block
    totals = blocks.sum(axis=-1)
    before_block = np.triu(np.ones((totals.shape[-1],) * 2, np.float32), 1)
    offsets = totals @ before_block
    return (within + offsets[..., None]).reshape(x.shape)


class Plan(NamedTuple):
    """What every attack takes in a round (`plan_takes`): its bins in priority order up to a cutoff whole,
    and part of the cutoff bin (its tiles at random). Per (attacker, target), so its size does not grow with
    the 1344 bins: with 50 players a table of every pair's bins is 14 MB, and writing it each round cost
    more than the rest of the plan."""

    cutoff: jax.Array  # int32[P + 1, P + 1]: sorted bins before it are taken whole (1344: every bin)
    partial: jax.Array  # float32[P + 1, P + 1]: tiles taken from the cutoff bin
    at_cutoff: jax.Array  # float32[P + 1, P + 1]: the cutoff bin's frontier tiles (1 where there is none)
    counts: jax.Array  # the histogram's buffer (`Frontier.counts`), every row read set back to zero
    tiles: jax.Array  # float32[P + 1, P + 1]: frontier tiles per pair (0 for the pairs not counted)


def plan_takes(counts: jax.Array, counted: jax.Array, budget: Callable, attack_troops: jax.Array,
               cost: jax.Array, attacker_loss: jax.Array, rules: Rules, final_round: jax.Array | bool = True
               ) -> Plan:
    """What every attack takes this round (see `Plan`).

    Tiles go in bin order while budget remains and while the attack has at least one troop before the tile.
    In the final round a tile is taken if the budget before it is positive (so the last one may overdraw,
    as in the engine); earlier rounds take only tiles their share pays for whole, so a tick overdraws once.
    Bins after the first bin not taken whole are not taken (the plan is cut there, so a bin's rounding can
    never let a later bin through). The pairs the histogram counted are planned, `PLAN_PAIRS` at a time
    (one with no budget takes nothing), and their rows of `counts` are set back to zero. A bin holding tiles
    covered by a defense post is priced at its tiles' mean cost and loss, since its tiles are taken at
    random whether covered or not.
    Args: counts: `Frontier.counts`, int32[P + 1, P + 1, 1344] or, with cover, [P + 1, P + 1, 2, 1344];
        counted: bool[P + 1, P + 1], the pairs whose frontier it counts (`Frontier.live`);
        budget: `budget(tiles, rows) -> float32[G, 1]`, the budget of G planned pairs given their frontier
            tiles (float32[G, 1]) and `rows`, which reads their entries of a [P + 1, P + 1] array (0 past the
            last pair): the budget of a tick's first round follows from its frontier, counted here;
        attack_troops: float32[P + 1, P + 1]; cost, attacker_loss: float32[P + 1, P + 1, 3], per terrain on
        uncovered tiles.
    """
    shape = counts.shape
    num_pairs = shape[0] * shape[1]
    with_cover = counts.ndim == 4
    group = min(PLAN_PAIRS, num_pairs)
    pairs, num_groups = compact(counted.ravel(), group)
    terrain = jnp.asarray(_priority_tables(rules)[1])

    def by_bin(values):  # [pairs, 3] -> [pairs, 1344] by each bin's terrain (selects: a gather is slow here)
        return jnp.where(terrain == 0, values[:, :1], jnp.where(terrain == 1, values[:, 1:2], values[:, 2:]))

    def plan_group(step, carry):
        counts, cutoff, partial, at_cutoff, tiles = carry
        chosen = jax.lax.dynamic_slice_in_dim(pairs, step * group, group)

        def rows(values):  # the chosen pairs' rows; zeros past the last pair
            return values.reshape(num_pairs, -1).at[chosen].get(mode="fill", fill_value=0)

        read = computed_once(rows(counts), step >= 0)
        pair_tiles = read.sum(axis=-1, keepdims=True).astype(jnp.float32)  # exact: int32, then < 2^24
        n = read.astype(jnp.float32)
        if with_cover:
            n, n_covered = n[:, :NUM_BINS] + n[:, NUM_BINS:], n[:, NUM_BINS:]
        pair_cost, pair_loss = rows(cost), rows(attacker_loss)
        bin_cost, bin_loss = by_bin(pair_cost), by_bin(pair_loss)
        if with_cover:
            # Written so that a bin with no covered tile keeps exactly its terrain's values.
            share = n_covered / jnp.maximum(n, 1.0)
            bin_cost = bin_cost + share * (bin_cost * (rules.defense_post_cost_factor - 1.0))
            bin_loss = bin_loss + share * (bin_loss * (rules.defense_post_loss_factor - 1.0))
        cost_before, loss_before = _exclusive_cumsum(jnp.stack([n * bin_cost, n * bin_loss]))
        budget_left = budget(pair_tiles, rows) - cost_before
        troops_left = rows(attack_troops) - loss_before
        by_budget = budget_left / jnp.maximum(bin_cost, 1e-6)
        by_budget = jnp.where(final_round, jnp.ceil(by_budget), jnp.floor(by_budget))
        by_troops = jnp.floor((troops_left - 1.0) / jnp.maximum(bin_loss, 1e-6)) + 1.0
        by_troops = jnp.where(bin_loss > 0, by_troops, jnp.inf)
        planned = jnp.minimum(jnp.minimum(by_budget, by_troops), n)
        planned = jnp.where((budget_left > 0) & (troops_left >= 1.0), jnp.maximum(planned, 0.0), 0.0)
        short = planned < n  # (planned <= n): the bins not taken whole; the first is the cutoff
        # The first short bin as a plain min over the bins (XLA CPU's argmax reduction is scalar code).
        cut = jnp.where(short, jnp.arange(NUM_BINS, dtype=jnp.int32), NUM_BINS).min(axis=-1)
        at = jnp.minimum(cut, NUM_BINS - 1)[:, None]
        cutoff = cutoff.at[chosen].set(cut, mode="drop")
        partial = partial.at[chosen].set(jnp.take_along_axis(planned, at, axis=-1)[:, 0], mode="drop")
        at_cutoff = at_cutoff.at[chosen].set(jnp.maximum(jnp.take_along_axis(n, at, axis=-1)[:, 0], 1.0),
                                             mode="drop")
        # Zero again for the next histogram, in place: the write waits for the read (`control.after`; the
        # rows are stored, so one value of them depends on the whole read, and summing all of them in
        # `after` was a YNN reduce costing more than the plan's maths).
        counts = after(counts, n[:1, :1]).at[chosen].set(0, mode="drop")
        tiles = tiles.at[chosen].set(pair_tiles[:, 0], mode="drop")
        return counts, cutoff, partial, at_cutoff, tiles

    per_pair = jnp.zeros(num_pairs, jnp.float32)
    counts, cutoff, partial, at_cutoff, tiles = jax.lax.fori_loop(
        0, num_groups, plan_group,
        (counts.reshape(num_pairs, -1), jnp.zeros(num_pairs, jnp.int32), per_pair, per_pair + 1.0, per_pair))
    cutoff, partial, at_cutoff, tiles = (x.reshape(shape[:2]) for x in (cutoff, partial, at_cutoff, tiles))
    return Plan(cutoff, partial, at_cutoff, counts.reshape(shape), tiles)
