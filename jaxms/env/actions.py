"""The agent's 45 actions: 9 directions (N, NE, E, SE, S, SW, W, NW, WAIT) x 5 troop intensities.

A direction is spatial. Seen from the centre of the agent's territory, every attackable tile on its border
(unowned land or a living enemy, 4-adjacent to the agent) lies in one of eight 45-degree sectors. The
action for a direction attacks whoever owns most of the attackable border in that sector, with the chosen
share of the agent's troops, and the attack is *focused*: tiles within 45 degrees of that direction get
`Rules.focus_age_bonus` extra ticks of frontier age in the conquest priority, so they are taken first.
A direction with no attackable border in its sector is masked out; WAIT (and every intensity of it) is
always legal and orders nothing.

Boats: a direction with no attackable land border in its sector, while the agent has a free boat slot,
aims at the nearest shore tile (to the centre) in that sector that is unowned land or a living enemy's and
lies on a water body one of the agent's shore tiles touches (`boat_landings`). Such a direction is legal
(the mask says so) and sends the chosen share of the troops by boat to that tile (game/boats.py).

The centre is the mean position of the agent's tiles: cheap (one pass), and for a single blob it is
where "north of me" is measured from. Split territories make it approximate; the direction still picks
border tiles that really lie in that direction from it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxms.env.contract import (  # noqa: F401 (re-exported)
    DIRECTION_NAMES,
    INTENSITIES,
    NUM_ACTIONS,
    NUM_DIRECTIONS,
    WAIT,
    WAIT_ACTION,
)
from jaxms.game.boats import BOATS_PER_PLAYER, boats_in_flight, order_boat
from jaxms.game.control import computed_once, cond_any
from jaxms.game.state import MAX_WATER_BODIES, GameState, MapArrays, block_size

# Unit vectors (dy, dx) of the compass directions; y grows southwards (row index).
_DIAGONAL = float(np.sqrt(0.5))
DIRECTION_VECTORS = np.array([(-1, 0), (-_DIAGONAL, _DIAGONAL), (0, 1), (_DIAGONAL, _DIAGONAL), (1, 0),
                              (_DIAGONAL, -_DIAGONAL), (0, -1), (-_DIAGONAL, -_DIAGONAL)], dtype=np.float32)
_TAN_22_5 = float(np.tan(np.pi / 8))


def decode_action(action: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(direction int32 0..8, troop share float32) of actions 0..44 (direction = a // 5)."""
    action = jnp.asarray(action, jnp.int32)
    return action // len(INTENSITIES), jnp.asarray(INTENSITIES, jnp.float32)[action % len(INTENSITIES)]


ROW_GROUP = 16  # rows summed together first (a count of 16 fits in 5 bits, 0 + 1 + ... + 15 = 120 in 7)


def territory_centre(owner: jax.Array, player: int | jax.Array) -> tuple[jax.Array, jax.Array]:
    """(centre float32[2] as (y, x), tiles int32): the mean position of `player`'s tiles.

    Summed down the columns, first over groups of ROW_GROUP rows in small integers (the count and the sum
    of rows within the group packed in one uint16 word: one pass), then as int32 over the groups: XLA CPU
    reduces that way about 15x faster than in one int32 or float sum (4096x4096: ~2.6 ms against ~40 ms);
    the packed word, one pass where there were two, took it from 5.1-5.7 to 4.1-4.2 ms on one core. The
    per-column counts and sums of rows are exact integers; the float sums over the columns are exact while
    below 2^24.
    """
    mine = owner == player
    height, width = owner.shape
    whole = height - height % ROW_GROUP
    groups = mine[:whole].reshape(whole // ROW_GROUP, ROW_GROUP, width)
    # One pass for both sums: a tile adds 1 (its count, bits 0-4: at most 16) plus its row within the
    # group << 5 (bits 5-11: at most 0 + 1 + ... + 15 = 120) to a uint16 word.
    in_group = (1 + (jnp.arange(ROW_GROUP, dtype=jnp.uint16) << 5))[None, :, None]
    packed = jnp.where(groups, in_group, jnp.uint16(0)).sum(axis=1, dtype=jnp.uint16)  # [groups, W]
    count = (packed & 31).astype(jnp.int32)
    rows = (packed >> 5).astype(jnp.int32)  # rows within the group
    first_row = jnp.arange(0, whole, ROW_GROUP, dtype=jnp.int32)[:, None]
    per_column = count.sum(axis=0)
    row_sum = (rows + first_row * count).sum(axis=0)
    if whole < height:  # the last rows, fewer than a group
        rest = mine[whole:].astype(jnp.int32)
        per_column = per_column + rest.sum(axis=0)
        row_sum = row_sum + (rest * jnp.arange(whole, height, dtype=jnp.int32)[:, None]).sum(axis=0)
    tiles = per_column.sum()
    xs = (per_column.astype(jnp.float32) * jnp.arange(width, dtype=jnp.float32)).sum()
    ys = row_sum.astype(jnp.float32).sum()
    return jnp.stack([ys, xs]) / jnp.maximum(tiles.astype(jnp.float32), 1.0), tiles


def compass_sector(dy: jax.Array, dx: jax.Array) -> jax.Array:
    """int32 sector 0..7 (N, NE, ..., NW) of offsets (dy, dx), each sector 45 degrees wide."""
    ay, ax = jnp.abs(dy), jnp.abs(dx)
    vertical = jnp.where(dy < 0, 0, 4)
    horizontal = jnp.where(dx > 0, 2, 6)
    diagonal = jnp.select([(dy < 0) & (dx > 0), (dy > 0) & (dx > 0), (dy > 0) & (dx < 0)], [1, 3, 5], 7)
    return jnp.select([ax <= _TAN_22_5 * ay, ay <= _TAN_22_5 * ax], [vertical, horizontal], diagonal)


def direction_targets(state: GameState, arrays: MapArrays, player: int = 1
                      ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Who the agent would attack in each direction.

    Every attackable tile borders a tile of the agent's, so it lies in a block of the game's border list
    (game/blocks.py): only those blocks are read (the whole board on a small map). The centre is the one
    pass over the map (`territory_centre`).
    Returns:
        target: int32[8], owner id attacked for each compass direction (0 = unowned land);
        legal: bool[9], whether each direction (and WAIT, always) has an attackable border;
        centre: float32[2], the (y, x) the directions are measured from.
    """
    from jaxms.game.blocks import BORDER_ROWS, state_lists
    from jaxms.game.conquest import game_board, listed, map_yx, visit_border

    num_slots = state.troops.shape[0]
    attackable_owner = (state.alive | (jnp.arange(num_slots) == 0)) & (jnp.arange(num_slots) != player)
    centre, _ = territory_centre(state.owner, player)
    dummy = NUM_DIRECTIONS * num_slots
    board = game_board(state)

    def count(counts, tiles):
        touches_me = ((tiles.neighbours[0] == player) | (tiles.neighbours[1] == player)
                      | (tiles.neighbours[2] == player) | (tiles.neighbours[3] == player))
        attackable = tiles.land & touches_me & (tiles.owner != player) & attackable_owner[tiles.owner]
        y, x = map_yx(board, tiles.place)
        sector = compass_sector(y.astype(jnp.float32) - centre[0], x.astype(jnp.float32) - centre[1])
        return counts.at[jnp.where(attackable, sector * num_slots + tiles.owner, dummy)].add(1)

    lists = None if board.whole else state_lists(state)
    blocks = None if board.whole else listed(lists, state.tick % BORDER_ROWS)
    counts = visit_border(board, lists, blocks, count, jnp.zeros(dummy + 1, jnp.int32), centre[0] >= -1.0)
    counts = counts[:-1].reshape(NUM_DIRECTIONS, num_slots)
    legal = jnp.append(counts.sum(axis=1) > 0, True)
    return jnp.argmax(counts, axis=1).astype(jnp.int32), legal, centre


def boat_landings(state: GameState, arrays: MapArrays, target: jax.Array, legal: jax.Array,
                  centre: jax.Array, player: int = 1) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Boat landings for the directions with no land target (see the module docstring).

    Args: `direction_targets`' target int32[8], legal bool[9] and centre float32[2].
    Returns: (landing int32[8]: flat tile index y W + x of each direction's boat landing, -1 none; target
    int32[8] with the landing tile's owner where a boat goes; legal bool[9] with the boat directions).
    The whole-grid search runs only when some direction lacks a land target and a boat slot is free.
    """
    wanted = ~legal[:NUM_DIRECTIONS] & (boats_in_flight(state)[player] < BOATS_PER_PLAYER)
    landing = cond_any(wanted.any(), lambda g, a, c: _nearest_landings(g, a, c, player),
                       lambda g, a, c: jnp.full(NUM_DIRECTIONS, -1, jnp.int32), state, arrays, centre)
    landing = jnp.where(wanted, landing, -1)
    owner_at = state.owner.ravel()[jnp.maximum(landing, 0)].astype(jnp.int32)
    boat = landing >= 0
    return (landing, jnp.where(boat, owner_at, target),
            legal | jnp.append(boat, False))


def _blocks(grid: jax.Array, k: int, reduce) -> jax.Array:
    """[Hc, Wc]: `reduce` (jnp.max) over each k x k block of `grid` [H, W] (padded with zeros): over the
    block's rows first (whole rows at a time, vector code), then over its columns brought to the major axis.
    XLA CPU, uint8 at 1024x1024 with k = 8: 0.07 ms, against 0.36 ms for one reduction over both axes."""
    height, width = grid.shape
    rows, cols = -(-height // k), -(-width // k)
    if (rows * k, cols * k) != (height, width):
        grid = jnp.zeros((rows * k, cols * k), grid.dtype).at[:height, :width].set(grid)
    by_rows = reduce(grid.reshape(rows, k, cols * k), axis=1)
    return reduce(by_rows.reshape(rows, cols, k).transpose(0, 2, 1), axis=1)


def _flag_of(flags: jax.Array, keys: jax.Array) -> jax.Array:
    """flags[keys] (bool[n], n <= 256; keys uint8 < n), through the flags packed as bits of uint32 words
    and a shift per key: a gather inside a pass over the map would make XLA CPU's loop scalar."""
    num_words = -(-flags.shape[0] // 32)
    padded = jnp.zeros(num_words * 32, jnp.uint32).at[:flags.shape[0]].set(flags.astype(jnp.uint32))
    words = (padded.reshape(num_words, 32) << jnp.arange(32, dtype=jnp.uint32)).sum(axis=1, dtype=jnp.uint32)
    keys = keys.astype(jnp.uint32)
    word = jnp.full(keys.shape, words[0])
    for i in range(1, num_words):  # a select per word, not a gather
        word = jnp.where(keys >> 5 == i, words[i], word)
    return ((word >> (keys & 31)) & 1) > 0


def _landable(owner, shore, water_body, player, attackable_owner, touched, lookup):
    """Shore tiles the player could land on: unowned or a living enemy's, on a water body its coast touches
    (`touched`, bool[256] by body); `lookup(flags, keys)` reads the small tables (bit words in a pass over
    the map, a gather elsewhere)."""
    return shore & (owner != player) & lookup(attackable_owner, owner) & lookup(touched, water_body)


def _gather(flags: jax.Array, keys: jax.Array) -> jax.Array:
    return flags[keys]


def _landing_blocks(state: GameState, arrays: MapArrays, player: int, attackable_owner: jax.Array
                    ) -> tuple[jax.Array, jax.Array]:
    """(has_candidate bool[Hc, Wc]: whether each k x k block holds a tile the player could land on,
    touched bool[256]: the water bodies its coast touches).

    The bodies are read per block (the highest body a block's coast of the player touches, so a block
    touching two bodies counts one). From the map's listed shore tiles (`MapArrays.shore_tiles`, ~1% of its
    tiles; a pass over the whole map cost ~0.5 ms at 1024x1024) when it lists them all, else from the
    whole map.
    """
    height, width = state.owner.shape
    k = block_size((height, width))
    rows, cols = -(-height // k), -(-width // k)
    no_body = jnp.zeros(MAX_WATER_BODIES + 1, jnp.bool_)

    # The branches read the board (`GameState.owner` is a slice of it: a copy as an operand of a branch,
    # 7 ms at 4096x4096).
    def listed(board_owner, attackable_owner, arrays):
        tiles = arrays.shore_tiles  # padded with H * W: body 0, in no block
        owner = board_owner.ravel().at[state.board_index(tiles)].get(mode="fill", fill_value=0)
        body = arrays.water_body.ravel().at[tiles].get(mode="fill", fill_value=0)
        listed_tile = tiles < height * width
        block = jnp.where(listed_tile, (tiles // width // k) * cols + tiles % width // k, rows * cols)
        coast_bodies = jnp.zeros(rows * cols, jnp.uint8).at[block].max(
            jnp.where(owner == player, body, jnp.uint8(0)), mode="drop")
        touched = no_body.at[coast_bodies].set(True).at[0].set(False)
        candidate = _landable(owner, True, body, player, attackable_owner, touched, _gather)
        return jnp.zeros(rows * cols, jnp.bool_).at[block].max(candidate, mode="drop"), touched

    def whole(board_owner, attackable_owner, arrays):
        owner, water_body = board_owner[1:height + 1, 1:width + 1], arrays.water_body
        coast_bodies = _blocks(jnp.where((owner == player) & arrays.shore, water_body, jnp.uint8(0)), k,
                               jnp.max)
        touched = no_body.at[coast_bodies.ravel()].set(True).at[0].set(False)
        candidate = _landable(owner, arrays.shore, water_body, player, attackable_owner, touched, _flag_of)
        return (_blocks(candidate.astype(jnp.uint8), k, jnp.max) > 0).ravel(), touched

    # The whole map only for a map with more shore than its list holds (the costly branch: see cond_any).
    unlisted = arrays.num_shore_tiles > arrays.shore_tiles.shape[0]
    has_candidate, touched = cond_any(unlisted, whole, listed, state.board_owner, attackable_owner, arrays)
    return has_candidate.reshape(rows, cols), touched


def _nearest_landings(state: GameState, arrays: MapArrays, centre: jax.Array, player: int) -> jax.Array:
    """int32[8]: per sector, a shore tile nearest `centre` the player could land on (-1 none).

    The blocks holding candidate tiles come from `_landing_blocks`; the search runs on the k x k blocks of
    the coarse water graph (nearest block per sector, then the nearest candidate tile inside it: exact at
    k = 1).
    """
    num_slots = state.troops.shape[0]
    height, width = state.owner.shape
    k = block_size((height, width))
    slots = jnp.arange(num_slots)
    attackable_owner = (state.alive | (slots == 0)) & (slots != player)
    has_candidate, touched = _landing_blocks(state, arrays, player, attackable_owner)
    rows, cols = has_candidate.shape
    block_y = (jnp.arange(rows, dtype=jnp.float32) * k + (k - 1) / 2)[:, None] - centre[0]
    block_x = (jnp.arange(cols, dtype=jnp.float32) * k + (k - 1) / 2)[None, :] - centre[1]
    # Per sector, the nearest block with a candidate, the first in row-major order among equals: two
    # scatter-mins over the blocks (an argmin per sector over all of them is several times slower on a CPU).
    # The distances (non-negative) are compared as their bits, int32 in the same order; they and the sectors
    # are stored once, so that the first scatter and the comparison after it read the same values.
    distance = jax.lax.bitcast_convert_type((block_y * block_y + block_x * block_x).ravel(), jnp.int32)
    sector = jnp.where(has_candidate, compass_sector(block_y, block_x), NUM_DIRECTIONS).ravel()
    distance, sector = computed_once((distance, sector), centre[0] >= -1.0)
    nearest = jnp.full(NUM_DIRECTIONS + 1, jnp.iinfo(jnp.int32).max, jnp.int32).at[sector].min(distance)
    at_nearest = jnp.where(distance == nearest[sector], sector, NUM_DIRECTIONS)
    first = jnp.full(NUM_DIRECTIONS + 1, rows * cols, jnp.int32).at[at_nearest].min(
        jnp.arange(rows * cols, dtype=jnp.int32))
    found = first[:NUM_DIRECTIONS] < rows * cols
    best = jnp.where(found, first[:NUM_DIRECTIONS], 0)

    def inside(block, direction):
        """The candidate tile of `block` nearest the centre, preferring tiles in `direction`'s sector. The
        block's tiles are read from the map's grids (a window of the candidate grid would make XLA keep that
        whole grid: at 4096x4096 this search took 25.7 ms with it, 11.4 ms without)."""
        y0, x0 = (block // cols) * k, (block % cols) * k
        ys = (y0 + jnp.arange(k, dtype=jnp.int32))[:, None]
        xs = (x0 + jnp.arange(k, dtype=jnp.int32))[None, :]
        on_map = (ys < height) & (xs < width)
        at = (jnp.minimum(ys, height - 1), jnp.minimum(xs, width - 1))
        window = on_map & _landable(state.owner_at(*at), arrays.shore[at], arrays.water_body[at], player,
                                    attackable_owner, touched, _gather)
        dy, dx = ys.astype(jnp.float32) - centre[0], xs.astype(jnp.float32) - centre[1]
        distance = dy * dy + dx * dx + jnp.where(compass_sector(dy, dx) == direction, 0.0, 1e12)
        pick = jnp.argmin(jnp.where(window, distance, jnp.inf))
        return (y0 + pick // k) * width + x0 + pick % k

    tiles = jax.vmap(inside)(best, jnp.arange(NUM_DIRECTIONS)).astype(jnp.int32)
    return jnp.where(found, tiles, -1)


def action_mask(legal_directions: jax.Array) -> jax.Array:
    """bool[45] from bool[9]: every intensity of a legal direction is legal."""
    return jnp.repeat(legal_directions, len(INTENSITIES))


def apply_action(state: GameState, action: jax.Array, target: jax.Array, legal: jax.Array,
                 centre: jax.Array, player: int = 1, landing: jax.Array | None = None
                 ) -> tuple[GameState, jax.Array]:
    """Order the agent's attack for `action` (already clipped to 0..44); an illegal direction waits.

    `landing` (int32[8], from `boat_landings`; None: no boats): a direction with a landing tile sends its
    troops by boat instead of by land. Returns the state with the order queued (and, for a land attack,
    the attack focus set), and whether an order was given.
    """
    direction, share = decode_action(action)
    attacks = (direction != WAIT) & legal[direction]
    troops = jnp.floor(share * state.troops[player])
    attacks &= troops >= 1.0
    compass = jnp.minimum(direction, NUM_DIRECTIONS - 1)
    by_boat = attacks & (landing[compass] >= 0) if landing is not None else jnp.bool_(False)
    by_land = attacks & ~by_boat
    who = target[compass]
    orders = state.orders.at[player, who].add(jnp.where(by_land, troops, 0.0))
    vector = jnp.asarray(DIRECTION_VECTORS)[compass]
    focus = jnp.where(by_land, jnp.concatenate([centre, vector]), state.focus[player])
    state = state.replace(orders=orders, focus=state.focus.at[player].set(focus))
    if landing is not None:
        state = order_boat(state, player, landing[compass], troops, by_boat)
    return state, attacks
