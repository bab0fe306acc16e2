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

from jaxms.game.rules import Rules
from jaxms.maps import GameMap


@struct.dataclass
class MapArrays:
    """A map's static arrays for the simulation (arguments of jitted functions, never constants)."""

    land: jax.Array  # bool[H, W]
    terrain: jax.Array  # uint8[H, W]: 0 plains, 1 highland, 2 mountain, 3 water
    spawnable: jax.Array  # bool[H, W]: all 52 tiles of the spawn disk centred here are land
    num_land_tiles: jax.Array  # int32[]

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
    return MapArrays(
        land=jnp.asarray(game_map.land),
        terrain=jnp.asarray(game_map.terrain),
        spawnable=jnp.asarray(disk_land == len(offsets)),
        num_land_tiles=jnp.asarray(game_map.num_land_tiles, dtype=jnp.int32),
    )


@struct.dataclass
class GameState:
    """Everything that changes during a game. P = number of players; arrays are indexed by owner id."""

    owner: jax.Array  # uint8[H, W]: 0 unowned (or water), 1..P player ids
    frontier_age: jax.Array  # uint8[H, W]: ticks the tile has been on an attack's frontier (saturates)
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
    tick: jax.Array  # int32[]: ticks since the spawn phase ended
    winner: jax.Array  # int32[]: 0 while nobody has won
    key: jax.Array  # PRNG key

    @property
    def num_players(self) -> int:
        return int(self.troops.shape[0]) - 1
