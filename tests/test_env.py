"""The RL environment: API and spaces, directional actions and masks, reward, termination vs truncation,
auto-reset, determinism, vmap, and errors at construction."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from minimal_observer import MinimalObserver
from pytrees import leaves

from jaxms import game, load_map
from jaxms.env import DIRECTION_NAMES, NUM_ACTIONS, check_action, make_env
from jaxms.game import stats

PLAINS = load_map("plains_64x48")
ENV = make_env(PLAINS, num_bots=2, max_steps=5, reset_pool_size=4, observer=MinimalObserver())
PARAMS = ENV.default_params
reset = jax.jit(ENV.reset)
step = jax.jit(ENV.step)
step_env = jax.jit(ENV.step_env)


def action(direction: str, intensity: int = 1) -> jnp.ndarray:
    return jnp.int32(DIRECTION_NAMES.index(direction) * 5 + intensity)


def alone_in_the_middle(block=(slice(20, 28), slice(28, 36))):
    """The agent owns an 8x8 block in the middle of an empty plains map; both bots own one far tile each."""
    _, state = reset(jax.random.key(0), PARAMS)
    owner = np.zeros((48, 64), np.uint8)
    owner[block] = 1
    owner[0, 0], owner[47, 63] = 2, 3
    g = game.set_territory(state.game, owner, ENV.arrays, troops=[50_000, 100, 100])
    g = g.replace(ai_rate=jnp.full_like(g.ai_rate, 10_000), ai_phase=jnp.full_like(g.ai_phase, 9_999))
    targets, legal, centre = jax.jit(lambda g: game_directions(g))(g)
    return state.replace(game=g, targets=targets, legal=legal, centre=centre)


def game_directions(g):
    from jaxms.env.actions import direction_targets

    return direction_targets(g, ENV.arrays, 1)


def test_spaces_and_shapes():
    obs, state = reset(jax.random.key(0), PARAMS)
    assert ENV.action_space(PARAMS).n == NUM_ACTIONS == 45
    space = ENV.observation_space(PARAMS)
    assert space.contains(jax.device_get(obs))
    obs, state, reward, done, info = step(jax.random.key(1), state, action("WAIT"), PARAMS)
    assert space.contains(jax.device_get(obs))
    assert reward.dtype == jnp.float32 and done.dtype == jnp.bool_
    assert {"terminated", "truncated", "final_observation", "invalid_action", "returned_episode_returns",
            "land_share", "rank"} <= set(info)
    assert space.nbytes == sum(np.asarray(v).nbytes for v in obs.values())


@pytest.mark.parametrize("shape", [(16, 5), (37, 23), (64, 64)])
def test_the_territory_centre_is_the_mean_position_of_the_players_tiles(shape):
    """`territory_centre`'s packed per-group sums (a count and a sum of rows in one uint16 word) are exact:
    whole columns owned (16 tiles and rows 0 + ... + 15 in a group), heights that 16 does not divide, random
    territories and none at all."""
    from jaxms.env.actions import territory_centre

    rng = np.random.default_rng(sum(shape))
    grids = [np.ones(shape, np.uint8), rng.integers(0, 3, shape).astype(np.uint8), np.zeros(shape, np.uint8)]
    for owner in grids:
        centre, tiles = jax.jit(territory_centre, static_argnums=1)(jnp.asarray(owner), 1)
        ys, xs = np.nonzero(owner == 1)
        assert int(tiles) == len(ys)
        expected = (ys.mean(), xs.mean()) if len(ys) else (0.0, 0.0)
        np.testing.assert_allclose(np.asarray(centre), expected, rtol=1e-6)


def test_wait_is_always_legal_and_a_direction_without_border_is_masked():
    state = alone_in_the_middle(block=(slice(20, 28), slice(0, 8)))  # touching the west edge
    legal = np.asarray(state.legal)
    assert legal[DIRECTION_NAMES.index("WAIT")]
    assert not legal[DIRECTION_NAMES.index("W")], "nothing to attack west of the map's edge"
    assert legal[DIRECTION_NAMES.index("E")] and legal[DIRECTION_NAMES.index("N")]
    mask = np.asarray(ENV.observer.init(state.game, ENV.arrays, jnp.repeat(state.legal, 5))[0]["action_mask"])
    assert mask.reshape(9, 5)[:, 0].tolist() == legal.tolist() and mask.reshape(9, 5).all(1).tolist() == \
        legal.tolist()


def test_north_and_south_attacks_take_different_tiles():
    state = alone_in_the_middle()
    taken = {}
    for direction in ("N", "S", "E", "W"):
        _, after, *_ = step_env(jax.random.key(0), state, action(direction, 2), PARAMS)
        new = (np.asarray(after.game.owner) == 1) & (np.asarray(state.game.owner) != 1)
        assert new.sum() > 20, f"the {direction} attack takes land"
        ys, xs = np.nonzero(new)
        taken[direction] = (ys.mean() - 23.5, xs.mean() - 31.5)
    assert taken["N"][0] < -2 < 2 < taken["S"][0], taken
    assert taken["W"][1] < -2 < 2 < taken["E"][1], taken


def test_a_direction_attacks_whoever_owns_that_side():
    owner_block = (slice(20, 28), slice(28, 36))
    state = alone_in_the_middle(owner_block)
    owner = np.asarray(state.game.owner).copy()
    owner[:, 36:] = 2  # the bot holds everything east of the agent
    g = game.set_territory(state.game, owner, ENV.arrays, troops=[50_000, 5_000, 100])
    targets, legal, centre = jax.jit(game_directions)(g)
    east, west = DIRECTION_NAMES.index("E"), DIRECTION_NAMES.index("W")
    assert int(targets[east]) == 2 and int(targets[west]) == 0
    state = state.replace(game=g, targets=targets, legal=legal, centre=centre)
    _, after, *_ = step_env(jax.random.key(0), state, action("E", 2), PARAMS)
    assert float(after.game.attacks[1, 2]) > 0 or int(after.game.tiles[2]) < int(g.tiles[2])


def test_out_of_range_actions_are_clipped_inside_jit_and_rejected_from_python():
    _obs, state = reset(jax.random.key(0), PARAMS)
    _, _, _, _, info = step(jax.random.key(1), state, jnp.int32(99), PARAMS)
    assert bool(info["invalid_action"])
    with pytest.raises(ValueError, match=r"0\.\.44"):
        check_action(np.array([3, 45]))
    with pytest.raises(ValueError, match="integers"):
        check_action(np.array([0.5]))
    with pytest.raises(ValueError, match="expected 2 actions"):
        check_action(np.array([1, 2, 3]), num_envs=2)


def test_truncation_is_not_termination_and_the_env_auto_resets():
    obs, state = reset(jax.random.key(0), PARAMS)
    for i in range(5):
        obs, state, _reward, done, info = step(jax.random.key(i), state, action("WAIT"), PARAMS)
    assert bool(done) and bool(info["truncated"]) and not bool(info["terminated"])
    assert int(state.steps) == 0 and int(info["returned_episode_lengths"]) == 5
    assert int(state.game.tick) == 0, "the next episode starts at a fresh game"
    pool_owner = np.asarray(PARAMS.pool_states.game.owner)
    assert any((np.asarray(state.game.owner) == o).all() for o in pool_owner), "started from the pool"
    # The final observation is the one before the reset, not the new episode's.
    assert not (np.asarray(info["final_observation"]["map"]) == np.asarray(obs["map"])).all()


def test_a_timed_game_ends_lost_at_the_limit_and_shows_the_time_left():
    from jaxms.env.observe import FEATURE_NAMES, NUM_FEATURES

    env = make_env(PLAINS, num_bots=2, max_steps=4, reset_pool_size=2, time_limit="lose", obs="single")
    env_step = jax.jit(env.step)
    obs, state = jax.jit(env.reset)(jax.random.key(0), env.default_params)
    time_feature = FEATURE_NAMES.index("time")

    def times(o):  # the time feature of each stacked frame, oldest first
        return np.asarray(o["features"]).reshape(-1, NUM_FEATURES)[:, time_feature]

    np.testing.assert_allclose(times(obs), 0.0)
    for i in range(4):
        obs, state, reward, done, info = env_step(jax.random.key(i), state, action("WAIT"),
                                                  env.default_params)
        if i < 3:
            assert not bool(done)
            assert times(obs)[-1] == pytest.approx((i + 1) / 4) and times(obs)[-2] == pytest.approx(i / 4)
    # The 4th step ends the game: terminated (nothing to bootstrap), lost, and the next game starts at 0.
    assert bool(done) and bool(info["terminated"]) and not bool(info["truncated"]) and not bool(info["won"])
    assert float(reward) == pytest.approx(float(env.default_params.loss_reward))
    assert times(info["final_observation"])[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(times(obs), 0.0)
    # The default keeps the game's own clock (tick / Rules.max_ticks) and truncates.
    assert ENV.time_limit == "truncate"
    with pytest.raises(ValueError, match="use one of truncate, lose"):
        make_env(PLAINS, time_limit="end")


def test_dying_terminates_with_the_loss_reward():
    state = alone_in_the_middle()
    g = game.set_territory(state.game, np.where(np.asarray(state.game.owner) == 1, 0,
                                                np.asarray(state.game.owner)), ENV.arrays)
    _, _, reward, terminated, truncated, info = step_env(jax.random.key(0), state.replace(game=g),
                                                          action("WAIT"), PARAMS)
    assert bool(terminated) and not bool(truncated) and bool(info["dead"])
    assert float(reward) == pytest.approx(float(PARAMS.loss_reward))


def test_the_default_reward_is_the_scaled_change_in_land_share():
    state = alone_in_the_middle()
    _, after, reward, *_ = step_env(jax.random.key(0), state, action("E", 3), PARAMS)
    gained = (int(after.game.tiles[1]) - int(state.game.tiles[1])) / PLAINS.num_land_tiles
    assert gained > 0
    assert float(reward) == pytest.approx(float(PARAMS.share_scale) * gained, rel=1e-4)


def test_rank_reward_option():
    """The step's `outcome` seam with reward="rank" (ENV's settings otherwise: its pool's reset program is
    ENV's, served by the compilation cache, and only the outcome compiles)."""
    env = make_env(PLAINS, num_bots=2, max_steps=5, reset_pool_size=4, reward="rank",
                   observer=MinimalObserver())
    params = env.default_params
    state = alone_in_the_middle()
    outcome = jax.jit(lambda before, after: env.outcome(before, after, env.map_arrays(params), 1, params))
    reward, terminated, _, info = outcome(state.game, state.game)
    rank = float(stats.rank(state.game, 1))
    assert rank == 1.0 == float(info["rank"]) and not bool(terminated)  # the agent holds the most land
    assert float(reward) == pytest.approx(float(params.rank_scale))  # first of 3: the whole rank scale


def test_same_key_same_episode_and_vmap_matches_single_envs():
    keys = jax.random.split(jax.random.key(7), 3)
    # Jitted: op by op, the vmapped reset and step took longer than compiling them.
    _obs, states = jax.jit(jax.vmap(ENV.reset, in_axes=(0, None)))(keys, PARAMS)
    actions = jnp.array([action("N", 4), action("E", 0), action("WAIT")])
    batched = jax.jit(jax.vmap(ENV.step, in_axes=(0, 0, 0, None)))(keys, states, actions, PARAMS)
    for i in range(3):
        _, single = reset(keys[i], PARAMS)
        one = step(keys[i], single, actions[i], PARAMS)
        again = step(keys[i], single, actions[i], PARAMS)
        in_batch = jax.tree.map(lambda x, i=i: x[i], batched)
        for a, b, c in zip(leaves(one), leaves(again), leaves(in_batch), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            np.testing.assert_array_equal(np.asarray(a), np.asarray(c))


def test_bad_construction_is_rejected_with_what_is_accepted():
    small = load_map("plains_32")
    with pytest.raises(ValueError, match="no room for"):  # found when the start positions are made
        _ = make_env(small, num_bots=40, reset_pool_size=1, obs="single").default_params
    with pytest.raises(ValueError, match="ticks_per_step must be an integer >= 1"):
        make_env(small, ticks_per_step=0)
    with pytest.raises(ValueError, match="reward='score' is not accepted: use one of share, rank"):
        make_env(small, reward="score")
    with pytest.raises(ValueError, match="exceed the maximum"):
        make_env(small, num_bots=300)
