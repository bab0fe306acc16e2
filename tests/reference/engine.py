"""A slow, tile-by-tile reference implementation of OpenFront's land game (no JAX).

This is the ground truth that the vectorised JAX rules are compared against. It follows the mechanics
written up in ``shared/reference/openfront-rules.md`` (sections 1-5, 7, 8) one tile at a time, with a
real binary heap per attack, so that every rule is easy to read and check. It is calibrated against traces
of the real engine (``shared/reference/engine-traces``): troop growth matches them to the troop and
expansion to within a few percent (see ``test_reference_engine.py`` for the measured gaps).

What is modelled: spawning (the 52-tile disk; random spawns for tribes), troop growth and gold, land
attacks with the per-attack priority heap and per-tick budget, cancelling and merging of attacks,
annihilation of players below 100 tiles, retreats, the win check, city levels (as a per-player number),
defense posts (as points), the tribe AI, and transport boats (launch from the attacker's shore tile with
the shortest exact water path, one tile per tick by BFS distance, landing that conquers its tile and
starts an attack seeded at the landing only, 25% lost landing on one's own tile, at most 3 per player).
What is not: nukes and fallout, alliances and traitors, spawn immunity, enclave annexation, nation AI.

Coordinates are ``(x, y)`` with ``x`` the column; tiles are flat indices ``y * width + x``.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

PlayerKind = Literal["human", "tribe", "nation"]
Difficulty = Literal["easy", "medium", "hard", "impossible"]

# ----------------------------------------------------------------------------------------------------------
# Constants of the rules (April 2026 balance), named after what they do.
# ----------------------------------------------------------------------------------------------------------

PLAINS, HIGHLAND, MOUNTAIN = 0, 1, 2
HIGHLAND_MIN_MAGNITUDE = 10
MOUNTAIN_MIN_MAGNITUDE = 20
# Per terrain class: troops an attacker loses per tile ("mag"), budget a tile consumes ("speed"), and the
# weight g that makes rough tiles come later out of an attack's priority heap.
TERRAIN_LOSS = (80.0, 100.0, 120.0)
TERRAIN_COST = (16.5, 20.0, 25.0)
TERRAIN_PRIORITY_WEIGHT = (1.0, 1.5, 2.0)

START_TROOPS = {"human": 25_000, "tribe": 10_000}
NATION_START_TROOPS = {"easy": 12_500, "medium": 18_750, "hard": 25_000, "impossible": 31_250}
NATION_MAX_TROOPS_FACTOR = {"easy": 0.5, "medium": 0.75, "hard": 1.0, "impossible": 1.25}
NATION_GROWTH_FACTOR = {"easy": 0.9, "medium": 0.95, "hard": 1.0, "impossible": 1.05}
TRIBE_MAX_TROOPS_DIVISOR = 3.0
TRIBE_GROWTH_FACTOR = 0.6
CITY_MAX_TROOPS_PER_LEVEL = 250_000
GOLD_PER_TICK = {"human": 100, "nation": 100, "tribe": 50}

SPAWN_DISK_RADIUS_SQ = 16.0  # (x - cx + 0.5)^2 + (y - cy + 0.5)^2 <= 16: an 8x8 square less its corners
RANDOM_SPAWN_TRIES = 1000
RANDOM_SPAWN_MIN_MANHATTAN = 30

ANNIHILATION_TILES = 100  # a player attacked down below this many tiles is conquered outright
ANNIHILATION_PASSES = 10
RETREAT_DELAY_TICKS = 20
RETREAT_KEEP_VS_PLAYER = 0.75  # a retreat from a player costs 25% of the attack's troops
HEAP_SEED = 123  # every engine attack seeds its priority/budget generator with this constant
BUDGET_JITTER_MAX = 4  # r = U{0..4} added to the border size each tick
PRIORITY_BASE_MIN, PRIORITY_BASE_MAX = 10, 16

LARGE_ATTACKER_TILES = 100_000
LARGE_ATTACKER_LOSS_EXPONENT = 0.35
LARGE_ATTACKER_COST_EXPONENT = 0.6
LARGE_DEFENDER_MIDPOINT = 150_000.0
LARGE_DEFENDER_RATE = math.log(2.0) / 50_000.0
DEFENSE_POST_RADIUS = 30.0
DEFENSE_POST_LOSS_FACTOR = 5.0
DEFENSE_POST_COST_FACTOR = 3.0
HUMAN_VS_TRIBE_LOSS_FACTOR = 0.8

BOATS_PER_PLAYER = 3
BOAT_RETREAT_KEEP = 0.75  # a boat landing on its owner's own tile brings 75% of its troops home

WIN_CHECK_INTERVAL = 10
WIN_LAND_SHARE = 0.8

TRIBE_ATTACK_RATE_RANGE = (40, 80)  # ticks between decisions, drawn per tribe from [40, 80)
TRIBE_TRIGGER_RANGE = (0.50, 0.60)
TRIBE_RESERVE_RANGE = (0.30, 0.40)
TRIBE_EXPAND_RANGE = (0.10, 0.20)
TRIBE_SKIP_HUMAN_PROBABILITY = 0.5


def terrain_class(magnitude: np.ndarray) -> np.ndarray:
    """Terrain class per tile from the map's magnitude bits.

    Args:
        magnitude: uint8 array of any shape, values 0..31.
    Returns:
        uint8 array of the same shape: 0 plains (<10), 1 highland (10..19), 2 mountain (>=20).
    """
    magnitude = np.asarray(magnitude)
    return (magnitude >= HIGHLAND_MIN_MAGNITUDE).astype(np.uint8) + (
        magnitude >= MOUNTAIN_MIN_MAGNITUDE
    ).astype(np.uint8)


def load_openfront_map(path: str | Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode an OpenFront ``map*.bin`` file (one byte per tile, row-major).

    Args:
        path: the ``.bin`` file.
        width, height: its size in tiles (from the map's ``manifest.json``).
    Returns:
        ``(land, magnitude)``: bool (H, W) from bit 7 and uint8 (H, W) from bits 0-4.
    """
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size != width * height:
        raise ValueError(f"{path}: {raw.size} bytes, expected width*height = {width}*{height}")
    grid = raw.reshape(height, width)
    return (grid & 0x80) != 0, (grid & 0x1F).astype(np.uint8)


def spawn_disk_offsets() -> list[tuple[int, int]]:
    """The ``(dx, dy)`` offsets of the 52-tile spawn disk around a centre tile, in BFS order from it."""
    in_disk = {
        (dx, dy)
        for dx in range(-4, 4)
        for dy in range(-4, 4)
        if (dx + 0.5) ** 2 + (dy + 0.5) ** 2 <= SPAWN_DISK_RADIUS_SQ
    }
    order, seen, queue = [], {(0, 0)}, deque([(0, 0)])
    while queue:
        dx, dy = queue.popleft()
        order.append((dx, dy))
        for nx, ny in ((dx, dy - 1), (dx + 1, dy), (dx, dy + 1), (dx - 1, dy)):
            if (nx, ny) in in_disk and (nx, ny) not in seen:
                seen.add((nx, ny))
                queue.append((nx, ny))
    return order


@dataclass
class Player:
    """One player's scalar state. Troops and gold are integers, as in the engine."""

    id: int
    kind: PlayerKind
    difficulty: Difficulty | None = None  # nations only
    troops: int = 0
    gold: int = 0
    tiles: int = 0
    city_levels: int = 0  # sum of the levels of completed cities; each adds 250k to max troops
    alive: bool = True
    has_attacked: bool = False  # a human who never attacked gives no gold when conquered
    spawn_tile: int = -1
    # Tribe AI constants (drawn at spawn for tribes).
    attack_rate: int = 0
    attack_phase: int = 0
    trigger_ratio: float = 0.0
    reserve_ratio: float = 0.0
    expand_ratio: float = 0.0
    made_first_decision: bool = False

    def add_troops(self, amount: float) -> None:
        """Add ``amount`` troops (floored); a negative amount removes troops instead."""
        if amount < 0:
            self.remove_troops(-amount)
        else:
            self.troops += math.floor(amount)

    def remove_troops(self, amount: float) -> int:
        """Remove ``floor(amount)`` troops, never going below zero. Returns the number removed."""
        if amount <= 0:
            return 0
        removed = min(self.troops, math.floor(amount))
        self.troops -= removed
        return removed


@dataclass
class Attack:
    """One running land attack: a troop pool, a priority heap of tiles to take, and its own RNG."""

    serial: int
    attacker: int
    target: int  # 0 = unowned land
    troops: float  # not floored: the engine keeps fractional attack troops
    rng: random.Random
    tiles_taken: int = 0
    troops_lost: float = 0.0  # attacker losses from taking tiles (not retreat penalties)
    # Min-heap of (priority, insertion number, tile); equal priorities pop first-in first-out (the engine's
    # binary heap breaks such ties arbitrarily).
    heap: list[tuple[float, int, int]] = field(default_factory=list)
    # B, the engine's "border size": distinct queued tiles. Like the engine's set, a tile leaves it when any
    # one of its heap entries is popped, even if a duplicate entry is still queued.
    queued: set[int] = field(default_factory=set)
    pushes: int = 0
    retreat_ticks_left: int | None = None  # set while a retreat is pending


@dataclass
class Boat:
    """A transport boat at sea: it lands on ``dst`` (flat tile index) during tick ``arrive``."""

    attacker: int
    target: int
    troops: int
    src: int
    dst: int
    launch: int
    arrive: int


@dataclass
class TickRecord:
    """What happened during one tick, for comparison with the vectorised engine.

    Arrays are indexed by player id (index 0 = unowned land, where meaningful); dicts are keyed by
    ``(attacker, target)`` pairs of the attacks that were running.
    """

    tick: int
    tiles: np.ndarray  # int64 (P+1,): tiles owned after the tick; [0] = unowned land tiles
    troops: np.ndarray  # int64 (P+1,): player troops after the tick; [0] = 0
    front: np.ndarray  # int64 (P+1,): each player's border tiles (owned, some 4-neighbour not theirs)
    attack_troops: dict[tuple[int, int], float]  # troops in each attack still running after the tick
    conquered: dict[tuple[int, int], int]  # tiles taken this tick
    attacker_losses: dict[tuple[int, int], float]  # troops the attack lost taking tiles this tick
    defender_losses: dict[tuple[int, int], int]  # troops removed from the defender this tick
    # Attacks that ended: (attacker, target, why), why one of "exhausted" (troops < 1, lost), "done" (no tile
    # left to take; troops went home), "retreated", "cancelled" (by an opposing order), "merged" (into a
    # new order on the same target), "attacker dead".
    ended: list[tuple[int, int, str]]


class ReferenceGame:
    """The OpenFront land game on one map, advanced one tick at a time in plain Python.

    Attributes:
        land: bool (H, W), True for land; water is never owned.
        terrain: uint8 (H, W), 0 plains / 1 highland / 2 mountain.
        owner: int32 (H, W), 0 = unowned, else a player id (1, 2, ... in spawn order).
        players: ``players[i]`` is player ``i`` (``players[0]`` is None).
        attacks: running attacks in creation order (the order in which they tick).
        ticks: number of ticks run so far; the next ``tick()`` is tick number ``ticks``.
        winner: id of the player that passed 80% of the land at a win check, else None.
        history: one ``TickRecord`` per tick when ``record=True``.
    """

    def __init__(
        self,
        land: np.ndarray,
        magnitude: np.ndarray,
        seed: int = 0,
        spawn_phase_ticks: int = 0,
        tribe_ai: bool = False,
        record: bool = False,
    ) -> None:
        """Create an empty game.

        Args:
            land: bool (H, W).
            magnitude: uint8 (H, W), terrain magnitude (0..31); only its class matters.
            seed: seeds the game RNG (random spawns, tribe AI) and every attack's RNG.
            spawn_phase_ticks: ticks at the start with no growth, gold or conquest. Attacks launched during
                the last of them start at its end, as in the engine, whose traces begin with that tick
                (use 1 to replay them).
            tribe_ai: whether tribes take their own decisions (section 7 of the rules).
            record: whether to keep a ``TickRecord`` per tick in ``history``.
        """
        land = np.asarray(land, dtype=bool)
        magnitude = np.asarray(magnitude)
        if land.ndim != 2 or land.shape != magnitude.shape:
            raise ValueError(f"land {land.shape} and magnitude {magnitude.shape} must be equal 2-D shapes")
        self.land = land
        self.terrain = terrain_class(magnitude)
        self.height, self.width = land.shape
        self.num_land_tiles = int(land.sum())
        self.owner = np.zeros(land.shape, dtype=np.int32)
        self._owner_flat = self.owner.reshape(-1)  # a view: writes go to ``owner``
        self._land_flat = land.reshape(-1).tolist()
        self._terrain_flat = self.terrain.reshape(-1).tolist()
        self.seed = seed
        self.rng = random.Random(f"game:{seed}")
        self.spawn_phase_ticks = spawn_phase_ticks
        self.tribe_ai = tribe_ai
        self.record = record
        self.players: list[Player | None] = [None]
        self.attacks: list[Attack] = []
        self.defense_posts: list[tuple[int, int, int]] = []  # (owner, x, y)
        self.ticks = 0
        self.winner: int | None = None
        self.history: list[TickRecord] = []
        self._pending_launches: list[tuple[int, int, int]] = []
        self._pending_boats: list[tuple[int, int, int]] = []
        self.boats: list[Boat] = []
        self._attack_serial = 0
        self._tick_stats: dict[str, dict] = {}
        self._ended: list[tuple[int, int, str]] = []

    # ------------------------------------------------------------------------------------------------------
    # Small helpers
    # ------------------------------------------------------------------------------------------------------

    def _neighbours(self, tile: int) -> Iterator[int]:
        """The 4-neighbours of a flat tile index that lie on the map (the edge has none)."""
        x = tile % self.width
        if tile >= self.width:
            yield tile - self.width
        if x + 1 < self.width:
            yield tile + 1
        if tile + self.width < self.width * self.height:
            yield tile + self.width
        if x > 0:
            yield tile - 1

    def _owner_of(self, tile: int) -> int:
        return int(self._owner_flat[tile])

    def _set_owner(self, tile: int, new_owner: int) -> None:
        """Give a land tile to ``new_owner`` (0 = unowned), keeping tile counts and posts consistent."""
        old_owner = self._owner_of(tile)
        if old_owner == new_owner:
            return
        if old_owner:
            self.players[old_owner].tiles -= 1
        if new_owner:
            self.players[new_owner].tiles += 1
        self._owner_flat[tile] = new_owner
        # A captured defense post is destroyed.
        x, y = tile % self.width, tile // self.width
        self.defense_posts = [p for p in self.defense_posts if (p[1], p[2]) != (x, y)]

    def _touches(self, tile: int, player_id: int) -> bool:
        return any(self._owner_flat[n] == player_id for n in self._neighbours(tile))

    def player(self, player_id: int) -> Player:
        """The player with this id (1-based)."""
        if not 1 <= player_id < len(self.players):
            raise ValueError(f"no player {player_id}; ids are 1..{len(self.players) - 1}")
        return self.players[player_id]

    @property
    def num_players(self) -> int:
        """Number of players spawned so far (ids run 1..num_players)."""
        return len(self.players) - 1

    def max_troops(self, player_id: int) -> float:
        """Troop cap M of a player: ``2 (tiles^0.6 1000 + 50000) + 250000 city levels``, by kind."""
        p = self.player(player_id)
        base = 2.0 * (p.tiles**0.6 * 1000.0 + 50_000.0) + CITY_MAX_TROOPS_PER_LEVEL * p.city_levels
        if p.kind == "tribe":
            return base / TRIBE_MAX_TROOPS_DIVISOR
        if p.kind == "nation":
            return base * NATION_MAX_TROOPS_FACTOR[p.difficulty]
        return base

    def troop_growth(self, player_id: int) -> float:
        """Troops the player gains this tick before flooring: ``min(T + add, M) - T`` (negative above M)."""
        p = self.player(player_id)
        troops, cap = float(p.troops), self.max_troops(player_id)
        add = (10.0 + troops**0.73 / 4.0) * (1.0 - troops / cap)
        if p.kind == "tribe":
            add *= TRIBE_GROWTH_FACTOR
        elif p.kind == "nation":
            add *= NATION_GROWTH_FACTOR[p.difficulty]
        return min(troops + add, cap) - troops

    def border_tiles(self, player_id: int) -> np.ndarray:
        """bool (H, W): tiles the player owns with a 4-neighbour owned by anyone else (water counts as 0).

        The map edge does not make a tile a border tile.
        """
        mine = self.owner == player_id
        other = np.zeros_like(mine)
        other[1:, :] |= self.owner[:-1, :] != player_id
        other[:-1, :] |= self.owner[1:, :] != player_id
        other[:, 1:] |= self.owner[:, :-1] != player_id
        other[:, :-1] |= self.owner[:, 1:] != player_id
        return mine & other

    def attack_on(self, attacker: int, target: int) -> Attack | None:
        """The running attack of ``attacker`` on ``target`` (0 = unowned land), if any."""
        for attack in self.attacks:
            if attack.attacker == attacker and attack.target == target:
                return attack
        return None

    # ------------------------------------------------------------------------------------------------------
    # Spawning
    # ------------------------------------------------------------------------------------------------------

    def spawn(self, kind: PlayerKind, x: int, y: int, difficulty: Difficulty | None = None) -> int:
        """Add a player whose territory is the spawn disk around ``(x, y)``; returns its id.

        The disk is walked breadth-first from the centre; the player gets the disk tiles that are land and
        unowned (up to 52). Starting troops: human 25,000, tribe 10,000, nation 12,500-31,250 by difficulty.
        """
        if kind not in ("human", "tribe", "nation"):
            raise ValueError(f"kind must be 'human', 'tribe' or 'nation', got {kind!r}")
        if (kind == "nation") != (difficulty is not None):
            raise ValueError("a nation needs a difficulty ('easy'..'impossible'); other kinds take none")
        if difficulty is not None and difficulty not in NATION_START_TROOPS:
            raise ValueError(f"difficulty must be one of {sorted(NATION_START_TROOPS)}, got {difficulty!r}")
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise ValueError(f"spawn ({x}, {y}) is off the {self.width}x{self.height} map")
        centre = y * self.width + x
        if not self._land_flat[centre] or self._owner_of(centre):
            raise ValueError(f"spawn ({x}, {y}) must be unowned land")
        player_id = len(self.players)
        start = NATION_START_TROOPS[difficulty] if kind == "nation" else START_TROOPS[kind]
        player = Player(id=player_id, kind=kind, difficulty=difficulty, troops=start, spawn_tile=centre)
        if kind == "tribe":
            player.attack_rate = self.rng.randrange(*TRIBE_ATTACK_RATE_RANGE)
            player.attack_phase = self.rng.randrange(player.attack_rate)
            player.trigger_ratio = self.rng.uniform(*TRIBE_TRIGGER_RANGE)
            player.reserve_ratio = self.rng.uniform(*TRIBE_RESERVE_RANGE)
            player.expand_ratio = self.rng.uniform(*TRIBE_EXPAND_RANGE)
        self.players.append(player)
        for tile in self._spawn_disk_tiles(x, y):
            if self._land_flat[tile] and not self._owner_of(tile):
                self._set_owner(tile, player_id)
        return player_id

    def _spawn_disk_tiles(self, x: int, y: int) -> list[int]:
        return [
            (y + dy) * self.width + (x + dx)
            for dx, dy in spawn_disk_offsets()
            if 0 <= x + dx < self.width and 0 <= y + dy < self.height
        ]

    def spawn_random(self, kind: PlayerKind, difficulty: Difficulty | None = None) -> int | None:
        """Spawn at a random valid centre, as tribes do; returns the id, or None after 1000 failed tries.

        A centre is valid if it is unowned land, touches no owned tile, lies at Manhattan distance >= 30
        from every other player's spawn tile, and its whole disk (52 tiles) is unowned land.
        """
        spawns = [(p.spawn_tile % self.width, p.spawn_tile // self.width) for p in self.players[1:]]
        for _ in range(RANDOM_SPAWN_TRIES):
            x, y = self.rng.randrange(self.width), self.rng.randrange(self.height)
            centre = y * self.width + x
            if (
                not self._land_flat[centre]
                or self._owner_of(centre)
                or any(self._owner_of(n) for n in self._neighbours(centre))
            ):
                continue
            if any(abs(x - sx) + abs(y - sy) < RANDOM_SPAWN_MIN_MANHATTAN for sx, sy in spawns):
                continue
            disk = self._spawn_disk_tiles(x, y)
            if len(disk) < len(spawn_disk_offsets()) or any(
                not self._land_flat[t] or self._owner_of(t) for t in disk
            ):
                continue
            return self.spawn(kind, x, y, difficulty)
        return None

    def claim(self, player_id: int, mask: np.ndarray) -> None:
        """Give every land tile under ``mask`` (bool (H, W)) to ``player_id``: for building scenarios."""
        self.player(player_id)
        for tile in np.flatnonzero(np.asarray(mask, dtype=bool).reshape(-1) & self.land.reshape(-1)).tolist():
            self._set_owner(tile, player_id)

    def add_defense_post(self, player_id: int, x: int, y: int) -> None:
        """Place a completed defense post owned by ``player_id`` on its own tile ``(x, y)``."""
        if self._owner_of(y * self.width + x) != player_id:
            raise ValueError(f"({x}, {y}) is not owned by player {player_id}")
        self.defense_posts.append((player_id, x, y))

    # ------------------------------------------------------------------------------------------------------
    # Orders
    # ------------------------------------------------------------------------------------------------------

    def launch_attack(self, attacker: int, target: int, troops: int) -> None:
        """Order ``attacker`` to attack ``target`` (0 = unowned land) with ``troops`` troops.

        Like an intent in the engine, the order takes effect at the end of the next ``tick()``, after
        growth and the running attacks: the troops are then removed from the attacker (capped at what it
        has), cancelled against any attack of the target on the attacker (the larger survives with the
        difference), and merged with any running attack on the same target. Conquest starts one tick later.
        """
        self.player(attacker)
        if target != 0:
            self.player(target)
        if target == attacker:
            raise ValueError(f"player {attacker} cannot attack itself")
        if troops < 0:
            raise ValueError(f"troops must be >= 0, got {troops}")
        self._pending_launches.append((attacker, target, int(troops)))

    def launch_boat(self, attacker: int, x: int, y: int, troops: int) -> None:
        """Order ``attacker`` to send ``troops`` by boat to the shore tile ``(x, y)``; like an attack order it
        is initialised at the end of the next ``tick()`` (troops leave, the boat sets out)."""
        self.player(attacker)
        self._pending_boats.append((attacker, y * self.width + x, int(troops)))

    def water_distances(self, dst: int) -> dict[int, int]:
        """Exact moves from landing tile ``dst`` to every tile reachable through water (4-connected BFS over
        water tiles, the shore land tiles at the end of a path included)."""
        distance = {dst: 0}
        queue = deque([dst])
        while queue:
            tile = queue.popleft()
            for n in self._neighbours(tile):
                if n in distance:
                    continue
                if not self._land_flat[n]:
                    distance[n] = distance[tile] + 1
                    queue.append(n)
                elif not self._land_flat[tile]:
                    distance[n] = distance[tile] + 1  # a shore tile: the end of a path, not a way through
        return distance

    def _start_boat(self, attacker_id: int, dst: int, troops: int) -> None:
        attacker = self.player(attacker_id)
        target = self._owner_of(dst)
        if not attacker.alive or target == attacker_id or not self._land_flat[dst]:
            return
        if sum(1 for b in self.boats if b.attacker == attacker_id) >= BOATS_PER_PLAYER:
            return
        distance = self.water_distances(dst)
        launches = [(d, t) for t, d in distance.items()
                    if self._land_flat[t] and t != dst and self._owner_flat[t] == attacker_id]
        if not launches:
            return
        steps, src = min(launches)
        sent = attacker.remove_troops(min(troops, attacker.troops))
        if sent < 1:
            return
        # One tile per tick, landing on the tick after the boat reaches the landing tile (as the engine).
        self.boats.append(Boat(attacker_id, target, sent, src, dst, self.ticks, self.ticks + steps + 1))

    def _land_boats(self) -> None:
        for boat in [b for b in self.boats if self.ticks >= b.arrive]:
            self.boats.remove(boat)
            attacker = self.player(boat.attacker)
            if not attacker.alive:
                continue
            if self._owner_of(boat.dst) == boat.attacker:
                attacker.add_troops(boat.troops * BOAT_RETREAT_KEEP)
                continue
            self._set_owner(boat.dst, boat.attacker)
            self._attack_serial += 1
            attack = Attack(serial=self._attack_serial, attacker=boat.attacker, target=boat.target,
                            troops=float(boat.troops), rng=random.Random(f"attack:{self.seed}:{HEAP_SEED}"))
            self._queue_neighbours(attack, boat.dst)  # a boat attack is seeded at its landing only
            self.attacks.append(attack)

    def retreat(self, attacker: int, target: int) -> None:
        """Order the attack of ``attacker`` on ``target`` to retreat.

        The attack stops conquering at once; during the 20th tick after the order its troops go home:
        75% of them if the target is a player, all of them if it is unowned land.
        """
        attack = self.attack_on(attacker, target)
        if attack is None:
            raise ValueError(f"player {attacker} has no running attack on {target}")
        if attack.retreat_ticks_left is None:
            attack.retreat_ticks_left = RETREAT_DELAY_TICKS

    # ------------------------------------------------------------------------------------------------------
    # The tick
    # ------------------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance the game by one tick, in the engine's order.

        1. win check (every 10 ticks); 2. per player in spawn order: death if no tiles, troop growth,
        gold, and the tribe AI; 3. every running attack, in creation order, spends its budget;
        4. orders given before this tick are initialised (troops leave, heaps are seeded).
        """
        now = self.ticks
        self._tick_stats = {"conquered": {}, "attacker_losses": {}, "defender_losses": {}}
        self._ended = []
        live = now >= self.spawn_phase_ticks
        if live:
            if now % WIN_CHECK_INTERVAL == 0:
                self._check_win()
            for player in self.players[1:]:
                if not player.alive:
                    continue
                if player.tiles == 0:
                    player.alive = False
                    continue
                player.add_troops(self.troop_growth(player.id))
                player.gold += GOLD_PER_TICK[player.kind]
                if self.tribe_ai and player.kind == "tribe":
                    self._tribe_decision(player)
            for attack in list(self.attacks):
                if attack in self.attacks:  # an earlier attack may have cancelled or ended it
                    self._advance_attack(attack)
        if now + 1 >= self.spawn_phase_ticks:
            launches, self._pending_launches = self._pending_launches, []
            for attacker, target, troops in launches:
                self._start_attack(attacker, target, troops)
            self._land_boats()
            boats, self._pending_boats = self._pending_boats, []
            for attacker, dst, troops in boats:
                self._start_boat(attacker, dst, troops)
        self.ticks += 1
        if self.record:
            self.history.append(self._make_record(now))

    def run(self, num_ticks: int) -> None:
        """Run ``num_ticks`` ticks."""
        for _ in range(num_ticks):
            self.tick()

    def _check_win(self) -> None:
        if self.winner is not None or self.num_players == 0:
            return
        leader = max(self.players[1:], key=lambda p: p.tiles)
        if leader.tiles / self.num_land_tiles > WIN_LAND_SHARE:
            self.winner = leader.id

    # ------------------------------------------------------------------------------------------------------
    # Attacks
    # ------------------------------------------------------------------------------------------------------

    def _start_attack(self, attacker_id: int, target_id: int, troops: int) -> None:
        """Initialise an ordered attack: pay troops, cancel against the opposing attack, merge, seed heap."""
        attacker = self.player(attacker_id)
        if not attacker.alive or (target_id and not self.player(target_id).alive):
            return
        sent = float(attacker.remove_troops(min(troops, attacker.troops)))
        attacker.has_attacked = True
        if target_id:
            opposing = self.attack_on(target_id, attacker_id)
            if opposing is not None:
                if opposing.troops > sent:
                    opposing.troops -= sent
                    return
                sent -= opposing.troops
                self.attacks.remove(opposing)
                self._ended.append((target_id, attacker_id, "cancelled"))
        existing = self.attack_on(attacker_id, target_id)
        if existing is not None:
            sent += existing.troops
            self.attacks.remove(existing)
            self._ended.append((attacker_id, target_id, "merged"))
        self._attack_serial += 1
        attack = Attack(
            serial=self._attack_serial,
            attacker=attacker_id,
            target=target_id,
            troops=sent,
            rng=random.Random(f"attack:{self.seed}:{HEAP_SEED}"),
        )
        # Seed the heap with every target-owned land neighbour of the attacker's border, once per border
        # tile that touches it (so a tile can be queued several times, as in the engine).
        for tile in np.flatnonzero(self.border_tiles(attacker_id).reshape(-1)).tolist():
            self._queue_neighbours(attack, tile)
        self.attacks.append(attack)

    def _queue_neighbours(self, attack: Attack, tile: int) -> None:
        """Push every target-owned land 4-neighbour of ``tile`` onto the attack's heap.

        Priority: ``U{10..16} * (1 - 0.5 k + g / 2) + tick``, with k the neighbour's attacker-owned
        4-neighbours now and g the terrain weight. Tiles surrounded by the attacker and flat tiles come
        first (which keeps the front smooth), and older entries beat newer ones by about one per tick.
        """
        for n in self._neighbours(tile):
            if not self._land_flat[n] or self._owner_flat[n] != attack.target:
                continue
            attacker_neighbours = sum(
                1 for m in self._neighbours(n) if self._owner_flat[m] == attack.attacker
            )
            weight = TERRAIN_PRIORITY_WEIGHT[self._terrain_flat[n]]
            base = attack.rng.randint(PRIORITY_BASE_MIN, PRIORITY_BASE_MAX)
            priority = base * (1.0 - 0.5 * attacker_neighbours + weight / 2.0) + self.ticks
            attack.pushes += 1
            heapq.heappush(attack.heap, (priority, attack.pushes, n))
            attack.queued.add(n)

    def tile_budget(self, attack: Attack, jitter: int) -> float:
        """Budget the attack may spend this tick, given the jitter r in 0..4.

        Against unowned land: ``2 (B + r)``; against a player: ``clamp(10 a / D, 0.01, 0.5) 3 (B + r)``,
        with B the number of distinct queued tiles, a the attack's troops and D the defender's troops.
        """
        border = len(attack.queued) + jitter
        if attack.target == 0:
            return 2.0 * border
        defender_troops = self.player(attack.target).troops
        ratio = 10.0 * attack.troops / defender_troops if defender_troops > 0 else math.inf
        return min(max(ratio, 0.01), 0.5) * 3.0 * border

    def tile_values(self, attack: Attack, tile: int) -> tuple[float, float, float]:
        """``(cost, attacker_loss, defender_loss)`` of taking ``tile`` now (section 5, ``attackLogic``)."""
        attacker = self.player(attack.attacker)
        terrain = self._terrain_flat[tile]
        loss, cost = TERRAIN_LOSS[terrain], TERRAIN_COST[terrain]
        a = attack.troops
        if attack.target == 0:
            attacker_loss = loss / (10.0 if attacker.kind == "tribe" else 5.0)
            return min(max(2000.0 * max(10.0, cost) / a, 5.0), 100.0), attacker_loss, 0.0
        defender = self.player(attack.target)
        if self._near_defense_post(attack.target, tile):
            loss *= DEFENSE_POST_LOSS_FACTOR
            cost *= DEFENSE_POST_COST_FACTOR
        if attacker.kind in ("human", "nation") and defender.kind == "tribe":
            loss *= HUMAN_VS_TRIBE_LOSS_FACTOR
        # Large defenders are cheaper to attack: L runs from ~0.97 (small) to 0.7 (huge).
        sigmoid = 1.0 / (1.0 + math.exp(-LARGE_DEFENDER_RATE * (defender.tiles - LARGE_DEFENDER_MIDPOINT)))
        large_defender = 0.7 + 0.3 * (1.0 - sigmoid)
        # Large attackers lose more and advance slower.
        loss_factor = cost_factor = 1.0
        if attacker.tiles > LARGE_ATTACKER_TILES:
            loss_factor = (LARGE_ATTACKER_TILES / attacker.tiles) ** LARGE_ATTACKER_LOSS_EXPONENT
            cost_factor = (LARGE_ATTACKER_TILES / attacker.tiles) ** LARGE_ATTACKER_COST_EXPONENT
        d, n = float(defender.troops), float(defender.tiles)
        density = d / n
        attacker_loss = 0.7 * (
            min(max(d / a, 0.6), 2.0) * loss * 0.8 * large_defender * loss_factor
        ) + 0.3 * (1.3 * density * loss / 100.0)
        tile_cost = min(max(d / (5.0 * a), 0.2), 1.5) * cost * large_defender * cost_factor
        return tile_cost, attacker_loss, density

    def _near_defense_post(self, defender_id: int, tile: int) -> bool:
        x, y = tile % self.width, tile // self.width
        radius_sq = DEFENSE_POST_RADIUS**2
        return any(
            owner == defender_id and (px - x) ** 2 + (py - y) ** 2 <= radius_sq
            for owner, px, py in self.defense_posts
        )

    def _end_attack(self, attack: Attack, troops_home: float, reason: str) -> None:
        self.attacks.remove(attack)
        if troops_home > 0:
            self.player(attack.attacker).add_troops(troops_home)
        self._ended.append((attack.attacker, attack.target, reason))

    def _advance_attack(self, attack: Attack) -> None:
        """Spend one tick's budget of an attack, popping tiles off its heap (section 5, conquest loop)."""
        attacker = self.player(attack.attacker)
        if not attacker.alive or attacker.tiles == 0:
            self._end_attack(attack, 0.0, "attacker dead")
            return
        if attack.retreat_ticks_left is not None:
            attack.retreat_ticks_left -= 1
            if attack.retreat_ticks_left <= 0:
                keep = RETREAT_KEEP_VS_PLAYER if attack.target else 1.0
                self._end_attack(attack, attack.troops * keep, "retreated")
            return
        pair = (attack.attacker, attack.target)
        stats = self._tick_stats
        budget = self.tile_budget(attack, attack.rng.randint(0, BUDGET_JITTER_MAX))
        while budget > 0:
            if attack.troops < 1:
                self._end_attack(attack, 0.0, "exhausted")
                return
            if not attack.heap:
                # Nothing left to take: the survivors go home without penalty.
                self._end_attack(attack, attack.troops, "done")
                return
            _, _, tile = heapq.heappop(attack.heap)
            attack.queued.discard(tile)
            # Stale entries (taken already, or cut off from the attacker) cost nothing.
            if self._owner_flat[tile] != attack.target or not self._touches(tile, attack.attacker):
                continue
            # The engine queues the tile's neighbours before the tile changes hands, so their k does not
            # yet count this tile.
            self._queue_neighbours(attack, tile)
            cost, attacker_loss, defender_loss = self.tile_values(attack, tile)
            budget -= cost
            attack.troops -= attacker_loss
            removed = self.player(attack.target).remove_troops(defender_loss) if attack.target else 0
            self._set_owner(tile, attack.attacker)
            attack.tiles_taken += 1
            attack.troops_lost += attacker_loss
            stats["conquered"][pair] = stats["conquered"].get(pair, 0) + 1
            stats["attacker_losses"][pair] = stats["attacker_losses"].get(pair, 0.0) + attacker_loss
            stats["defender_losses"][pair] = stats["defender_losses"].get(pair, 0) + removed
            if attack.target and self.player(attack.target).tiles < ANNIHILATION_TILES:
                self._annihilate(attack.target, attack.attacker)

    def _annihilate(self, defender_id: int, conqueror_id: int) -> None:
        """A player attacked below 100 tiles is conquered: gold to the conqueror, tiles to its neighbours.

        In 10 passes, each remaining tile goes to the conqueror if it touches it, else to the first
        adjacent third player. Tiles touching neither (e.g. islands) stay with the defender, as in the
        engine, and are handed out again the next time the defender loses a tile.
        """
        defender, conqueror = self.player(defender_id), self.player(conqueror_id)
        if defender.has_attacked or defender.kind != "human":
            conqueror.gold += defender.gold
            defender.gold = 0
        remaining = np.flatnonzero(self._owner_flat == defender_id).tolist()
        for _ in range(ANNIHILATION_PASSES):
            still_held = []
            for tile in remaining:
                neighbour_owners = [self._owner_of(n) for n in self._neighbours(tile)]
                if conqueror_id in neighbour_owners:
                    self._set_owner(tile, conqueror_id)
                    continue
                third = next((o for o in neighbour_owners if o not in (0, defender_id)), 0)
                if third:
                    self._set_owner(tile, third)
                else:
                    still_held.append(tile)
            remaining = still_held
            if not remaining:
                break

    # ------------------------------------------------------------------------------------------------------
    # Tribe AI (section 7)
    # ------------------------------------------------------------------------------------------------------

    def neighbour_ids(self, player_id: int) -> set[int]:
        """Owners (0 = unowned land) of land tiles 4-adjacent to the player's territory."""
        border = self.border_tiles(player_id)
        near = np.zeros_like(border)
        near[1:, :] |= border[:-1, :]
        near[:-1, :] |= border[1:, :]
        near[:, 1:] |= border[:, :-1]
        near[:, :-1] |= border[:, 1:]
        near &= self.land & (self.owner != player_id)
        return {int(o) for o in np.unique(self.owner[near])}

    def _tribe_decision(self, tribe: Player) -> None:
        """On its phase tick a tribe expands into unowned land, retaliates, or attacks a random neighbour."""
        if self.ticks % tribe.attack_rate != tribe.attack_phase:
            return
        cap = self.max_troops(tribe.id)
        expand_troops = int(tribe.troops - cap * tribe.expand_ratio)
        if not tribe.made_first_decision:
            tribe.made_first_decision = True
            if expand_troops > 0:
                self.launch_attack(tribe.id, 0, expand_troops)
            return
        neighbours = self.neighbour_ids(tribe.id)
        if 0 in neighbours:
            if expand_troops > 0:
                self.launch_attack(tribe.id, 0, expand_troops)
            return
        if tribe.troops / cap < tribe.trigger_ratio:
            return
        attack_troops = int(tribe.troops - cap * tribe.reserve_ratio)
        if attack_troops <= 0:
            return
        incoming = [a for a in self.attacks if a.target == tribe.id]
        if incoming:
            self.launch_attack(tribe.id, max(incoming, key=lambda a: a.troops).attacker, attack_troops)
            return
        candidates = sorted(neighbours - {0})
        self.rng.shuffle(candidates)
        for other in candidates:
            if self.player(other).kind != "tribe" and self.rng.random() < TRIBE_SKIP_HUMAN_PROBABILITY:
                continue
            self.launch_attack(tribe.id, other, attack_troops)
            return

    # ------------------------------------------------------------------------------------------------------
    # Traces
    # ------------------------------------------------------------------------------------------------------

    def _make_record(self, tick: int) -> TickRecord:
        tiles = np.zeros(self.num_players + 1, dtype=np.int64)
        troops = np.zeros(self.num_players + 1, dtype=np.int64)
        for p in self.players[1:]:
            tiles[p.id], troops[p.id] = p.tiles, p.troops
        tiles[0] = self.num_land_tiles - int(tiles[1:].sum())
        # Border tiles of every player in one pass: owned tiles with a differently owned 4-neighbour.
        differs = np.zeros(self.owner.shape, dtype=bool)
        differs[1:, :] |= self.owner[1:, :] != self.owner[:-1, :]
        differs[:-1, :] |= self.owner[:-1, :] != self.owner[1:, :]
        differs[:, 1:] |= self.owner[:, 1:] != self.owner[:, :-1]
        differs[:, :-1] |= self.owner[:, :-1] != self.owner[:, 1:]
        front = np.bincount(self.owner[differs & (self.owner > 0)], minlength=self.num_players + 1)
        front = front.astype(np.int64)
        front[0] = 0
        return TickRecord(
            tick=tick,
            tiles=tiles,
            troops=troops,
            front=front,
            attack_troops={(a.attacker, a.target): a.troops for a in self.attacks},
            conquered=dict(self._tick_stats["conquered"]),
            attacker_losses=dict(self._tick_stats["attacker_losses"]),
            defender_losses=dict(self._tick_stats["defender_losses"]),
            ended=list(self._ended),
        )
