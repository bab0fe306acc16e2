"""Observations of the agent's game: multi-scale (global, local, tactical views) or single-scale, in jit.

An observer is a small hashable object with:
- `space(map_shape)`: the `spaces.Dict` of one observation (`space(...).nbytes`: bytes per env);
- `init(game, arrays, mask) -> (obs, memory)`: the first observation of an episode and the memory (frame
  stack) it carries;
- `observe(game, arrays, mask, memory) -> (obs, memory)`: the observation after a step.
Everything is a pure function of the game state, so it runs inside jit and vmaps over environments.
`make_observer(obs, map_shape)` builds one sized for a map.

Views (`ObsConfig`; sizes are static, every map size works, non-square included):
- global (`global_size`^2): the whole map, one scale for both axes (aspect kept, the shorter axis centred
  with empty cells around it); a map smaller than the view is padded, never upsampled.
- local (`local_size`^2): a `local_view_size` window pooled down. Centre: the centroid of the agent's land
  inside the local-window-sized box holding most of it, found on the pooled global grid (box sums). For one
  blob this is its centroid; for a split territory it is the largest concentration, not the empty middle
  between the parts (the mean of all tiles). The centroid of the largest connected part would be exact
  but needs O(diameter) passes over the map per step: benchmarks/bench_obs.py times one at 1024x1024
  (~100 ms, 50+ sweeps, against < 1 ms for the box search).
- tactical (`tactical_size`^2, full resolution): on the border section that matters now. Which border: the
  front of the agent's largest running attack (agent tiles next to the target's land, 0 = unowned land) if
  the target touches the agent; else the border with the strongest touching enemy (most troops); else the
  border with unowned land. Which section: among regions about half a tactical window wide (global grid),
  the one holding most of that border; the window is centred on that border's tile nearest its centroid in
  the region (a small full-resolution crop), so it always contains agent border tiles. Without any border
  (an island, or dead): the nearest unowned land.
- single mode: the global view only (key "map"); features are the same as in multi mode (window positions
  included), so a single vs multi comparison differs only in the views.
Windows are `lax.dynamic_slice`s with static sizes, shifted back inside the map at its edges.

Cost: one pass builds a few per-tile grids (class bits, the neighbours' class bits, a per-owner lookup; 1-2
bytes a tile each); every view pools or crops them, and the window positions come from the pooled grid and
one small crop. At 1024x1024 on a 2-core CPU: 2-4 ms per env with warm caches, 5-10 ms right after a game
tick, 8-16% of the tick (about 22% with 8 envs); benchmarks/bench_obs.py. From 2048x2048 the whole map's
grids no longer fit in the CPU's caches, so the global view is made and pooled a band of rows at a time from
the game's board, and the windows' grids from crops of it (`_band_cells`; same values bit for bit): at
4096x4096 on one core, 65 -> 28 ms. Comments marked "XLA CPU" explain choices made for the compiler's CPU
code.

Channels (uint8 0..255, last axis). Per frame, oldest first: `stacked_channels` (default own, enemy); then
the other dynamic channels of the newest frame; then the static ones. Pooling per channel:
| channel           | value per tile                                      | pooling                      |
| own, enemy        | tile owned by the agent / by any other player       | area fraction (mean)         |
| unowned           | unowned land (water never counts)                   | area fraction (mean)         |
| own_troops        | the agent's troops / tiles, on its tiles (density)  | mean, then log scale (below) |
| enemy_troops      | owner's troops / owner's tiles, on enemy tiles      | mean of the log-scaled value |
| border            | agent tile 4-adjacent to unowned or enemy land      | area fraction (mean)         |
| own_structures,   | 255 completed city, 170 completed defense post,     | max over the tiles whose     |
|   enemy_structures|   85 under construction                             |   centre lies in the cell    |
| boats             | a boat in flight: 255 the agent's, 128 another's,   | max over the boats in the    |
|                   |   at its straight-line position src -> dst          |   cell                       |
| water (static)    | water tile (off-map padding is 0 in every channel)  | area fraction (mean)         |
| terrain (static)  | terrain class: plains 0, highland 0.5, mountain 1   | mean                         |
Area fractions are x 255, rounded, and any non-zero area shows as at least 1 (a 5-tile territory in a
32x32 cell of a 4096 map stays visible). Troop density d (troops per tile) is scaled as
255 * min(1, log(1 + d) / log(1 + 10,000)); own_troops is own fraction x scaled density (the agent's troops
are spread evenly over its tiles), enemy_troops the cell mean of the per-tile scaled density. The static
"terrain magnitude" channel uses the terrain class (MapArrays holds classes, not the 0..31 magnitude).

Features (float32, 18 per frame, frame-stacked like the maps: 18 x frame_stack), see FEATURE_NAMES:
 0 troops / max troops            1 log(1 + max troops) / log(1 + 1e8)
 2 troop growth per tile and tick, log(1 + g) / log(101)     3 land share (tiles / land tiles)
 4 share change since the last step, tanh(100 x change): 0.1% of the land -> 0.1, 1% -> 0.76
 5 rank by tiles, (rank - 1) / (players - 1): 0 first, 1 last (or dead)
 6 border pressure x / (1 + x), x = troops of attacks on the agent / its troops
 7 troops per tile, log-scaled like the troop channels        8 time used, tick / Rules.max_ticks, or
   the env's own clock when it passes `time` (a timed game: steps taken / steps allowed)
 9 distance from the local centre to the nearest enemy land (global grid), / map diagonal; 1 if none
 10 share of players alive       11 committed troops, attacking / (attacking + at home)
 12-15 local window centre (y / H, x / W), tactical window centre (y / H, x / W)
 16 troops at sea, on the agent's boats / (at sea + at home)
 17 boats coming for the agent x / (1 + x), x = their troops / the agent's troops
Window positions are per frame, so older frames of the moving local/tactical views can be placed.

Bytes per env (defaults: views 128 / 256->128 / 64, 4 frames, 2 stacked + 7 current + 2 static channels):
| view         | shape          | bytes   |
| global_map   | 128 x 128 x 17 | 278,528 |
| local_map    | 128 x 128 x 17 | 278,528 |
| tactical_map | 64 x 64 x 17   | 69,632  |
| features     | 72 float32     | 288     |
| action_mask  | 45 bool        | 45      |
| multi total  |                | 627,021 (21% of the earlier system's 2.9 MB float32; budget 737,280) |
| single total | map + features + mask | 278,861 |
Stacking all 9 dynamic channels would take 38 channels per view (1.4 MB per transition): over budget, and
the history of unowned land, own troops (a scalar feature) and the border follows from the stacked ones.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import jax
import jax.numpy as jnp

from jaxms.env import spaces
from jaxms.env.contract import (  # noqa: F401 (re-exported: the contract's names, where they are used)
    AGENT,
    BOAT_VALUES,
    CHANNELS,
    DYNAMIC_CHANNELS,
    FEATURE_NAMES,
    MAX_VIEW,
    MIN_VIEW,
    MODES,
    NUM_ACTIONS,
    NUM_FEATURES,
    STATIC_CHANNELS,
    STRUCTURE_VALUES,
    TRANSITION_BUDGET,
    ObsConfig,
)
from jaxms.env.views import AxisPlan, box_argmax, crop, fit_plans, pool_max, pool_sums, scatter_max
from jaxms.game import stats
from jaxms.game.grid import INFO_TERRAIN_SHIFT, first_argmin, select_lookup
from jaxms.game.loop import grow, max_troops
from jaxms.game.rules import Rules
from jaxms.game.state import GameState, MapArrays
from jaxms.game.structures import CITY, DEFENSE_POST

DENSITY_CAP = 10_000.0  # troops per tile at which the troop channels saturate (255)
MAX_TROOPS_SCALE = 1e8
GROWTH_SCALE = 100.0  # troops per tile and tick for the growth feature's log scale
WATER, OFF_MAP = 3, 255  # terrain class of water; terrain value of the padding around the map


# ---------------------------------------------------------------------------------------------------------
# Per-tile planes and per-player tables
# ---------------------------------------------------------------------------------------------------------


def density_scale(density: jax.Array) -> jax.Array:
    """float32 0..255: troops per tile on the log scale of the troop channels."""
    scaled = jnp.log1p(jnp.maximum(density, 0.0)) / math.log1p(DENSITY_CAP)
    return 255.0 * jnp.minimum(scaled, 1.0)


# Class bits of a tile (`_tile_grids`), the ones its neighbours are asked about.
UNOWNED_LAND, ENEMY_TILE, TARGET_LAND, AGENT_TILE = 1, 2, 4, 8


def _player_tables(game: GameState) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(lookup uint16[256] by owner id, the agent's scaled troop density float32[], attack target int32[]).

    lookup[owner] = (1 + strength rank) << 8 | scaled troop density, for living enemies (0 otherwise);
    strength ranks order enemies by troops (ties by id), the weakest 0. The attack target is the owner id
    (0 = unowned land) of the agent's largest running attack, or -1.
    """
    num_slots = game.troops.shape[0]
    slots = jnp.arange(num_slots)
    enemy = game.alive & (slots > AGENT)
    density = game.troops / jnp.maximum(game.tiles, 1).astype(jnp.float32)
    enemy_density = jnp.where(enemy, jnp.round(density_scale(density)), 0.0).astype(jnp.uint16)
    own_density = jnp.where(game.tiles[AGENT] > 0, density_scale(density[AGENT]), 0.0)
    weaker = (game.troops[None, :] < game.troops[:, None]) | (
        (game.troops[None, :] == game.troops[:, None]) & (slots[None, :] < slots[:, None]))
    rank = (weaker & enemy[None, :]).sum(axis=1)
    strength = jnp.where(enemy, jnp.minimum(1 + rank, 255), 0).astype(jnp.uint16)
    running = (game.attacks[AGENT] >= 1.0) & (slots != AGENT) & (game.alive | (slots == 0))
    target = jnp.where(running.any(), jnp.argmax(jnp.where(running, game.attacks[AGENT], -1.0)), -1)
    # A 256-entry table (every uint8 owner id) written by a scatter: XLA never fuses a scatter into its
    # consumers, so the table is computed once, not once per tile inside the gather that reads it.
    lookup = jnp.zeros(256, jnp.uint16).at[slots].set((strength << 8) | enemy_density)
    return lookup, own_density, target.astype(jnp.int32)


def _tile_grids(owner: jax.Array, terrain: jax.Array, lookup: jax.Array, target: jax.Array,
                num_slots: int = 256) -> dict[str, jax.Array]:
    """Full-resolution per-tile grids [H, W], computed once per step and cropped by every window:
    "classes" (uint8 class bits: UNOWNED_LAND, ENEMY_TILE, TARGET_LAND = land of the attack target,
    AGENT_TILE), "near_rows" / "near_cols" (uint8: OR of the class bits of the tiles above and below / left
    and right, and the tile's own; off the map counts as nothing), "looked" (uint16 lookup of the tile's
    owner, an id below `num_slots`) and "terrain".

    Each is materialised once (about 1-2 bytes a tile; the memory traffic is what costs at 1024x1024 and
    up). Neighbours come from two reduce_windows (bitwise OR over 3 tiles, padded with 0): no padded copy of
    the grid is made (XLA's CPU pad of a computed grid is unvectorised, ~20x slower).
    """
    land = terrain < WATER
    is_target = (owner == jnp.maximum(target, 0).astype(jnp.uint8)) & (target >= 0)
    classes = (jnp.where(land & (owner == 0), UNOWNED_LAND, 0) | jnp.where(owner > AGENT, ENEMY_TILE, 0)
               | jnp.where(land & is_target, TARGET_LAND, 0) | jnp.where(owner == AGENT, AGENT_TILE, 0)
               ).astype(jnp.uint8)
    zero = jnp.uint8(0)
    rows = jax.lax.reduce_window(classes, zero, jax.lax.bitwise_or, (3, 1), (1, 1), ((1, 1), (0, 0)))
    cols = jax.lax.reduce_window(classes, zero, jax.lax.bitwise_or, (1, 3), (1, 1), ((0, 0), (1, 1)))
    if num_slots <= 16:
        # A chain of selects: vector code, where a gather is scalar (1024x1024, 11 players, one core:
        # 0.20 ms against 0.39 ms; with 52 slots the chain is the slower, 1.0 ms).
        looked = select_lookup(lookup[:num_slots], owner)
    else:  # the gather reads a materialised table (see `_player_tables`) and is itself materialised
        looked = lookup[owner]
    return {"classes": classes, "near_rows": rows, "near_cols": cols, "looked": looked, "terrain": terrain}


def _slab_grids(owner: jax.Array, info: jax.Array, lookup: jax.Array, target: jax.Array, num_slots: int
                ) -> dict[str, jax.Array]:
    """`_tile_grids` of a slab of the board (`GameState.board_owner` / `board_info`, uint8[h + 2, w + 2]):
    the grids [h, w] of its inner tiles, the ring around them read as their neighbours (the board's zeros
    beyond the map are water with no owner, as `_tile_grids` reads off the map). The board's terrain bits
    give the terrain (water where they are 0). Made by `_tile_grids` on the whole slab: its reduce_windows
    keep the class grid materialised, where neighbours as shifted slices of it fused everything into one
    loop that XLA CPU ran as scalar code (22 against 2.9 ms for the observation at 1024, forced banded)."""
    code = info >> INFO_TERRAIN_SHIFT & 3  # terrain + 1 on land, 0 on water and off the map
    terrain = jnp.where(code > 0, code - 1, WATER).astype(jnp.uint8)
    grids = _tile_grids(owner, terrain, lookup, target, num_slots)
    return {name: grid[1:-1, 1:-1] for name, grid in grids.items()}


def _tile_planes(grids: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-tile planes [h, w] to pool, from `_tile_grids` (or a window of them).

    Flags (bool): own, enemy (any other player), unowned (land), border (agent tile next to unowned or enemy
    land), water, attack_front (agent tile next to the attack target's land), unowned_front (agent tile
    next to unowned land). Values: terrain (plains, water and off-map 0, highland 1, mountain 2),
    enemy_troops (uint8 scaled troop density of an enemy tile's owner) and contact_strength (uint8: 1 +
    strength rank of an enemy tile next to an agent tile, else 0).
    """
    classes, looked, terrain = grids["classes"], grids["looked"], grids["terrain"]
    # The tile's own bits are in `near` too: harmless, every test asks a neighbour for a class the tile
    # itself does not have.
    near = grids["near_rows"] | grids["near_cols"]
    mine = (classes & AGENT_TILE) > 0
    enemy = (classes & ENEMY_TILE) > 0
    return {
        "own": mine, "enemy": enemy, "unowned": (classes & UNOWNED_LAND) > 0,
        "border": mine & ((near & (UNOWNED_LAND | ENEMY_TILE)) > 0),
        "water": terrain == WATER, "attack_front": mine & ((near & TARGET_LAND) > 0),
        "unowned_front": mine & ((near & UNOWNED_LAND) > 0),
        "terrain": jnp.where(terrain < WATER, terrain, 0).astype(jnp.uint8),
        "enemy_troops": (looked & 255).astype(jnp.uint8),
        "contact_strength": jnp.where(enemy & ((near & AGENT_TILE) > 0), looked >> 8, 0).astype(jnp.uint8),
    }


def _near(owner: jax.Array, land: jax.Array, who: jax.Array) -> jax.Array:
    """bool[h, w]: a 4-neighbour inside the grid is land owned by `who` (for small crops)."""
    hit = jnp.pad((owner == who) & land, 1)
    return (hit[:-2, 1:-1] | hit[2:, 1:-1]) | (hit[1:-1, :-2] | hit[1:-1, 2:])


BANDED_MIN_TILES = 2048 * 2048  # maps this large pool their global view band by band (`_band_cells`)
BAND_TILES = 1 << 17  # tiles of a band: its per-tile grids, ~1 MB, stay in the cache

# Pooled planes with their largest tile value (it sizes the packed bit fields). The order groups the words
# (at 8x8 tiles a cell: the class planes in one, the terrain and troop planes in another), so each word's
# reduction reads only the grids it needs.
_VIEW_POOLED = (("own", 1), ("enemy", 1), ("unowned", 1), ("border", 1), ("water", 1), ("terrain", 2),
                ("enemy_troops", 255))
_GLOBAL_POOLED = (("own", 1), ("enemy", 1), ("unowned", 1), ("border", 1), ("attack_front", 1),
                  ("unowned_front", 1), ("water", 1), ("terrain", 2), ("enemy_troops", 255))


def _quantise(fraction: jax.Array) -> jax.Array:
    """uint8: round(255 x fraction) in 0..255, and at least 1 wherever the fraction is non-zero."""
    scaled = jnp.clip(jnp.round(255.0 * fraction), 1.0, 255.0)
    return jnp.where(fraction > 0, scaled, 0.0).astype(jnp.uint8)


def _structures(game: GameState, start: jax.Array, plan_y: AxisPlan, plan_x: AxisPlan) -> jax.Array:
    """uint8[cells_y, cells_x, 2]: max-pooled structure values (own, enemy) of a view whose window starts
    at map tile `start` (int32[2])."""
    shape = (plan_y.cells, plan_x.cells, 2)
    if game.structure_kind.shape[0] == 0:
        return jnp.zeros(shape, jnp.uint8)
    kind = game.structure_kind
    done = game.structure_ready <= game.tick
    value = jnp.where(kind == CITY, STRUCTURE_VALUES["city"],
                      jnp.where(kind == DEFENSE_POST, STRUCTURE_VALUES["defense_post"], 0))
    value = jnp.where(done | (value == 0), value, STRUCTURE_VALUES["building"])
    cy = plan_y.cell_of(game.structure_pos[:, 0] - start[0])
    cx = plan_x.cell_of(game.structure_pos[:, 1] - start[1])
    return scatter_max(cy, cx, (game.structure_owner != AGENT).astype(jnp.int32), value, shape)


def boat_positions(game: GameState, width: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(y, x float32[P + 1, 3], at sea bool[P + 1, 3]): where each boat is now, on the straight line from its
    launch tile to its landing tile at the share of the crossing done (the water path itself is not kept)."""
    at_sea = game.boat_troops > 0
    span = jnp.maximum(game.boat_arrive - game.boat_launch, 1).astype(jnp.float32)
    done = jnp.clip((game.tick - game.boat_launch).astype(jnp.float32) / span, 0.0, 1.0)
    sy, sx = game.boat_src // width, game.boat_src % width
    dy, dx = game.boat_dst // width, game.boat_dst % width
    return sy + (dy - sy) * done, sx + (dx - sx) * done, at_sea


def _boats(game: GameState, width: int, start: jax.Array, plan_y: AxisPlan, plan_x: AxisPlan) -> jax.Array:
    """uint8[cells_y, cells_x, 1]: boats in flight (own 255, enemy 128; max-pooled) in a view whose window
    starts at map tile `start`."""
    y, x, at_sea = boat_positions(game, width)
    mine = jnp.arange(game.boat_troops.shape[0])[:, None] == AGENT
    value = jnp.where(at_sea, jnp.where(mine, BOAT_VALUES["own"], BOAT_VALUES["enemy"]), 0).ravel()
    cy = plan_y.cell_of(jnp.floor(y).astype(jnp.int32).ravel() - start[0])
    cx = plan_x.cell_of(jnp.floor(x).astype(jnp.int32).ravel() - start[1])
    shape = (plan_y.cells, plan_x.cells, 1)
    cy = jnp.where(at_sea.ravel(), cy, -1)
    return scatter_max(cy, cx, jnp.zeros_like(cy), value, shape)


def _view(planes: dict[str, jax.Array], pooled_names, plan_y: AxisPlan, plan_x: AxisPlan,
          own_density: jax.Array, structures: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Pool tile planes into a view: (uint8[S, S, 11] channels in CHANNELS order, float32 pooled planes by
    name). `structures` holds the point channels (own and enemy structures, boats): uint8[S, S, 3]."""
    pooled = pool_sums([(planes[name], top) for name, top in pooled_names], plan_y, plan_x)
    return _channels(pooled, pooled_names, own_density, structures)


def _channels(pooled: jax.Array, pooled_names, own_density: jax.Array, structures: jax.Array
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A view's channels from its pooled planes (float32[S, S, len(pooled_names)]): see `_view`."""
    get = {name: pooled[..., i] for i, (name, _) in enumerate(pooled_names)}
    fractions = jnp.stack([get["own"], get["enemy"], get["unowned"], get["own"] * (own_density / 255.0),
                           get["enemy_troops"] / 255.0, get["border"], get["water"], get["terrain"] / 2.0],
                          axis=-1)
    quantised = _quantise(fractions)  # the CHANNELS order, structures (point features) apart
    return jnp.concatenate([quantised[..., :6], structures, quantised[..., 6:]], axis=-1), get


def _band_cells(plan_y: AxisPlan, plan_x: AxisPlan, window: int) -> int | None:
    """Cell rows per band when the global view is pooled band by band (`_banded_global`), else None.

    A large map's per-tile grids do not fit in the CPU's caches: made whole, each is written to memory and
    read back by the pooling (the observation at 4096x4096: ~65 ms, ~50 of them these grids). Made and
    pooled a band of `BAND_TILES` tiles at a time, they stay in the cache. Needs whole blocks of tiles a
    cell (`AxisPlan.block`), a map at least `BANDED_MIN_TILES` large and at least `window` (the largest
    window's side) a side; smaller maps pool the whole grids. On a CPU only: a GPU's memory bandwidth makes
    whole-map passes cheap, and a loop of small kernels is what it does worst (not measured there).
    """
    by, bx = plan_y.block, plan_x.block
    if (by is None or bx is None or plan_y.size * plan_x.size < BANDED_MIN_TILES
            or min(plan_y.size, plan_x.size) < window or jax.default_backend() != "cpu"):
        return None
    covered = plan_y.size // by
    cells = max(1, min(covered, BAND_TILES // (by * plan_x.size)))
    while covered % cells:
        cells -= 1
    return cells


def _banded_global(game: GameState, lookup: jax.Array, target: jax.Array, plan_y: AxisPlan, plan_x: AxisPlan,
                   band_cells: int) -> tuple[jax.Array, jax.Array]:
    """The global view's pooled planes (float32[S, S, len(_GLOBAL_POOLED)]) and pooled contact strength
    (uint8[S, S]), as `pool_sums` and `pool_max` of `_tile_planes` of the whole map give them, made band by
    band from the board (see `_band_cells`)."""
    height, width, by = plan_y.size, plan_x.size, plan_y.block
    rows = band_cells * by
    band_plan = AxisPlan(rows, band_cells, plan_y.scale)
    num_slots = game.troops.shape[0]

    def band(i, pooled):
        sums, strength = pooled
        # Board rows i * rows .. + rows + 1: the band's map rows and one more on each side.
        owner = jax.lax.dynamic_slice(game.board_owner, (i * rows, 0), (rows + 2, width + 2))
        info = jax.lax.dynamic_slice(game.board_info, (i * rows, 0), (rows + 2, width + 2))
        planes = _tile_planes(_slab_grids(owner, info, lookup, target, num_slots))
        band_sums = pool_sums([(planes[name], top) for name, top in _GLOBAL_POOLED], band_plan, plan_x)
        band_strength = pool_max(planes["contact_strength"], band_plan, plan_x)
        return (jax.lax.dynamic_update_slice(sums, band_sums, (i * band_cells, 0, 0)),
                jax.lax.dynamic_update_slice(strength, band_strength, (i * band_cells, 0)))

    covered = height // by
    sums = jnp.zeros((covered, plan_x.cells, len(_GLOBAL_POOLED)), jnp.float32)
    strength = jnp.zeros((covered, plan_x.cells), jnp.uint8)
    sums, strength = jax.lax.fori_loop(0, covered // band_cells, band, (sums, strength))
    pad = (plan_y.offset, plan_y.cells - plan_y.offset - covered)
    return jnp.pad(sums, (pad, (0, 0), (0, 0))), jnp.pad(strength, (pad, (0, 0)))


def _board_window(game: GameState, lookup: jax.Array, target: jax.Array, start: jax.Array, size: int
                  ) -> dict[str, jax.Array]:
    """`_window`'s grids of a window inside the map (`start` clamped, the map at least `size` a side), made
    from a crop of the board one tile larger each side (for the large maps of `_band_cells`)."""
    owner = jax.lax.dynamic_slice(game.board_owner, (start[0], start[1]), (size + 2, size + 2))
    info = jax.lax.dynamic_slice(game.board_info, (start[0], start[1]), (size + 2, size + 2))
    return _slab_grids(owner, info, lookup, target, game.troops.shape[0])


def _window(grids: dict[str, jax.Array], start: jax.Array, size: int
            ) -> tuple[dict[str, jax.Array], jax.Array]:
    """The `size` x `size` window of the per-tile grids at map tile `start` (clamped inside the map, or the
    map padded and centred when smaller: see `crop`; off the map is terrain OFF_MAP, nothing else), and
    where the window starts."""
    fills = {"terrain": OFF_MAP}
    window = {}
    for name, grid in grids.items():
        window[name], used = crop(grid, (start[0], start[1]), (size, size), fill=fills.get(name, 0))
    return window, used


# ---------------------------------------------------------------------------------------------------------
# The observer
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Observer:
    """Multi-scale or single-scale observations (by `config.mode`); see the module docstring.

    `rules` gives max troops and growth for the features (the env passes its own). The memory an env carries
    (`EnvState.memory`; not part of the observation) is {"frames": {view: uint8[S, S, K * Cs]} (the stacked
    channels of the last K frames, oldest first), "features": float32[K, 18], "share": float32[] (the land
    share of the last step, for the share change)}: 295,172 bytes per env at the defaults.
    """

    config: ObsConfig = ObsConfig.for_map(1024, 1024)
    rules: Rules = Rules()

    def __post_init__(self) -> None:
        if not self.config.complete:
            raise ValueError(f"Observer needs a config sized for a map, got {self.config}: use "
                             "make_observer(config, map_shape) or ObsConfig.sized(height, width)")

    def space(self, map_shape: tuple[int, int]) -> spaces.Dict:
        """Observation space; independent of the map (views are padded/pooled to static sizes)."""
        del map_shape
        c = self.config
        entries = {name: spaces.Box(0, 255, (side, side, c.num_channels), jnp.uint8)
                   for name, side in c.view_sizes.items()}
        entries["features"] = spaces.Box(-1.0, 1.0, (c.num_features,), jnp.float32)
        entries["action_mask"] = spaces.Box(0, 1, (NUM_ACTIONS,), jnp.bool_)
        return spaces.Dict(entries)

    def init(self, game: GameState, arrays: MapArrays, mask: jax.Array, time: jax.Array | None = None
             ) -> tuple[dict, dict]:
        """First observation of an episode: every frame of the stack is a copy of this one.

        `time` (float32[] in [0, 1], optional): the share of the game's time used, for the "time" feature;
        by default tick / Rules.max_ticks. An env whose episodes end at a step limit passes its own clock.
        """
        share = self._share(game, arrays)
        frame, features, _ = self._frame(game, arrays, share, time)
        k = self.config.frame_stack
        memory = {"frames": {name: jnp.concatenate([stacked] * k, axis=-1)
                             for name, (stacked, _) in frame.items()},
                  "features": jnp.broadcast_to(features, (k, NUM_FEATURES)),
                  "share": share}
        return self._assemble(frame, memory, mask), memory

    def observe(self, game: GameState, arrays: MapArrays, mask: jax.Array, memory: dict,
                time: jax.Array | None = None) -> tuple[dict, dict]:
        """Observation after a step: the newest frame enters the stack, the oldest leaves (`time`: see
        `init`)."""
        frame, features, _ = self._frame(game, arrays, memory["share"], time)
        width = len(self.config.stacked_channels)
        memory = {"frames": {name: jnp.concatenate([memory["frames"][name][..., width:], stacked], axis=-1)
                             for name, (stacked, _) in frame.items()},
                  "features": jnp.concatenate([memory["features"][1:], features[None]], axis=0),
                  "share": self._share(game, arrays)}
        return self._assemble(frame, memory, mask), memory

    def locate(self, game: GameState, arrays: MapArrays) -> dict[str, jax.Array]:
        """Where the windows are: int32[2] (y, x) map coordinates of the first tile of the local and tactical
        windows ("local_start", "tactical_start"), the tile the tactical window is centred on
        ("tactical_focus"), and the agent's attack target ("attack_target", -1 for none). For tests,
        rendering and debugging."""
        return self._frame(game, arrays, self._share(game, arrays))[2]

    # -----------------------------------------------------------------------------------------------------

    @staticmethod
    def _share(game: GameState, arrays: MapArrays) -> jax.Array:
        return stats.land_share(game, arrays, AGENT)

    def _assemble(self, frame: dict, memory: dict, mask: jax.Array) -> dict[str, jax.Array]:
        obs = {name: jnp.concatenate([memory["frames"][name], rest], axis=-1)
               for name, (_, rest) in frame.items()}
        obs["features"] = memory["features"].reshape(-1)
        obs["action_mask"] = mask
        return obs

    def _split(self, channels: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(stacked uint8[S, S, Cs], current + static uint8[S, S, C - Cs * K]) from uint8[S, S, 11] channels
        in CHANNELS order."""
        c = self.config
        stacked = [CHANNELS.index(n) for n in c.stacked_channels]
        rest = [CHANNELS.index(n) for n in c.current_channels + STATIC_CHANNELS]
        return channels[..., stacked], channels[..., rest]

    def _frame(self, game: GameState, arrays: MapArrays, previous_share: jax.Array,
               time: jax.Array | None = None):
        """One frame: ({view: (stacked, rest)}, features float32[18], window info)."""
        c = self.config
        height, width = arrays.shape
        lookup, own_density, target = _player_tables(game)
        # The map's terrain behind a barrier: with the map a constant of the program (a trainer's closure),
        # XLA would otherwise fold the pooling of its static planes at compile time, seconds per plane at
        # 1024x1024 and up (the env reset's compile 7.9 -> 13.7 s at 1024 once they had words of their own).
        owner, terrain = game.owner, jax.lax.optimization_barrier(arrays.terrain)

        # Full resolution: a few per-tile grids, then the whole map pooled (the global view); on a large map
        # band by band, and the windows' grids from crops of the board.
        plan_y, plan_x = fit_plans(height, width, c.global_size)
        points = self._points(game, jnp.zeros(2, jnp.int32), plan_y, plan_x)
        band_cells = _band_cells(plan_y, plan_x, max(c.local_view_size, c.tactical_size))
        if band_cells is None:
            grids = _tile_grids(owner, terrain, lookup, target, game.troops.shape[0])
            planes = _tile_planes(grids)
            global_channels, pooled = _view(planes, _GLOBAL_POOLED, plan_y, plan_x, own_density, points)
            strength = pool_max(planes["contact_strength"], plan_y, plan_x)

            def window_grids(start, size):
                return _window(grids, start, size)[0]
        else:
            sums, strength = _banded_global(game, lookup, target, plan_y, plan_x, band_cells)
            global_channels, pooled = _channels(sums, _GLOBAL_POOLED, own_density, points)

            def window_grids(start, size):
                return _board_window(game, lookup, target, start, size)

        # Window positions, from the pooled grid and one small crop.
        local_centre = self._local_centre(pooled["own"], plan_y, plan_x, height, width)
        focus = self._tactical_focus(owner, terrain, lookup, target, pooled, strength, plan_y, plan_x,
                                     local_centre)
        local_size, tactical = c.local_view_size, c.tactical_size
        local_start = _clamped(jnp.round(local_centre - local_size / 2).astype(jnp.int32), (height, width),
                               local_size)
        tactical_start = _clamped(focus - tactical // 2, (height, width), tactical)
        if c.mode == "single":
            frame = {"map": self._split(global_channels)}
        else:
            frame = {"global_map": self._split(global_channels)}
            local_plan = AxisPlan(local_size, c.local_size, Fraction(local_size, c.local_size))
            tactical_plan = AxisPlan(tactical, tactical, Fraction(1))
            for name, start, size, plan in (("local_map", local_start, local_size, local_plan),
                                            ("tactical_map", tactical_start, tactical, tactical_plan)):
                planes = _tile_planes(window_grids(start, size))
                channels, _ = _view(planes, _VIEW_POOLED, plan, plan, own_density,
                                    self._points(game, start, plan, plan))
                frame[name] = self._split(channels)

        shape = jnp.asarray([height, width], jnp.float32)
        positions = jnp.concatenate([(local_start + local_size / 2) / shape,
                                     (tactical_start + tactical / 2) / shape])
        threat = _threat_distance(pooled["enemy"], plan_y, plan_x, local_centre, height, width)
        features = self._features(game, arrays, previous_share, threat, positions, time)
        info = {"local_start": local_start, "tactical_start": tactical_start, "tactical_focus": focus,
                "attack_target": target}
        return frame, features, info

    @staticmethod
    def _points(game: GameState, start: jax.Array, plan_y: AxisPlan, plan_x: AxisPlan) -> jax.Array:
        """uint8[cells_y, cells_x, 3]: the point channels (own, enemy structures; boats) of a view."""
        width = game.owner.shape[1]
        return jnp.concatenate([_structures(game, start, plan_y, plan_x),
                                _boats(game, width, start, plan_y, plan_x)], axis=-1)

    def _local_centre(self, own: jax.Array, plan_y: AxisPlan, plan_x: AxisPlan, height: int, width: int
                      ) -> jax.Array:
        """float32[2] (y, x): centroid of the agent's land inside the local-window-sized box (on the global
        grid, own area fractions [G, G]) that holds most of it; the map centre if the agent has no land."""
        cells = max(1, min(own.shape[0], round(self.config.local_view_size / float(plan_y.scale))))
        corner, _ = box_argmax(own, cells)
        rows = jnp.arange(own.shape[0])
        cols = jnp.arange(own.shape[1])
        inside = (((rows >= corner[0]) & (rows < corner[0] + cells))[:, None]
                  & ((cols >= corner[1]) & (cols < corner[1] + cells))[None, :])
        weight = jnp.where(inside, own, 0.0)
        total = weight.sum()
        cy = (weight.sum(axis=1) * rows).sum() / jnp.maximum(total, 1e-9)
        cx = (weight.sum(axis=0) * cols).sum() / jnp.maximum(total, 1e-9)
        centre = jnp.stack([plan_y.cell_centre(cy), plan_x.cell_centre(cx)])
        return jnp.where(total > 0, centre, jnp.asarray([height / 2, width / 2], jnp.float32))

    def _tactical_focus(self, owner, terrain, lookup, target, pooled, strength, plan_y, plan_x, local_centre
                        ) -> jax.Array:
        """int32[2] (y, x): the tile the tactical window is centred on (see the module docstring).

        Which border: the attack front if the agent's attack target touches it; else the border with the
        strongest touching enemy; else the border with unowned land. Which section of it: the region (about
        half a tactical window, in global cells) holding most of that border; then, at full resolution in a
        small crop around the region, the border tile of that kind nearest their centroid.
        """
        scale = float(plan_y.scale)
        region = max(1, min(strength.shape[0], round(self.config.tactical_size / (2 * scale))))
        attack = pooled["attack_front"].max() > 0
        strongest = strength.max()
        versus_enemy = ~attack & (strongest > 0)
        score = jnp.where(attack, pooled["attack_front"],
                          jnp.where(versus_enemy, (strength == strongest).astype(jnp.float32),
                                    pooled["unowned_front"]))
        who = jnp.where(attack, jnp.maximum(target, 0),
                        jnp.where(versus_enemy, jnp.argmax((lookup >> 8) == strongest), 0))
        corner, _ = box_argmax(score, region)
        # The region's tiles plus one on each side (an agent tile next to an enemy tile of the region).
        span = math.ceil(region * scale) + 3
        start = jnp.stack([plan_y.tile_start(corner[0]), plan_x.tile_start(corner[1])]) - 1
        window_owner, used = crop(owner, (start[0], start[1]), (span, span), fill=0)
        window_terrain, _ = crop(terrain, (start[0], start[1]), (span, span), fill=OFF_MAP)
        chosen = (window_owner == AGENT) & _near(window_owner, window_terrain < WATER, who.astype(jnp.uint8))
        ys = jnp.arange(span, dtype=jnp.float32)[:, None]
        xs = jnp.arange(span, dtype=jnp.float32)[None, :]
        count = jnp.maximum(chosen.sum(), 1)
        cy, cx = (chosen * ys).sum() / count, (chosen * xs).sum() / count
        nearest = first_argmin(jnp.where(chosen, (ys - cy) ** 2 + (xs - cx) ** 2, jnp.inf))
        tile = used + jnp.stack([nearest // span, nearest % span]).astype(jnp.int32)
        # No border at all (an island, or dead): the nearest unowned land on the global grid, else the
        # local centre.
        unowned = pooled["unowned"] > 0
        cell_y = plan_y.cell_centre(jnp.arange(unowned.shape[0]))[:, None]
        cell_x = plan_x.cell_centre(jnp.arange(unowned.shape[1]))[None, :]
        far = jnp.where(unowned, (cell_y - local_centre[0]) ** 2 + (cell_x - local_centre[1]) ** 2, jnp.inf)
        flat = first_argmin(far)
        land = jnp.stack([cell_y[flat // unowned.shape[1], 0], cell_x[0, flat % unowned.shape[1]]])
        fallback = jnp.floor(jnp.where(unowned.any(), land, local_centre)).astype(jnp.int32)
        return jnp.where(chosen.any(), tile, fallback)

    def _features(self, game: GameState, arrays: MapArrays, previous_share: jax.Array, threat: jax.Array,
                  positions: jax.Array, time: jax.Array | None = None) -> jax.Array:
        """float32[18], see FEATURE_NAMES and the module docstring."""
        troops = game.troops[AGENT]
        tiles = game.tiles[AGENT].astype(jnp.float32)
        cap = max_troops(game, self.rules)[AGENT]
        growth = grow(game, self.rules).troops[AGENT] - troops
        share = self._share(game, arrays)
        others = jnp.arange(game.tiles.shape[0]) > AGENT
        num_players = game.tiles.shape[0] - 1
        rank = stats.rank(game, AGENT)
        incoming = jnp.where(game.alive & others, game.attacks[:, AGENT], 0.0).sum()
        pressure = incoming / jnp.maximum(troops, 1.0)
        outgoing = game.attacks[AGENT].sum()
        at_sea = game.boat_troops[AGENT].sum()
        boats_on_me = jnp.where((game.boat_target == AGENT) & others[:, None], game.boat_troops, 0.0).sum()
        boats_on_me = boats_on_me / jnp.maximum(troops, 1.0)
        features = jnp.concatenate([jnp.stack([
            troops / jnp.maximum(cap, 1.0),
            jnp.log1p(cap) / math.log1p(MAX_TROOPS_SCALE),
            jnp.log1p(jnp.maximum(growth, 0.0) / jnp.maximum(tiles, 1.0)) / math.log1p(GROWTH_SCALE),
            share,
            jnp.tanh(100.0 * (share - previous_share)),
            (rank - 1.0) / max(num_players - 1, 1),
            pressure / (1.0 + pressure),
            density_scale(troops / jnp.maximum(tiles, 1.0)) / 255.0 * (tiles > 0),
            game.tick / self.rules.max_ticks if time is None else time,
            threat,
            game.alive.sum() / num_players,
            outgoing / jnp.maximum(outgoing + troops, 1.0),
        ]), positions, jnp.stack([at_sea / jnp.maximum(at_sea + troops, 1.0),
                                  boats_on_me / (1.0 + boats_on_me)])])
        return jnp.clip(features, -1.0, 1.0).astype(jnp.float32)


def _clamped(start: jax.Array, shape: tuple[int, int], size: int) -> jax.Array:
    """Window start as `crop` would use it: clamped inside the map, or centring a map smaller than `size`."""
    return jnp.stack([jnp.clip(start[i], 0, shape[i] - size) if shape[i] >= size else
                      jnp.int32(-((size - shape[i]) // 2)) for i in range(2)]).astype(jnp.int32)


def _threat_distance(enemy: jax.Array, plan_y: AxisPlan, plan_x: AxisPlan, centre: jax.Array, height: int,
                     width: int) -> jax.Array:
    """Distance from `centre` to the nearest global cell holding enemy land, / map diagonal (1 if none)."""
    cell_y = plan_y.cell_centre(jnp.arange(enemy.shape[0]))[:, None]
    cell_x = plan_x.cell_centre(jnp.arange(enemy.shape[1]))[None, :]
    squared = jnp.where(enemy > 0, (cell_y - centre[0]) ** 2 + (cell_x - centre[1]) ** 2, jnp.inf)
    distance = jnp.sqrt(squared.min()) / math.hypot(height, width)
    return jnp.minimum(distance, 1.0)


def make_observer(obs: str | ObsConfig, map_shape: tuple[int, int], rules: Rules = Rules(), **overrides
                  ) -> Observer:
    """An `Observer` for maps of `map_shape` from a mode name ("multi" / "single") or a config, its unset
    view sizes chosen for the map (`ObsConfig.sized`); `overrides` replace config fields (e.g.
    local_view_size=512)."""
    if isinstance(obs, str):
        obs = ObsConfig(mode=obs)  # raises for an unknown mode, naming the accepted ones
    if not isinstance(obs, ObsConfig):
        raise ValueError(f"obs must be one of {', '.join(MODES)} or an ObsConfig, got {obs!r}")
    config = dataclasses.replace(obs, **overrides) if overrides else obs
    return Observer(config.sized(*map_shape), rules)
