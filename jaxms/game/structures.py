"""Cities and defense posts (engine §6) as fixed-capacity structure arrays, and the nations' builder.

A game has `S` structure slots (`GameState.structure_*`, S fixed when the game is made: a few per nation).
A slot is empty (kind 0), a city or a defense post, with an owner, a tile, a level and the tick its
construction completes. Effects:
- completed city levels raise their owner's max troops (`GameState.city_levels`, summed per owner);
- a completed defense post makes its owner's tiles within radius 30 cost x3 budget and x5 attacker losses
  (`defense_cover`; the conquest marks the same tiles in its grids, `conquest.cover_board`);
- a captured city changes hands; a captured defense post is destroyed; a tribe deletes what it captured.

Nations build on their phase tick and at 1/3 and 2/3 of their interval: cities first, then a defense post
for every four cities; above one structure per 1,500 tiles they upgrade their smallest city instead.
Placement is sampled: 32 random points near the nation's spawn within its territory's radius, the first
that is its own land and 15+ tiles from every structure wins (no full pass over the map). Ports, factories,
silos and SAMs (which need boats, trade or nukes) are not modelled; each would be one more kind in the
same arrays with its own effect function.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxms.game.rules import PlayerKind, Rules
from jaxms.game.state import GameState

EMPTY, CITY, DEFENSE_POST = 0, 1, 2
_CANDIDATES = 32  # placement points tried per build


def city_levels(state: GameState) -> jax.Array:
    """int32[P + 1]: completed city levels per owner."""
    done = (state.structure_kind == CITY) & (state.structure_ready <= state.tick)
    levels = jnp.where(done, state.structure_level, 0)
    return jax.ops.segment_sum(levels, state.structure_owner.astype(jnp.int32),
                               num_segments=state.troops.shape[0]).astype(jnp.int32)


def capture_structures(state: GameState) -> GameState:
    """After conquest: cities follow their tile's owner; defense posts whose tile changed hands are destroyed;
    structures a tribe captured are deleted on that tribe's decision tick (the engine's tribes do so)."""
    if state.structure_kind.shape[0] == 0:
        return state
    y, x = state.structure_pos[:, 0], state.structure_pos[:, 1]
    tile_owner = state.owner_at(y, x)
    captured = (state.structure_kind != EMPTY) & (tile_owner != state.structure_owner)
    owner = jnp.where(captured, tile_owner, state.structure_owner)
    new_kind = state.kind[owner.astype(jnp.int32)]
    on_phase = state.tick % jnp.maximum(state.ai_rate, 1) == state.ai_phase
    tribe_cleans = (new_kind == PlayerKind.TRIBE) & on_phase[owner.astype(jnp.int32)]
    # A structure on a tile that became unowned (annihilation leaves none, but keep it safe) is lost too.
    removed = ((captured & (state.structure_kind == DEFENSE_POST)) | tribe_cleans | (owner == 0))
    kind = jnp.where(removed, EMPTY, state.structure_kind).astype(state.structure_kind.dtype)
    state = state.replace(structure_kind=kind, structure_owner=jnp.where(removed, 0, owner).astype(jnp.uint8))
    return state.replace(city_levels=city_levels(state))


def active_defense_posts(state: GameState) -> jax.Array:
    """bool[S]: the slots holding a completed defense post (the only ones that protect)."""
    return (state.structure_kind == DEFENSE_POST) & (state.structure_ready <= state.tick)


def defense_cover(state: GameState, rules: Rules) -> jax.Array:
    """bool[H, W]: tiles within `defense_post_radius` of a completed defense post of the tile's owner.

    One fixed-size window per slot (2r + 1 square), so the cost is S (2r + 1)^2, not S x H x W. (The
    conquest marks the same tiles in its own grids: `conquest.cover_board`.)
    """
    height, width = state.height, state.width
    radius = rules.defense_post_radius
    size = 2 * radius + 1
    offsets = jnp.arange(size) - radius
    disk = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2
    padded_owner = jnp.pad(state.owner, radius, constant_values=0)
    active = active_defense_posts(state)

    def add(slot, cover):
        y, x = state.structure_pos[slot, 0], state.structure_pos[slot, 1]
        window = jax.lax.dynamic_slice(padded_owner, (y, x), (size, size))
        hit = disk & (window == state.structure_owner[slot]) & active[slot]
        old = jax.lax.dynamic_slice(cover, (y, x), (size, size))
        return jax.lax.dynamic_update_slice(cover, old | hit, (y, x))

    cover = jnp.zeros((height + 2 * radius, width + 2 * radius), bool)
    cover = jax.lax.fori_loop(0, state.structure_kind.shape[0], add, cover)
    return cover[radius:radius + height, radius:radius + width]


def build_structures(state: GameState, key: jax.Array, rules: Rules) -> GameState:
    """Nations whose build tick it is buy their next structure if their gold allows (see module doc)."""
    num_slots_s = state.structure_kind.shape[0]
    if num_slots_s == 0:
        return state
    num_slots = state.troops.shape[0]
    players = jnp.arange(num_slots)
    rate = jnp.maximum(state.ai_rate, 1)
    since_phase = (state.tick - state.ai_phase) % rate
    build_tick = (since_phase == 0) | (since_phase == rate // 3) | (since_phase == (2 * rate) // 3)
    builder = (state.kind == PlayerKind.NATION) & state.alive & build_tick

    owner = state.structure_owner.astype(jnp.int32)
    used = state.structure_kind != EMPTY
    count = lambda kind, value: jax.ops.segment_sum(  # noqa: E731
        jnp.where(state.structure_kind == kind, value, 0), owner, num_segments=num_slots)
    cities = count(CITY, 1)
    levels = count(CITY, state.structure_level)
    posts = count(DEFENSE_POST, 1)
    upgrade = (cities + posts + 1) * rules.tiles_per_structure > state.tiles
    want_post = ~upgrade & (posts + 1 <= rules.defense_posts_per_city * cities)
    city_cost = jnp.minimum(rules.city_cost_max, rules.city_cost_base * 2.0 ** levels.astype(jnp.float32))
    post_cost = jnp.minimum(rules.defense_post_cost_max, rules.defense_post_cost_step * (posts + 1.0))
    cost = jnp.where(want_post, post_cost, city_cost)
    afford = builder & (state.gold >= cost) & (~upgrade | (cities > 0))

    # Upgrades: the smallest city of each upgrading nation (the first such slot) gains a level.
    slot_ids = jnp.arange(num_slots_s)
    smallest = jnp.where(state.structure_kind == CITY, state.structure_level, jnp.iinfo(jnp.int32).max)
    is_smallest = (state.structure_kind == CITY) & (
        smallest == jax.ops.segment_min(smallest, owner, num_segments=num_slots)[owner])
    first = jax.ops.segment_min(jnp.where(is_smallest, slot_ids, num_slots_s), owner, num_segments=num_slots)
    first_smallest = slot_ids == first[owner]
    upgrading = afford & upgrade
    level = state.structure_level + (first_smallest & upgrading[owner]).astype(jnp.int32)

    # New structures: sample placements near each builder's spawn.
    height, width = state.height, state.width
    k_angle, k_radius = jax.random.split(key)
    reach = jnp.sqrt(state.tiles.astype(jnp.float32) / jnp.pi) + 2.0
    angle = jax.random.uniform(k_angle, (num_slots, _CANDIDATES), maxval=2 * jnp.pi)
    radius = jnp.sqrt(jax.random.uniform(k_radius, (num_slots, _CANDIDATES))) * reach[:, None]
    cy = jnp.clip(jnp.round(state.spawn[:, 0:1] + radius * jnp.sin(angle)), 0, height - 1).astype(jnp.int32)
    cx = jnp.clip(jnp.round(state.spawn[:, 1:2] + radius * jnp.cos(angle)), 0, width - 1).astype(jnp.int32)
    own = state.owner_at(cy, cx) == players[:, None]
    gap = ((cy[..., None] - state.structure_pos[None, None, :, 0]) ** 2
           + (cx[..., None] - state.structure_pos[None, None, :, 1]) ** 2)
    far = jnp.all(~used[None, None, :] | (gap >= rules.structure_min_distance**2), axis=-1)
    good = own & far
    choice = jnp.argmax(good, axis=1)
    placed = afford & ~upgrade & good.any(axis=1)
    # Free slots go to the placing nations in id order.
    rank = jnp.cumsum(placed) - 1
    free_order = jnp.argsort(used, stable=True)  # free slots first
    num_free = (~used).sum()
    slot = jnp.where(placed & (rank < num_free), free_order[jnp.clip(rank, 0, num_slots_s - 1)], num_slots_s)
    placed = slot < num_slots_s
    build_time = jnp.where(want_post, rules.defense_post_build_ticks, rules.city_build_ticks)
    set_at = lambda array, values: array.at[slot].set(values, mode="drop")  # noqa: E731
    pos = jnp.stack([cy[players, choice], cx[players, choice]], axis=-1)
    state = state.replace(
        structure_kind=set_at(state.structure_kind,
                              jnp.where(want_post, DEFENSE_POST, CITY).astype(jnp.int8)),
        structure_owner=set_at(state.structure_owner, players.astype(jnp.uint8)),
        structure_pos=state.structure_pos.at[slot].set(pos, mode="drop"),
        structure_level=set_at(level, jnp.ones(num_slots, jnp.int32)),
        structure_ready=set_at(state.structure_ready, state.tick + build_time),
        gold=state.gold - jnp.where(placed | upgrading, cost, 0.0))
    return state.replace(city_levels=city_levels(state))
