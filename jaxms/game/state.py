"""Game state and static map arrays, as pytrees.

Players are indexed by owner id: slot 0 is unowned land (terra nullius), slots 1..P are players, so every
per-player array has P + 1 entries and `attacks[attacker, target]` has target 0 for unowned land. Water is
a terrain fact (`MapArrays.land`), never an owner: water tiles keep owner 0 and are never conquered.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from scipy import ndimage

from jaxms.game.grid import BLOCK, INFO_AGE, block_counts, board_layout
from jaxms.game.rules import Rules
from jaxms.maps import GameMap


@struct.dataclass
class MapArrays:
    """A map's static arrays for the simulation (arguments of jitted functions, never constants)."""

    land: jax.Array  # bool[H, W]
    terrain: jax.Array  # uint8[H, W]: 0 plains, 1 highland, 2 mountain, 3 water
    spawnable: jax.Array  # bool[H, W]: all 52 tiles of the spawn disk centred here are land
    num_land_tiles: jax.Array  # int32[]
    # Boats (game/boats.py). Water bodies are 4-connected water components ranked by size (1 = largest, up
    # to MAX_WATER_BODIES; smaller ones get 0 and carry no boats).
    shore: jax.Array  # bool[H, W]: land with a 4-neighbour water tile
    water_body: jax.Array  # uint8[H, W]: a water tile's body; a shore tile's largest adjacent body; else 0
    # The coarse water graph a boat's travel time is measured on: k x k blocks (k = block_size((H, W))), a
    # block linked to its right / lower neighbour by the body whose water tiles cross their shared edge
    # (4-adjacent water tiles of one body on both sides; the body crossing most, 0: none).
    block_right: jax.Array  # uint8[Hc, Wc]
    block_down: jax.Array  # uint8[Hc, Wc]
    # The shore tiles on a water body (water_body > 0: where boats land and leave), listed for searches that
    # read no other tile (the agent's landings, env/actions.py): ~0.2-2% of a map's tiles. Flat indices
    # y * W + x, ascending, padded with H * W to `shore_capacity` entries, a number of the map's shape, so
    # that every map of a shape has the same arrays (one compiled program). A map with more such tiles lists
    # the first ones only, and its searches read the whole map (`num_shore_tiles` > capacity).
    shore_tiles: jax.Array  # int32[shore_capacity((H, W))]
    num_shore_tiles: jax.Array  # int32[]: the map's shore tiles on a water body, listed or not
    # Static: whether a boat can ever sail here (some shore touches a water body). A map without water
    # compiles the boat phases out (exact: no launch could find a shore) and cuts the tick's compile time.
    water: bool = struct.field(pytree_node=False, default=True)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.land.shape)


def spawn_disk_offsets(rules: Rules = Rules()) -> np.ndarray:
    """int[K, 2] of (dy, dx) offsets of the spawn disk: (dx + 0.5)^2 + (dy + 0.5)^2 <= r^2 (K = 52)."""
    reach = int(np.ceil(np.sqrt(rules.spawn_disk_radius_sq))) + 1
    offsets = [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)
               if (dx + 0.5) ** 2 + (dy + 0.5) ** 2 <= rules.spawn_disk_radius_sq]
    return np.array(offsets, dtype=np.int32)


def map_arrays(game_map: GameMap, rules: Rules = Rules()) -> MapArrays:
    """The simulation's view of `game_map` (computed once per map, on the host)."""
    offsets = spawn_disk_offsets(rules)
    reach = int(np.abs(offsets).max())
    kernel = np.zeros((2 * reach + 1, 2 * reach + 1), dtype=np.int32)
    # correlate() reads input[y + dy, x + dx] for kernel cell (dy + reach, dx + reach).
    kernel[offsets[:, 0] + reach, offsets[:, 1] + reach] = 1
    disk_land = ndimage.correlate(game_map.land.astype(np.int32), kernel, mode="constant", cval=0)
    shore, water_body, block_right, block_down = water_tables(game_map.land)
    shore_tiles = np.flatnonzero(shore & (water_body > 0)).astype(np.int32)
    capacity = shore_capacity(shore.shape)
    listed = np.full(capacity, shore.size, np.int32)
    listed[:min(capacity, len(shore_tiles))] = shore_tiles[:capacity]
    return MapArrays(
        land=jnp.asarray(game_map.land),
        terrain=jnp.asarray(game_map.terrain),
        spawnable=jnp.asarray(disk_land == len(offsets)),
        num_land_tiles=jnp.asarray(game_map.num_land_tiles, dtype=jnp.int32),
        shore=jnp.asarray(shore),
        water_body=jnp.asarray(water_body),
        block_right=jnp.asarray(block_right),
        block_down=jnp.asarray(block_down),
        shore_tiles=jnp.asarray(listed),
        num_shore_tiles=jnp.asarray(len(shore_tiles), dtype=jnp.int32),
        water=bool((water_body[shore] > 0).any()),
    )


def shore_capacity(shape: tuple[int, int]) -> int:
    """Shore tiles listed in `MapArrays.shore_tiles` for a map of `shape`: 16 per tile of its height plus
    width (measured: 2.7-4.8 on the continents maps and OpenFront's australia, 7.8 on pangaea, 6.9-10 on the
    islands maps)."""
    return min(shape[0] * shape[1], 16 * (shape[0] + shape[1]))


MAX_WATER_BODIES = 255  # water bodies a boat can use (the largest; smaller lakes carry no boats)
COARSE_CELLS = 128  # the coarse water graph has at most this many blocks a side (boats.block_size)


def block_size(shape: tuple[int, int]) -> int:
    """k: the side in tiles of a block of the coarse water graph of a map of `shape` (1 up to 128 a side,
    so small maps get exact water distances; 8 at 1024x1024)."""
    return max(1, -(-max(shape) // COARSE_CELLS))


def water_tables(land: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(shore bool[H, W], water_body uint8[H, W], block_right, block_down uint8[Hc, Wc]) of a land mask
    (see MapArrays).

    Host-side, once per map: water bodies are labelled by scipy (4-connected), ranked by size; a shore tile
    takes the largest body it touches; a block edge takes the body with most water tile pairs across it.
    """
    land = np.asarray(land, dtype=bool)
    height, width = land.shape
    labels, count = ndimage.label(~land)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    rank = np.zeros(count + 1, dtype=np.int32)
    largest = np.argsort(-sizes, kind="stable")[:MAX_WATER_BODIES]
    rank[largest + 1] = np.arange(1, len(largest) + 1)
    body = rank[labels]  # 0 on land and on the smallest lakes
    # Each land tile's neighbouring bodies; the largest (smallest rank > 0) wins.
    padded = np.pad(np.where(body > 0, body, MAX_WATER_BODIES + 1), 1, constant_values=MAX_WATER_BODIES + 1)
    nearest = np.minimum.reduce([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
    water_pad = np.pad(~land, 1, constant_values=False)
    shore = land & (water_pad[:-2, 1:-1] | water_pad[2:, 1:-1] | water_pad[1:-1, :-2] | water_pad[1:-1, 2:])
    shore_body = np.where(land & (nearest <= MAX_WATER_BODIES), nearest, 0)
    water_body = np.where(land, shore_body, body).astype(np.uint8)
    k = block_size((height, width))
    rows, cols = -(-height // k), -(-width // k)
    grid = np.zeros((rows * k, cols * k), dtype=np.int64)
    grid[:height, :width] = body
    slots = MAX_WATER_BODIES + 1

    def crossing(near: np.ndarray, far: np.ndarray, block_of: np.ndarray, num: int) -> np.ndarray:
        """uint8[num]: per edge, the body with most water pairs (near, far) across it."""
        pair = (near > 0) & (near == far)
        index = block_of * slots + np.where(pair, near, 0)
        counts = np.bincount(index.ravel(), minlength=num * slots).reshape(num, slots)
        counts[:, 0] = 0
        return np.where(counts.max(axis=1) > 0, counts.argmax(axis=1), 0).astype(np.uint8)

    block_rows = np.arange(rows * k) // k
    block_cols = np.arange(cols * k) // k
    # Right edges: columns x = (j + 1) k - 1 and x + 1, for j < cols - 1.
    right = np.zeros((rows, cols), dtype=np.uint8)
    if cols > 1:
        xs = np.arange(1, cols) * k - 1
        ids = block_rows[:, None] * (cols - 1) + np.arange(cols - 1)[None, :]
        right[:, :-1] = crossing(grid[:, xs], grid[:, xs + 1], ids, rows * (cols - 1)).reshape(rows, cols - 1)
    down = np.zeros((rows, cols), dtype=np.uint8)
    if rows > 1:
        ys = np.arange(1, rows) * k - 1
        ids = np.arange(rows - 1)[:, None] * cols + block_cols[None, :]
        down[:-1, :] = crossing(grid[ys, :], grid[ys + 1, :], ids, (rows - 1) * cols).reshape(rows - 1, cols)
    return shore, water_body, right, down


@struct.dataclass
class GameState:
    """Everything that changes during a game. P = number of players; arrays are indexed by owner id."""

    # The map's grids in the board layout (game/grid.py `board_layout`: tile (y, x) at (y + 1, x + 1),
    # zeros around), which the conquest reads and updates in place, so a tick never copies a whole grid.
    # Read them as `owner` and `frontier_age` (H x W views).
    board_owner: jax.Array  # uint8[H', W']: 0 unowned (or water, or off the map), 1..P player ids
    board_info: jax.Array  # uint8[H', W']: terrain and frontier age (grid.INFO_*)
    # A block's frontier ages are valid while its stamp equals `tick` (the conquest writes the ages of the
    # blocks it reads and stamps them tick + 1; older ages read as 0). One entry per block plus the empty
    # block (a board read by blocks), one (never stale) for a board read whole.
    age_stamp: jax.Array  # int32[blocks + 1] or int32[1]
    # The blocks a tick reads (game/blocks.py): the border list (rows 0, 1 by tick parity) and the lists of
    # a tick's later rounds; [1, 1], [1], [2, 1] placeholders for a board read whole.
    block_lists: jax.Array  # int32[rows, length]
    block_counts: jax.Array  # int32[rows]
    block_tags: jax.Array  # int32[2, blocks + 1]
    # The attacks whose frontier blocks are all on the frontier list (game/blocks.py): those that conquered
    # in the last tick's first round; none after tiles changed hands outside the conquest.
    frontier_pairs: jax.Array  # bool[P + 1, P + 1]
    troops: jax.Array  # float32[P + 1]: integer-valued (floored like the engine); slot 0 unused
    gold: jax.Array  # float32[P + 1]
    tiles: jax.Array  # int32[P + 1]: land tiles owned (slot 0: unowned land tiles)
    alive: jax.Array  # bool[P + 1]: spawned and owns tiles; slot 0 False
    kind: jax.Array  # int8[P + 1]: PlayerKind
    difficulty: jax.Array  # int8[P + 1]: Difficulty (nations; MEDIUM elsewhere)
    city_levels: jax.Array  # int32[P + 1]: summed levels of completed cities
    spawn: jax.Array  # int32[P + 1, 2]: spawn centre (y, x); -1 if not spawned
    attacks: jax.Array  # float32[P + 1, P + 1]: troops of attacker (row) against target (column, 0 = TN)
    orders: jax.Array  # float32[P + 1, P + 1]: attacks ordered this tick; launched at the tick's end
    retreat_timer: jax.Array  # int32[P + 1, P + 1]: ticks until a retreating attack's troops return; 0 none
    incoming: jax.Array  # float32[P + 1]: troops of attacks against each player (for the AI)
    focus: jax.Array  # float32[P + 1, 4]: (origin y, origin x, unit dy, unit dx) of a directed attack's
    #                   preferred direction (tiles within 45 degrees of it go first); zeros: no preference
    ai_rate: jax.Array  # int32[P + 1]: ticks between AI decisions
    ai_phase: jax.Array  # int32[P + 1]: the AI decides when tick % rate == phase
    ai_trigger: jax.Array  # float32[P + 1]: troop ratio above which it attacks players
    ai_reserve: jax.Array  # float32[P + 1]: troop ratio kept home when attacking players
    ai_expand: jax.Array  # float32[P + 1]: troop ratio kept home when expanding into unowned land
    ai_started: jax.Array  # bool[P + 1]: the AI has made its first decision
    structure_kind: jax.Array  # int8[S]: 0 empty, 1 city, 2 defense post (game/structures.py)
    structure_owner: jax.Array  # uint8[S]
    structure_pos: jax.Array  # int32[S, 2]: (y, x) tile
    structure_level: jax.Array  # int32[S]: city level (1 for defense posts)
    structure_ready: jax.Array  # int32[S]: tick at which construction completes
    # Transport boats (game/boats.py): BOATS_PER_PLAYER slots per player; a slot with troops 0 is free.
    boat_troops: jax.Array  # float32[P + 1, 3]: troops aboard
    boat_target: jax.Array  # int32[P + 1, 3]: owner id attacked on landing (0 = unowned land)
    boat_src: jax.Array  # int32[P + 1, 3]: flat tile index (y W + x) of the launch shore tile
    boat_dst: jax.Array  # int32[P + 1, 3]: flat tile index of the landing shore tile
    boat_launch: jax.Array  # int32[P + 1, 3]: tick of the launch
    boat_arrive: jax.Array  # int32[P + 1, 3]: tick of the landing (launch + water distance + 1)
    boat_order_troops: jax.Array  # float32[P + 1]: a boat ordered this tick (launched at the tick's end)
    boat_order_dst: jax.Array  # int32[P + 1]: its landing tile (flat index; -1 none)
    # A boat attack held at its beach (game/boats.py): attacks[a, t] takes only tiles within one tile of
    # beach_box[a, t] = (y0, x0, y1, x1), the landing tile(s) and the tiles it took since (map coordinates);
    # an empty box (y1 = -1) for an attack that pushes on the whole shared border.
    beach_box: jax.Array  # int32[P + 1, P + 1, 4]
    tick: jax.Array  # int32[]: ticks since the spawn phase ended
    winner: jax.Array  # int32[]: 0 while nobody has won
    key: jax.Array  # PRNG key
    height: int = struct.field(pytree_node=False, default=0)  # the map's H and W (static)
    width: int = struct.field(pytree_node=False, default=0)

    @property
    def num_players(self) -> int:
        return int(self.troops.shape[0]) - 1

    @property
    def owner(self) -> jax.Array:
        """uint8[..., H, W]: each tile's owner id (0 unowned or water)."""
        return self.board_owner[..., 1:self.height + 1, 1:self.width + 1]

    @property
    def frontier_age(self) -> jax.Array:
        """uint8[..., H, W]: ticks each tile has been on an attack's frontier, 0..15 (older counts as 15)."""
        age = self.board_info & INFO_AGE
        _, _, whole = board_layout(self.height, self.width)
        if not whole:  # blocks whose ages are stale (not stamped for this tick) read as 0
            block_rows, block_cols = block_counts(self.height, self.width)
            valid = self.age_stamp[..., :block_rows * block_cols] == jnp.asarray(self.tick)[..., None]
            valid = valid.reshape(*valid.shape[:-1], block_rows, 1, block_cols, 1)
            valid = jnp.broadcast_to(valid, (*valid.shape[:-4], block_rows, BLOCK, block_cols, BLOCK))
            valid = valid.reshape(*valid.shape[:-4], block_rows * BLOCK, block_cols * BLOCK)
            age = age[..., 1:block_rows * BLOCK + 1, 1:block_cols * BLOCK + 1] * valid
            return age[..., :self.height, :self.width].astype(jnp.uint8)
        return age[..., 1:self.height + 1, 1:self.width + 1]

    def owner_at(self, y: jax.Array, x: jax.Array) -> jax.Array:
        """uint8[...]: the owners of map tiles (y, x) (int arrays of one shape, inside the map), read from
        the board (a gather, no copy of the grid)."""
        return self.board_owner[y + 1, x + 1]

    def owner_of(self, index: jax.Array) -> jax.Array:
        """uint8[...]: the owners of map tiles given by flat index y W + x (inside the map)."""
        return self.owner_at(index // self.width, index % self.width)

    def board_index(self, index: jax.Array) -> jax.Array:
        """int32[...]: the place in the flattened board of map tiles given by flat index y W + x."""
        return (index // self.width + 1) * self.board_owner.shape[-1] + index % self.width + 1

    def with_owner(self, owner: jax.Array) -> GameState:
        """This state with the owner grid `owner` (uint8[H, W]), every frontier age 0 and its border list
        counted again (set-up only: whole-grid work)."""
        from jaxms.game.blocks import BlockLists, new_lists

        board = self.board_owner.at[..., 1:self.height + 1, 1:self.width + 1].set(owner.astype(jnp.uint8))
        info = self.board_info & ~jnp.uint8(INFO_AGE)
        lists = BlockLists(self.block_lists, self.block_counts, self.block_tags)
        lists = new_lists(board, info, self.height, self.width, 0, row=self.tick % 2, lists=lists)
        return self.replace(board_owner=board, board_info=info, block_lists=lists.ids,
                            block_counts=lists.count, block_tags=lists.tags,
                            frontier_pairs=jnp.zeros_like(self.frontier_pairs))
