"""The map as an argument: one compiled step serves every map of a shape, and a pool of maps per env."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from minimal_observer import MinimalObserver

from jaxms import load_map
from jaxms.env import make_env
from jaxms.maps import MapError, load_maps, pool_specs


def test_two_maps_of_one_shape_share_one_compiled_step():
    first, second = load_map("continents_256_s1"), load_map("islands_256_s2")
    env = make_env(first, num_bots=2, reset_pool_size=2, observer=MinimalObserver())
    params_first = env.default_params
    params_second = env.make_params(jax.random.key(1), game_maps=[second])
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    wait = jnp.int32(40)
    results = []
    for params, game_map in ((params_first, first), (params_second, second)):
        obs, state = reset(jax.random.key(0), params)
        obs, state, *_ = step(jax.random.key(1), state, wait, params)
        owned = np.asarray(state.game.owner) > 0
        assert not (owned & ~game_map.land).any(), f"{game_map.name}: a player owns water of its own map"
        results.append(np.asarray(obs["map"]))
    assert reset._cache_size() == 1 and step._cache_size() == 1, "a second map of the same shape recompiled"
    assert not np.array_equal(*results), "both maps gave the same observation: the map was not an argument"


def test_a_pool_draws_each_episode_from_several_maps():
    maps = load_maps("continents_64_s0-3")
    assert [m.name for m in maps] == ["continents_64", *(f"continents_64_s{seed}" for seed in (1, 2, 3))]
    env = make_env(maps, num_bots=1, max_steps=2, reset_pool_size=8, observer=MinimalObserver())
    params = env.default_params
    assert params.maps.num_maps == 4 and params.pool_states.map_index.shape == (8,)
    keys = jax.random.split(jax.random.key(0), 32)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    drawn = np.asarray(states.map_index)
    assert len(set(drawn.tolist())) >= 3, f"32 resets drew maps {sorted(set(drawn.tolist()))} only"
    owners = np.asarray(states.game.owner)
    for owner, index in zip(owners, drawn, strict=True):
        assert not ((owner > 0) & ~maps[index].land).any(), "a spawn on water: the game used another map"
    # Auto-reset restarts from pool positions, on the map each position was made on.
    step = jax.jit(env.step)
    _, state = jax.jit(env.reset)(jax.random.key(3), params)
    seen = set()
    for i in range(12):
        _, state, *_ = step(jax.random.key(i), state, jnp.int32(40), params)
        owner = np.asarray(state.game.owner)
        assert not ((owner > 0) & ~maps[int(state.map_index)].land).any()
        seen.add(int(state.map_index))
    assert len(seen) >= 2, "episodes after auto-reset all played one map"


def test_pool_specs_and_their_errors():
    assert pool_specs("australia@16x+pangaea@16x") == ["australia@16x", "pangaea@16x"]
    assert pool_specs("islands_96x64_s3-5~48x32") == ["islands_96x64_s3~48x32", "islands_96x64_s4~48x32",
                                                      "islands_96x64_s5~48x32"]
    with pytest.raises(MapError, match="must share one shape"):
        load_maps("continents_64+plains_32")
    with pytest.raises(MapError, match="must run upwards"):
        pool_specs("continents_64_s9-3")
    with pytest.raises(MapError, match="empty map spec"):
        pool_specs("continents_64+")
    env = make_env("plains_32", num_bots=1, observer=MinimalObserver())
    with pytest.raises(ValueError, match="this env plays 32x32 maps"):
        env.make_params(jax.random.key(0), game_maps=[load_map("plains_64x48")])
