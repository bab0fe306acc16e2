"""Cities and defense posts: building, effects, capture, and the defense-post cover."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxms import game, load_map
from jaxms.game.structures import CITY, DEFENSE_POST, build_structures, capture_structures, defense_cover

PLAINS = load_map("plains_64x48")
ARRAYS = game.map_arrays(PLAINS)
RULES = game.Rules()
build = jax.jit(build_structures, static_argnums=2)
capture = jax.jit(capture_structures)
cover = jax.jit(defense_cover, static_argnums=1)


def nation_and_tribe(gold=2_000_000.0):
    """A nation (player 1) owning the west 40 columns (1920 tiles) and a tribe (player 2) the rest."""
    state = game.new_game(jax.random.key(0), ARRAYS, ["nation", "tribe"], spawns=[(20, 24), (55, 24)])
    owner = np.zeros((48, 64), np.uint8)
    owner[:, :40], owner[:, 40:] = 1, 2
    state = game.set_territory(state, owner, ARRAYS, troops=[50_000, 10_000])
    return state.replace(gold=state.gold.at[1].set(gold), ai_rate=jnp.full_like(state.ai_rate, 60),
                         ai_phase=jnp.zeros_like(state.ai_phase), tick=jnp.int32(120))


def with_structure(state, slot, kind, owner, y, x, level=1, ready=0):
    return state.replace(structure_kind=state.structure_kind.at[slot].set(kind),
                         structure_owner=state.structure_owner.at[slot].set(owner),
                         structure_pos=state.structure_pos.at[slot].set(jnp.array([y, x])),
                         structure_level=state.structure_level.at[slot].set(level),
                         structure_ready=state.structure_ready.at[slot].set(ready))


def test_a_nation_with_gold_and_land_builds_a_city_on_its_own_land():
    state = nation_and_tribe()
    assert state.structure_kind.shape == (RULES.structures_per_nation,)
    after = build(state, jax.random.key(1), RULES)
    kinds = np.asarray(after.structure_kind)
    assert (kinds == CITY).sum() == 1 and (kinds != 0).sum() == 1
    y, x = np.asarray(after.structure_pos)[np.argmax(kinds == CITY)]
    assert np.asarray(after.owner)[y, x] == 1
    assert float(after.gold[1]) == 2_000_000 - RULES.city_cost_base
    assert int(after.structure_ready.max()) == 120 + RULES.city_build_ticks
    assert int(after.city_levels[1]) == 0, "not complete yet"
    done = capture(after.replace(tick=jnp.int32(120 + RULES.city_build_ticks)))
    assert int(done.city_levels[1]) == 1
    assert float(game.max_troops(done, RULES)[1]) > float(game.max_troops(after, RULES)[1])


def test_no_gold_no_building_and_small_nations_do_not_build():
    poor = build(nation_and_tribe(gold=100.0), jax.random.key(1), RULES)
    assert (np.asarray(poor.structure_kind) == 0).all()
    state = nation_and_tribe()
    owner = np.asarray(state.owner).copy()
    owner[:, 20:40] = 2  # 960 tiles: under one structure per 1,500 tiles, and no city to upgrade
    small = game.set_territory(state, owner, ARRAYS)
    assert (np.asarray(build(small, jax.random.key(1), RULES).structure_kind) == 0).all()


def test_a_nation_upgrades_its_city_when_it_has_enough_structures_for_its_size():
    state = with_structure(nation_and_tribe(), 0, CITY, 1, 24, 10)  # one structure, 1920 tiles
    after = build(state, jax.random.key(1), RULES)
    assert int(after.structure_level[0]) == 2 and (np.asarray(after.structure_kind) != 0).sum() == 1
    assert float(after.gold[1]) == 2_000_000 - 2 * RULES.city_cost_base


def test_captured_cities_change_hands_and_captured_posts_are_destroyed():
    state = nation_and_tribe()
    state = with_structure(state, 0, CITY, 1, 24, 38, level=2)
    state = with_structure(state, 1, DEFENSE_POST, 1, 10, 38)
    owner = np.asarray(state.owner).copy()
    owner[:, 36:40] = 2  # the tribe took both tiles
    state = game.set_territory(state, owner, ARRAYS).replace(ai_phase=jnp.full_like(state.ai_phase, 1))
    after = capture(state)
    assert int(after.structure_owner[0]) == 2 and int(after.structure_kind[0]) == CITY
    assert int(after.structure_kind[1]) == 0
    assert int(after.city_levels[2]) == 2 and int(after.city_levels[1]) == 0
    # On its next phase tick the tribe deletes what it captured.
    cleaned = capture(after.replace(ai_phase=jnp.zeros_like(state.ai_phase)))
    assert int(cleaned.structure_kind[0]) == 0


def test_defense_cover_is_the_owners_tiles_within_the_radius():
    state = nation_and_tribe()
    state = with_structure(state, 0, DEFENSE_POST, 1, 24, 35)
    state = with_structure(state, 1, DEFENSE_POST, 1, 5, 5, ready=10_000)  # still being built
    got = np.asarray(cover(state, RULES))
    ys, xs = np.mgrid[:48, :64]
    near = (ys - 24) ** 2 + (xs - 35) ** 2 <= RULES.defense_post_radius**2
    np.testing.assert_array_equal(got, near & (np.asarray(state.owner) == 1))
