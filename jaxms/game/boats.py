"""Transport boats (engine §5 "Boats"): fixed-size boat slots, launch, travel, landing, retreat.

A player has `BOATS_PER_PLAYER` (3) slots, `GameState.boat_*` [P + 1, 3]; a slot with 0 troops is free.
- Order: a bot or the agent writes `boat_order_troops` / `boat_order_dst` (a landing tile); like attack
  orders, boats launch at the tick's end. Nothing launches without a free slot (the engine's cap of 3).
- Launch (`launch_boats`, only on ticks where some player ordered one): the landing tile `dst` is a shore
  tile (land next to water) not owned by the attacker; it touches water body b (`MapArrays.water_body`).
  The launch tile `src` is the attacker's shore tile on body b with the shortest water path to `dst`. The
  troops (floored, at most what the player has) leave at once; the boat lands at tick launch + d + 1,
  where d is the water distance from src to dst in moves of one tile (4-connected, through water of body
  b): the engine's boat moves one tile per tick and lands on the tick after it reaches the landing tile
  (OpenFront's core, run under node on Australia: launched at tick 0, 103 moves, landing at tick 104).
- Landing (`land_boats`, O(boats) every tick): if a boat's owner already owns its `dst`, the
  troops come home less 25% (a retreat); otherwise the attacker conquers `dst` outright and the troops join
  the attack `attacks[attacker, target]` (the cancel rule of `launch_orders` applies), held at the beach
  (below). A boat of a player that died meanwhile is lost.
- Retreat (`retreat_boat`): the boat turns back to its launch tile, taking as long as it has travelled;
  landing on its own tile costs the 25%.

Beachheads. jaxms keeps one troop pool per (attacker, target) pair whose frontier is every tile of the
target bordering the attacker; the engine seeds a boat's attack at its landing tile only and grows it from
the tiles it takes. So a boat that lands where its owner has no running attack on the target holds that
attack at its beach: `GameState.beach_box[attacker, target]` is the smallest rectangle around the landing
tile and every tile the attack has taken since, and the attack takes only tiles within one tile of it
(conquest.Beaches): at first the landing tile's neighbours, then the neighbours of what it took, as in the
engine, with the rest of a shared border left alone. A rectangle holds more than the engine's list of
neighbours where the attacker's other land reaches into it; the attack then also pushes there. Where the
engine keeps two attacks on one target apart, one pool serves both here: a boat landing while a land
attack on its target runs joins it (the whole border), a second boat landing on a held pair widens its
box to cover both beaches, and a land attack ordered on a held pair frees it (the engine merges boat
attacks into a new land attack). The box is dropped when the attack ends.

Water distance, cheap inside jit at any map size: `MapArrays.block_right` / `block_down` are a coarse
graph of k x k blocks (at most 128 a side: k = 1, exact, up to 128x128; k = 8 at 1024x1024), made once
per map on the host; a block edge is open to the water body whose tiles cross it. At launch, one BFS over
the coarse grid from the landing block (a `while_loop` of 4-neighbour min steps over <= 128 x 128 cells)
gives block distances F; a tile's estimate is its Manhattan distance to `dst` plus the detour the coarse
path adds, `|dy| + |dx| + k max(F[block] - block Manhattan distance, 0)`. Measured against an exact tile
BFS (benchmarks/bench_boats.py, README): exact at k = 1; mean error 1-4%, 91-99% of crossings within 10%
on islands_256/512, continents_512 and australia@4x. The estimate ignores land inside a block that splits
its water (a block is taken as connected inside), the main source of the rare large errors. Per tick,
boats cost O(boats): a comparison of the 3 (P + 1) arrival ticks; the whole-grid launch work runs only on
ticks where a boat is ordered.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxms.game.blocks import record_changed_tiles
from jaxms.game.control import cond_any
from jaxms.game.grid import compact
from jaxms.game.rules import Rules
from jaxms.game.state import GameState, MapArrays, block_size

BOATS_PER_PLAYER = 3
UNREACHABLE = 1 << 20  # a water distance that means "no water path"
NO_BEACH = (1 << 20, 1 << 20, -1, -1)  # an empty `beach_box`: the attack pushes on its whole border


def empty_boats(num_slots: int) -> dict[str, jax.Array]:
    """The boat fields of a new game with `num_slots` (P + 1) player slots: every slot free."""
    zeros = jnp.zeros((num_slots, BOATS_PER_PLAYER), jnp.int32)
    return {"boat_troops": jnp.zeros((num_slots, BOATS_PER_PLAYER), jnp.float32), "boat_target": zeros,
            "boat_src": zeros, "boat_dst": zeros, "boat_launch": zeros, "boat_arrive": zeros,
            "boat_order_troops": jnp.zeros(num_slots, jnp.float32),
            "boat_order_dst": jnp.full(num_slots, -1, jnp.int32),
            "beach_box": jnp.broadcast_to(jnp.asarray(NO_BEACH, jnp.int32), (num_slots, num_slots, 4))}


def free_beaches(beach_box: jax.Array, attacks: jax.Array, ordered: jax.Array) -> jax.Array:
    """int32[P + 1, P + 1, 4]: `beach_box` with the boxes of ended attacks (`attacks` <= 0) and of pairs
    given a land attack this tick (`ordered` > 0: the engine merges boat attacks into it) emptied."""
    free = ((attacks <= 0) | (ordered > 0))[..., None]
    return jnp.where(free, jnp.asarray(NO_BEACH, jnp.int32), beach_box)


def boats_in_flight(state: GameState) -> jax.Array:
    """int32[P + 1]: boats at sea per player."""
    return (state.boat_troops > 0).sum(axis=1).astype(jnp.int32)


def order_boat(state: GameState, player: int | jax.Array, dst: int | jax.Array, troops: float | jax.Array,
               when: bool | jax.Array = True) -> GameState:
    """Order `player` to send `troops` by boat to landing tile `dst` (flat index y W + x), where `when`.

    Launched at this tick's end (like `launch_attack`); a later order of the same tick replaces it.
    """
    when = jnp.asarray(when) & (jnp.floor(troops) >= 1.0)
    return state.replace(
        boat_order_troops=state.boat_order_troops.at[player].set(
            jnp.where(when, jnp.floor(troops), state.boat_order_troops[player])),
        boat_order_dst=state.boat_order_dst.at[player].set(
            jnp.where(when, jnp.asarray(dst, jnp.int32), state.boat_order_dst[player])))


def retreat_boat(state: GameState, player: int | jax.Array, slot: int | jax.Array) -> GameState:
    """Turn `player`'s boat in `slot` back: it returns to its launch tile in the time it has travelled and
    lands there (its own tile: the troops come home less 25%)."""
    at_sea = state.boat_troops[player, slot] > 0
    back = state.tick + jnp.maximum(state.tick - state.boat_launch[player, slot], 1)
    index = (player, slot)

    def put(field, value):
        return field.at[index].set(jnp.where(at_sea, value, field[index]))

    return state.replace(boat_dst=put(state.boat_dst, state.boat_src[index]),
                         boat_src=put(state.boat_src, state.boat_dst[index]),
                         boat_target=put(state.boat_target, player),
                         boat_launch=put(state.boat_launch, state.tick),
                         boat_arrive=put(state.boat_arrive, back))


# ---------------------------------------------------------------------------------------------------------
# Water distances
# ---------------------------------------------------------------------------------------------------------


def _min_neighbour(field: jax.Array) -> jax.Array:
    """int32[h, w]: the smallest of the 4 neighbours' values (UNREACHABLE beyond the edge)."""
    padded = jnp.pad(field, 1, constant_values=UNREACHABLE)
    return jnp.minimum(jnp.minimum(padded[:-2, 1:-1], padded[2:, 1:-1]),
                       jnp.minimum(padded[1:-1, :-2], padded[1:-1, 2:]))


def coarse_field(block_right: jax.Array, block_down: jax.Array, body: jax.Array, seed: jax.Array
                 ) -> jax.Array:
    """int32[Hc, Wc]: BFS distance in block moves from block `seed` (int32[2]) along the block edges that
    water of `body` crosses (`MapArrays.block_right` / `block_down`).

    The seed block (the landing tile's) opens to its neighbours that hold water of `body` (its tile may
    sit on a block edge with its water in the next block); a block never reached gets 1 + its nearest
    neighbour (a launch tile's block whose water lies in the next block, or a land tile at k = 1); the
    rest stay UNREACHABLE.
    """
    rows, cols = block_right.shape
    start = jnp.zeros((rows, cols), jnp.bool_).at[seed[0], seed[1]].set(True)
    # Open edges: to the right of (i, j) and below (i, j), in both directions. The seed opens only towards
    # blocks that water of `body` crosses into (at k = 1: its water neighbours, never land).
    own_right, own_down = block_right == body, block_down == body
    wet = (own_right | own_down | jnp.pad(own_right, ((0, 0), (1, 0)))[:, :-1]
           | jnp.pad(own_down, ((1, 0), (0, 0)))[:-1, :])
    right_wet = jnp.pad(wet, ((0, 0), (0, 1)))[:, 1:]
    down_wet = jnp.pad(wet, ((0, 1), (0, 0)))[1:, :]
    right = own_right | (start & right_wet) | (jnp.pad(start, ((0, 0), (0, 1)))[:, 1:] & wet)
    down = own_down | (start & down_wet) | (jnp.pad(start, ((0, 1), (0, 0)))[1:, :] & wet)
    far = jnp.int32(UNREACHABLE)
    field = jnp.where(start, 0, UNREACHABLE).astype(jnp.int32)

    def relax(field):
        padded = jnp.pad(field, 1, constant_values=UNREACHABLE)
        from_right = jnp.where(right, padded[1:-1, 2:], far)
        from_left = jnp.where(jnp.pad(right, ((0, 0), (1, 0)))[:, :-1], padded[1:-1, :-2], far)
        from_below = jnp.where(down, padded[2:, 1:-1], far)
        from_above = jnp.where(jnp.pad(down, ((1, 0), (0, 0)))[:-1, :], padded[:-2, 1:-1], far)
        nearest = jnp.minimum(jnp.minimum(from_right, from_left), jnp.minimum(from_below, from_above))
        return jnp.minimum(field, jnp.minimum(nearest, far - 1) + 1)

    def step(carry):
        field, _, count = carry
        relaxed = relax(field)
        return relaxed, jnp.any(relaxed != field), count + 1

    field, _, _ = jax.lax.while_loop(lambda c: c[1] & (c[2] < rows * cols), step,
                                     (field, jnp.bool_(True), jnp.int32(0)))
    # Through a reached neighbour other than the seed (a land tile next to the landing is no shortcut).
    edge = jnp.minimum(_min_neighbour(jnp.where(start, UNREACHABLE, field)) + 1, UNREACHABLE)
    return jnp.where(field < UNREACHABLE, field, edge)


def water_distances(arrays: MapArrays, dst: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(int32[H, W] estimated water distance from every tile to landing tile `dst` (flat index), its body).

    Meaningful on shore tiles of the body of `dst`; UNREACHABLE where the coarse graph has no path. Whole
    grid: run only at launch (and in tests).
    """
    height, width = arrays.shape
    k = block_size((height, width))
    dy, dx = dst // width, dst % width
    body = arrays.water_body[dy, dx]
    field = coarse_field(arrays.block_right, arrays.block_down, body, jnp.stack([dy // k, dx // k]))
    per_tile = jnp.repeat(jnp.repeat(field, k, axis=0), k, axis=1)[:height, :width]
    ys = jnp.arange(height, dtype=jnp.int32)[:, None]
    xs = jnp.arange(width, dtype=jnp.int32)[None, :]
    manhattan = jnp.abs(ys - dy) + jnp.abs(xs - dx)
    block_manhattan = jnp.abs(ys // k - dy // k) + jnp.abs(xs // k - dx // k)
    estimate = manhattan + k * jnp.maximum(per_tile - block_manhattan, 0)
    return jnp.where(per_tile < UNREACHABLE, jnp.maximum(estimate, 1), UNREACHABLE), body


def launch_site(state: GameState, arrays: MapArrays, player: jax.Array, dst: jax.Array
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(src flat index, water distance int32, found bool): `player`'s shore tile on the body of `dst`
    with the shortest estimated water path to `dst` (whole grid: launch time only)."""
    distance, body = water_distances(arrays, dst)
    candidate = (state.owner == player) & arrays.shore & (arrays.water_body == body) & (body > 0)
    score = jnp.where(candidate, distance, UNREACHABLE).ravel()
    src = jnp.argmin(score).astype(jnp.int32)
    return src, score[src], score[src] < UNREACHABLE


# ---------------------------------------------------------------------------------------------------------
# Per tick
# ---------------------------------------------------------------------------------------------------------


def _join_attacks(attacks: jax.Array, added: jax.Array) -> jax.Array:
    """attacks + added with the engine's cancel rule between players (as `loop.launch_orders`)."""
    combined = attacks + added
    slots = jnp.arange(combined.shape[0])
    between_players = (slots[:, None] > 0) & (slots[None, :] > 0)
    return jnp.where(between_players & (added + added.T > 0), jnp.maximum(combined - combined.T, 0.0),
                     combined)


def land_boats(state: GameState, rules: Rules) -> GameState:
    """Boats whose arrival tick has come land (see the module docstring). O(boats) work, run every tick (no
    conditional: a skipped branch would copy the state's grids), and exactly nothing when none arrives."""
    num_slots = state.troops.shape[0]
    arrived = (state.boat_troops > 0) & (state.tick >= state.boat_arrive)
    attacker = jnp.broadcast_to(jnp.arange(num_slots, dtype=jnp.int32)[:, None], arrived.shape)
    tile_owner = state.owner_of(state.boat_dst).astype(jnp.int32)
    living = state.alive[attacker]
    home = arrived & living & (tile_owner == attacker)
    lands = arrived & living & (tile_owner != attacker)
    # Boats landing on one tile in one tick: the first (lowest player, then slot) takes the tile; the
    # others' troops still join their attacks (3 (P + 1) boats: a small pairwise test, not a map scatter).
    flat_lands, flat_dst = lands.ravel(), state.boat_dst.ravel()
    index = jnp.arange(flat_lands.shape[0])
    same_tile = flat_dst[:, None] == flat_dst[None, :]
    earlier = same_tile & flat_lands[None, :] & (index[None, :] < index[:, None])
    takes = (flat_lands & ~earlier.any(axis=1)).reshape(lands.shape)
    # The attack goes on against the boat's target if it can still be attacked, else the tile's owner.
    target = state.boat_target
    target = jnp.where((target == 0) | (state.alive[target] & (target != attacker)), target, tile_owner)
    board = state.board_owner
    owner = board.ravel().at[jnp.where(takes, state.board_index(state.boat_dst), board.size).ravel()].set(
        attacker.ravel().astype(jnp.uint8), mode="drop").reshape(board.shape)
    gained = takes.astype(jnp.int32).ravel()
    tiles = (state.tiles + jax.ops.segment_sum(gained, attacker.ravel(), num_segments=num_slots)
             - jax.ops.segment_sum(gained, tile_owner.ravel(), num_segments=num_slots))
    joining = jnp.where(lands, state.boat_troops, 0.0)
    added = jnp.zeros((num_slots, num_slots), jnp.float32).at[attacker.ravel(), target.ravel()].add(
        joining.ravel())
    # The attack is held at its beach unless a land attack on the target runs (whose pool it joins).
    held = state.beach_box[attacker, target, 2] >= 0
    beaching = (lands & (held | (state.attacks[attacker, target] <= 0))).ravel()
    y, x = (state.boat_dst // state.width).ravel(), (state.boat_dst % state.width).ravel()
    pair = (attacker.ravel(), target.ravel())
    big = NO_BEACH[0]
    box = state.beach_box
    box = box.at[(*pair, 0)].min(jnp.where(beaching, y, big)).at[(*pair, 1)].min(jnp.where(beaching, x, big))
    box = box.at[(*pair, 2)].max(jnp.where(beaching, y, -1)).at[(*pair, 3)].max(jnp.where(beaching, x, -1))
    back = jnp.where(home, jnp.floor(state.boat_troops * rules.retreat_keep_vs_player), 0.0).sum(axis=1)
    attacks = _join_attacks(state.attacks, added)
    state = state.replace(board_owner=owner, tiles=tiles, attacks=attacks, troops=state.troops + back,
                          beach_box=free_beaches(box, attacks, jnp.zeros_like(attacks)),
                          boat_troops=jnp.where(arrived, 0.0, state.boat_troops))
    return record_changed_tiles(state, state.boat_dst.ravel(), takes.ravel(), rules.conquest_substeps)


_LAUNCHED = ("troops", "boat_troops", "boat_target", "boat_src", "boat_dst", "boat_launch", "boat_arrive")


def launch_boats(state: GameState, arrays: MapArrays) -> GameState:
    """Launch this tick's boat orders (see the module docstring); skipped unless a boat was ordered. The
    conditional returns only the fields a launch changes: returning the grids would copy them every tick."""
    ordering = (state.boat_order_troops >= 1.0) & state.alive

    def launched(state, arrays):
        return {name: getattr(state, name) for name in _LAUNCHED}

    changed = cond_any(ordering.any(), lambda s, a: launched(_launch(s, a), a), launched, state, arrays)
    return _clear_orders(state.replace(**changed))


def _clear_orders(state: GameState) -> GameState:
    """The tick's boat orders dropped (launched or not, an order lasts one tick)."""
    return state.replace(boat_order_troops=jnp.zeros_like(state.boat_order_troops),
                         boat_order_dst=jnp.full_like(state.boat_order_dst, -1))


def _launch(state: GameState, arrays: MapArrays) -> GameState:
    num_slots = state.troops.shape[0]
    ordering = (state.boat_order_troops >= 1.0) & state.alive
    ids, count = compact(ordering, 1)
    num_tiles = state.height * state.width

    def one(i, state):
        player = ids[i]
        real = player < num_slots
        player = jnp.minimum(player, num_slots - 1)
        dst = jnp.clip(state.boat_order_dst[player], 0, num_tiles - 1)
        target = state.owner_of(dst).astype(jnp.int32)
        src, distance, found = launch_site(state, arrays, player, dst)
        free = state.boat_troops[player] <= 0
        slot = jnp.argmax(free)
        troops = jnp.minimum(jnp.floor(state.boat_order_troops[player]), state.troops[player])
        attackable = (target != player) & ((target == 0) | state.alive[target])
        go = (real & found & free.any() & attackable & (troops >= 1.0)
              & (state.boat_order_dst[player] >= 0) & arrays.shore.ravel()[dst])
        index = (player, slot)

        def put(field, value):
            return field.at[index].set(jnp.where(go, value, field[index]))

        return state.replace(
            troops=state.troops.at[player].add(jnp.where(go, -troops, 0.0)),
            boat_troops=put(state.boat_troops, troops), boat_target=put(state.boat_target, target),
            boat_src=put(state.boat_src, src), boat_dst=put(state.boat_dst, dst),
            boat_launch=put(state.boat_launch, state.tick),
            boat_arrive=put(state.boat_arrive, state.tick + distance + 1))

    return jax.lax.fori_loop(0, count, one, state)


def step_boats(state: GameState, arrays: MapArrays, rules: Rules) -> GameState:
    """A tick's boat work, at its end: arrivals land, then this tick's orders launch. On a map without water
    (`MapArrays.water`, static) nothing can sail: only the orders are dropped, with no boat code compiled."""
    if not arrays.water:
        return _clear_orders(state)
    return launch_boats(land_boats(state, rules), arrays)
