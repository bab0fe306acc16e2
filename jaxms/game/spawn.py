"""Setting up a game: players, spawn disks, starting troops, bot constants (engine §3, §7)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxms.game.blocks import new_lists
from jaxms.game.boats import empty_boats
from jaxms.game.grid import board_info, hash_bits, stamp_size, to_board
from jaxms.game.rules import Difficulty, PlayerKind, Rules
from jaxms.game.state import GameState, MapArrays, map_arrays
from jaxms.maps import GameMap

KIND_NAMES = {"human": PlayerKind.HUMAN, "agent": PlayerKind.HUMAN, "tribe": PlayerKind.TRIBE,
              "bot": PlayerKind.TRIBE, "nation": PlayerKind.NATION}
MAX_PLAYERS = 254


def spawn_distance(num_land_tiles: int, num_players: int, rules: Rules = Rules()) -> int:
    """Minimum Manhattan distance between random spawn centres.

    The engine's 30 is for maps of a million tiles; on small maps it would leave no room, so it shrinks
    with the land per player (0.7 sqrt(land / players)), never below 9 (two spawn disks then cannot touch).
    """
    room = int(0.7 * np.sqrt(num_land_tiles / max(num_players, 1)))
    return int(np.clip(room, 9, rules.spawn_min_distance))


def _parse_kinds(kinds: Sequence[str | int]) -> np.ndarray:
    parsed = []
    for kind in kinds:
        if isinstance(kind, str):
            if kind.lower() not in KIND_NAMES:
                raise ValueError(f"unknown player kind {kind!r}: accepted kinds are {', '.join(KIND_NAMES)}")
            parsed.append(KIND_NAMES[kind.lower()])
        else:
            parsed.append(PlayerKind(int(kind)))
    if not 1 <= len(parsed) <= MAX_PLAYERS:
        raise ValueError(f"a game needs 1 to {MAX_PLAYERS} players, got {len(parsed)}")
    return np.array([PlayerKind.NONE, *parsed], dtype=np.int8)


def new_game(key: jax.Array, game_map: GameMap | MapArrays, kinds: Sequence[str | int],
             spawns: Sequence[tuple[int, int] | None] | None = None,
             difficulty: Difficulty | int = Difficulty.MEDIUM, rules: Rules = Rules()) -> GameState:
    """A game right after the spawn phase.

    Args:
        kinds: one entry per player ("human", "tribe", "nation" or a PlayerKind); player ids are 1, 2, ...
        spawns: per player an (x, y) spawn centre, or None for a random spawn by the engine's rules (land,
            unowned, all 52 disk tiles land, far enough from other spawns: see `spawn_distance`).
        difficulty: the nations' difficulty.
    """
    arrays = map_arrays(game_map, rules) if isinstance(game_map, GameMap) else game_map
    kind = _parse_kinds(kinds)
    num_players = len(kind) - 1
    spawns = list(spawns) if spawns is not None else [None] * num_players
    if len(spawns) != num_players:
        raise ValueError(f"got {len(spawns)} spawns for {num_players} players")
    height, width = arrays.shape
    centres = np.full((num_players + 1, 2), -1, dtype=np.int32)
    for player, spawn in enumerate(spawns, start=1):
        if spawn is not None:
            x, y = (int(v) for v in spawn)
            if not (0 <= x < width and 0 <= y < height):
                raise ValueError(f"spawn ({x}, {y}) of player {player} is outside the {width}x{height} map")
            if not bool(arrays.land[y, x]):
                raise ValueError(f"spawn ({x}, {y}) of player {player} is on water")
            centres[player] = (y, x)
    distance = spawn_distance(int(arrays.num_land_tiles), num_players, rules)
    return make_game(key, arrays, jnp.asarray(kind), jnp.asarray(centres), jnp.int8(difficulty),
                     distance=distance, num_structures=structure_capacity(kind, rules), rules=rules)


def structure_capacity(kind: np.ndarray, rules: Rules = Rules()) -> int:
    """Structure slots of a game with players `kind` (int8[P + 1]): `structures_per_nation` per nation."""
    return rules.structures_per_nation * int(np.sum(np.asarray(kind) == PlayerKind.NATION))


@partial(jax.jit, static_argnames=("num_structures", "rules"))
def make_game(key: jax.Array, arrays: MapArrays, kind: jax.Array, centres: jax.Array, difficulty: jax.Array,
              *, distance: int | jax.Array, num_structures: int, rules: Rules) -> GameState:
    """`new_game` inside jit: players `kind` int8[P + 1], fixed centres int32[P + 1, 2] ((y, x), -1 for a
    random spawn), the nations' difficulty, the spawn spacing (int32[], an argument: it follows the map's
    land, and maps of one shape share a compiled reset); structure slots are static."""
    num_slots = kind.shape[0]
    height, width = arrays.shape
    ys = jnp.arange(height, dtype=jnp.float32)[:, None]
    xs = jnp.arange(width, dtype=jnp.float32)[None, :]
    index = jnp.arange(height * width, dtype=jnp.uint32).reshape(height, width)
    key, spawn_key, ai_key = jax.random.split(key, 3)
    spawn_seeds = jax.random.bits(spawn_key, (num_slots,), jnp.uint32)

    def place(player, carry):
        owner, centres = carry
        fixed = centres[player, 0] >= 0
        # A random centre: spawnable, unowned, and far (Manhattan) from every centre placed so far.
        placed = (centres[:, 0] >= 0)[:, None, None]
        manhattan = (jnp.abs(ys[None] - centres[:, 0, None, None])
                     + jnp.abs(xs[None] - centres[:, 1, None, None]))
        far = jnp.all(~placed | (manhattan >= distance), axis=0)
        valid = arrays.spawnable & (owner == 0) & far
        score = jnp.where(valid, (hash_bits(spawn_seeds[player], index) >> 1).astype(jnp.int32), -1)
        choice = jnp.argmax(score.ravel())
        found = score.ravel()[choice] >= 0
        random_centre = jnp.stack([choice // width, choice % width]).astype(jnp.int32)
        centre = jnp.where(fixed, centres[player], jnp.where(found, random_centre, -1))
        cy, cx = centre[0].astype(jnp.float32), centre[1].astype(jnp.float32)
        disk = (xs - cx + 0.5) ** 2 + (ys - cy + 0.5) ** 2 <= rules.spawn_disk_radius_sq
        claim = disk & arrays.land & (owner == 0) & (centre[0] >= 0) & (kind[player] != PlayerKind.NONE)
        return jnp.where(claim, player, owner).astype(jnp.uint8), centres.at[player].set(centre)

    owner, centres = jax.lax.fori_loop(1, num_slots, place,
                                       (jnp.zeros((height, width), jnp.uint8), centres))
    tiles, alive = _territory_counts(owner, kind, arrays.num_land_tiles)
    nation_troops = jnp.asarray(rules.start_troops_nation, jnp.float32)[difficulty]
    troops = jnp.select([kind == PlayerKind.HUMAN, kind == PlayerKind.TRIBE, kind == PlayerKind.NATION],
                        [rules.start_troops_human, rules.start_troops_tribe, nation_troops], 0.0)

    # Bot constants (§7): decision interval and phase, and the troop ratios that steer their attacks.
    keys = jax.random.split(ai_key, 5)
    nation_rates = jnp.asarray([[65, 80], [55, 70], [45, 60], [30, 50]], jnp.int32)[difficulty]
    low = jnp.where(kind == PlayerKind.NATION, nation_rates[0], 40)
    high = jnp.where(kind == PlayerKind.NATION, nation_rates[1], 80)
    rate = jax.random.randint(keys[0], (num_slots,), low, high)
    phase = jax.random.randint(keys[1], (num_slots,), 0, 1 << 30) % rate
    uniform = partial(jax.random.uniform, shape=(num_slots,))
    zeros_pp = jnp.zeros((num_slots, num_slots), jnp.float32)
    board = to_board(owner, height, width)
    info = to_board(board_info(arrays.land, arrays.terrain), height, width)
    lists = new_lists(board, info, height, width, rules.conquest_substeps)
    return GameState(
        board_owner=board,
        board_info=info,
        age_stamp=jnp.zeros(stamp_size(height, width), jnp.int32),
        block_lists=lists.ids,
        block_counts=lists.count,
        block_tags=lists.tags,
        frontier_pairs=jnp.zeros((num_slots, num_slots), bool),
        height=height,
        width=width,
        troops=jnp.where(alive, troops, 0.0),
        gold=jnp.zeros(num_slots, jnp.float32),
        tiles=tiles,
        alive=alive,
        kind=kind,
        difficulty=jnp.full(num_slots, difficulty, jnp.int8),
        city_levels=jnp.zeros(num_slots, jnp.int32),
        spawn=centres,
        attacks=zeros_pp,
        orders=zeros_pp,
        retreat_timer=jnp.zeros((num_slots, num_slots), jnp.int32),
        incoming=jnp.zeros(num_slots, jnp.float32),
        focus=jnp.zeros((num_slots, 4), jnp.float32),
        structure_kind=jnp.zeros(num_structures, jnp.int8),
        structure_owner=jnp.zeros(num_structures, jnp.uint8),
        structure_pos=jnp.zeros((num_structures, 2), jnp.int32),
        structure_level=jnp.zeros(num_structures, jnp.int32),
        structure_ready=jnp.zeros(num_structures, jnp.int32),
        **empty_boats(num_slots),
        ai_rate=rate.astype(jnp.int32),
        ai_phase=phase.astype(jnp.int32),
        ai_trigger=uniform(keys[2], minval=0.5, maxval=0.6),
        ai_reserve=uniform(keys[3], minval=0.3, maxval=0.4),
        ai_expand=uniform(keys[4], minval=0.1, maxval=0.2),
        ai_started=jnp.zeros(num_slots, bool),
        tick=jnp.int32(0),
        winner=jnp.int32(0),
        key=key,
    )


def _territory_counts(owner: jax.Array, kind: jax.Array, num_land_tiles: jax.Array
                      ) -> tuple[jax.Array, jax.Array]:
    """(tiles int32[P + 1], alive bool[P + 1]) of an owner grid whose water tiles are 0.

    Slot 0 counts the unowned land tiles (conquest keeps it up to date like any other slot).
    """
    tiles = jnp.bincount(owner.ravel().astype(jnp.int32), length=kind.shape[0])
    tiles = tiles.at[0].set(num_land_tiles - tiles[1:].sum()).astype(jnp.int32)
    return tiles, (tiles > 0) & (kind != PlayerKind.NONE)


def launch_attack(state: GameState, attacker: int | jax.Array, target: int | jax.Array,
                  troops: float | jax.Array) -> GameState:
    """Order `attacker` to attack `target` (0 = unowned land) with `troops`; launched at the next tick's end.

    Like the engine's intents: troops leave after that tick's growth and conquest starts the tick after.
    Use `launch_orders` to launch at once (the last spawn-phase tick of a scenario).
    """
    return state.replace(orders=state.orders.at[attacker, target].add(jnp.floor(troops)))


def retreat(state: GameState, attacker: int | jax.Array, target: int | jax.Array, rules: Rules = Rules()
            ) -> GameState:
    """Order the attack of `attacker` on `target` to retreat: it stops now, its troops return later."""
    running = (state.attacks[attacker, target] > 0) & (state.retreat_timer[attacker, target] == 0)
    timer = jnp.where(running, rules.retreat_ticks, state.retreat_timer[attacker, target])
    return state.replace(retreat_timer=state.retreat_timer.at[attacker, target].set(timer))


def set_territory(state: GameState, owner: jax.Array | np.ndarray, arrays: MapArrays,
                  troops: Sequence[float] | jax.Array | None = None) -> GameState:
    """A scenario position: `owner` (uint8[H, W], water must be 0) replaces the territory; tile counts and
    alive flags are recomputed; `troops` (per player id 1..P) replaces the players' troops if given."""
    owner = jnp.where(arrays.land, jnp.asarray(owner, jnp.uint8), 0).astype(jnp.uint8)
    tiles, alive = _territory_counts(owner, state.kind, arrays.num_land_tiles)
    new_troops = state.troops if troops is None else jnp.concatenate(
        [jnp.zeros(1, jnp.float32), jnp.asarray(troops, jnp.float32)])
    return state.with_owner(owner).replace(tiles=tiles, alive=alive, troops=new_troops)
