"""The gymnasium VectorEnv wrapper: spaces and dtypes, action validation, seeding, same-step auto-reset with
final observations, faithfulness to the JAX env, action masks, and gymnasium's checks and wrappers."""

from __future__ import annotations

import gymnasium
import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import (
    check_reset_options,
    check_reset_return_type,
    check_reset_seed_determinism,
    data_equivalence,
)
from gymnasium.vector import AutoresetMode
from minimal_observer import MinimalObserver

from jaxms import load_map
from jaxms.env import make_env
from jaxms.env.vector import STEP_INFO_KEYS, JaxVectorEnv

NUM_ENVS = 3
MAX_STEPS = 3
WAIT = np.full(NUM_ENVS, 40)  # WAIT at the lowest intensity in every env


@pytest.fixture(scope="module")
def env():
    return make_env(load_map("plains_64x48"), num_bots=2, max_steps=MAX_STEPS, reset_pool_size=2,
                    observer=MinimalObserver())


@pytest.fixture(scope="module")
def envs(env):
    """One wrapper for the module: its reset and step compile once, every test re-seeds it."""
    return JaxVectorEnv(env, NUM_ENVS, seed=0)


def run(envs, seed, actions):
    """reset(seed) then one step per action batch: [(obs, infos), (obs, reward, term, trunc, infos), ...]."""
    out = [envs.reset(seed=seed)]
    out += [envs.step(a) for a in actions]
    return out


def test_constructor_is_validated(env):
    for bad in (0, -2, 2.5, True, "3", None):
        with pytest.raises(ValueError, match="num_envs must be an integer >= 1"):
            JaxVectorEnv(env, bad)
    with pytest.raises(ValueError, match="seed must be an integer"):
        JaxVectorEnv(env, 2, seed=1.5)
    with pytest.raises(TypeError, match="TerritoryEnv"):
        JaxVectorEnv("plains_64x48", 2)
    with pytest.raises(TypeError, match="EnvParams"):
        JaxVectorEnv(env, 2, params={"max_steps": 3})


def test_spaces(envs):
    assert envs.num_envs == NUM_ENVS
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert envs.single_action_space == gymnasium.spaces.Discrete(45)
    assert envs.action_space == gymnasium.spaces.MultiDiscrete([45] * NUM_ENVS)
    assert isinstance(envs.single_observation_space, gymnasium.spaces.Dict)
    for name, space in envs.observation_space.spaces.items():
        assert space.shape == (NUM_ENVS, *envs.single_observation_space[name].shape)
    assert "num_envs=3" in repr(envs)


def test_reset_and_step_return_numpy_in_the_spaces(envs):
    obs, infos = envs.reset(seed=1)
    assert infos == {}
    assert envs.observation_space.contains(obs)
    assert all(type(v) is np.ndarray and v.flags.writeable for v in obs.values())
    assert obs["map"].dtype == np.uint8 and obs["features"].dtype == np.float32
    assert obs["action_mask"].dtype == np.bool_ and obs["action_mask"].shape == (NUM_ENVS, 45)

    envs.action_space.seed(0)
    obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())
    assert envs.observation_space.contains(obs)
    assert all(type(v) is np.ndarray for v in obs.values())
    assert type(rewards) is np.ndarray and rewards.dtype == np.float32 and rewards.shape == (NUM_ENVS,)
    for flags in (terminations, truncations):
        assert type(flags) is np.ndarray and flags.dtype == np.bool_ and flags.shape == (NUM_ENVS,)
    assert not (terminations | truncations).any()  # step 1 of 3: nothing ends
    assert set(infos) == {*STEP_INFO_KEYS, *(f"_{k}" for k in STEP_INFO_KEYS)}
    for key in STEP_INFO_KEYS:
        assert type(infos[key]) is np.ndarray and infos[key].shape == (NUM_ENVS,)
        assert infos[f"_{key}"].dtype == np.bool_ and infos[f"_{key}"].all()
    share = infos["land_share"]
    assert share.dtype == np.float32 and ((share > 0) & (share < 1)).all()
    assert ((infos["rank"] >= 1) & (infos["rank"] <= 3)).all()
    assert not infos["invalid_action"].any()


def test_actions_are_validated_before_the_simulation_runs(envs):
    reference = run(envs, 2, [WAIT])
    envs.reset(seed=2)
    for bad, message in (([0, 45, 0], "0..44"), ([-1, 0, 0], "0..44"), ([0, 0], "expected 3 actions"),
                         (np.zeros((NUM_ENVS, 1), int), "expected 3 actions"), (7, "expected 3 actions"),
                         (np.zeros(NUM_ENVS), "integers"), ([0.0, 1.0, 2.0], "integers"),
                         (np.zeros(NUM_ENVS, bool), "integers")):
        with pytest.raises(ValueError, match=message):
            envs.step(bad)
    # The rejected calls neither advanced the games nor drew keys.
    assert data_equivalence(envs.step(WAIT), reference[1], exact=True)


def test_any_integer_dtype_is_accepted_without_recompiling(envs):
    envs.reset(seed=3)
    for actions in ([40, 41, 42], np.array([0, 5, 44], np.int64), np.array([1, 2, 3], np.uint8),
                    np.array([44, 43, 42], np.int32)):
        envs.step(actions)
    assert envs._step_fn._cache_size() == 1
    assert envs._reset_fn._cache_size() == 1


def test_same_seed_same_trajectory(envs):
    actions = [np.array([0, 12, 40]), np.array([22, 44, 7]), WAIT, np.array([3, 30, 17])]  # ends at step 3
    first = run(envs, 5, actions)
    second = run(envs, 5, actions)
    assert data_equivalence(first, second, exact=True)
    # Another seed, or a reset without one (the key moves on), starts differently.
    other = envs.reset(seed=6)[0]
    again = envs.reset()[0]
    assert not data_equivalence(first[0][0], other, exact=True)
    assert not data_equivalence(other, again, exact=True)
    # The constructor's seed sets the key as reset(seed=...) does.
    np.testing.assert_array_equal(jax.random.key_data(JaxVectorEnv(envs.env, NUM_ENVS, seed=5)._key),
                                  jax.random.key_data(jax.random.key(5)))


def test_truncation_after_max_steps_resets_in_the_same_step(envs):
    envs.reset(seed=4)
    total = np.zeros(NUM_ENVS, np.float32)
    for _ in range(MAX_STEPS - 1):
        obs, rewards, terminations, truncations, infos = envs.step(WAIT)
        total += rewards
        assert not (terminations | truncations).any() and "final_obs" not in infos and "episode" not in infos
    obs, rewards, terminations, truncations, infos = envs.step(WAIT)
    total += rewards
    assert truncations.all() and not terminations.any()

    # The terminal observations are in final_obs; the returned ones start the next episode.
    assert infos["_final_obs"].all() and infos["final_obs"].dtype == object
    pool = jax.device_get(envs.params.pool_obs)
    for i in range(NUM_ENVS):
        final = infos["final_obs"][i]
        assert envs.single_observation_space.contains(final)
        returned = {name: value[i] for name, value in obs.items()}
        assert any(data_equivalence(returned, {k: v[j] for k, v in pool.items()}, exact=True)
                   for j in range(len(pool["map"]))), "the returned observation is not a start position"
        assert final["features"][3] > returned["features"][3]  # the terminal game is MAX_STEPS steps older

    # The ended step's info moved to final_info; the top-level masks are off for the ended envs.
    assert infos["_final_info"].all()
    for key in STEP_INFO_KEYS:
        assert infos["final_info"][f"_{key}"].all() and not infos[f"_{key}"].any()
    episode = infos["episode"]
    assert infos["_episode"].all()
    np.testing.assert_array_equal(episode["l"], MAX_STEPS)
    np.testing.assert_allclose(episode["r"], total, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(episode["share"], infos["final_info"]["land_share"])
    assert not episode["won"].any()

    # The next episode counts from zero again.
    obs, rewards, terminations, truncations, infos = envs.step(WAIT)
    assert not (terminations | truncations).any() and "final_obs" not in infos


def test_faithful_to_the_jax_env(envs, env):
    """reset and every step, through an auto-reset, equal calling the JAX env directly with the keys the
    wrapper documents (`key, sub = split(key); keys = split(sub, num_envs)`)."""
    seed = 11
    actions = [np.array([0, 22, 44]), np.array([7, 40, 13]), np.array([31, 2, 44]), np.array([5, 18, 40])]
    (obs, _), *steps = run(envs, seed, actions)
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))

    key = jax.random.key(seed)
    key, sub = jax.random.split(key)
    ref_obs, state = reset(jax.random.split(sub, NUM_ENVS), env.default_params)
    assert data_equivalence(obs, jax.device_get(ref_obs), exact=True)
    np.testing.assert_array_equal(obs["action_mask"], np.repeat(np.asarray(state.legal), 5, axis=1))
    for t, (action, (obs, rewards, terminations, truncations, infos)) in enumerate(zip(actions, steps,
                                                                                       strict=True)):
        key, sub = jax.random.split(key)
        ref_obs, state, ref_reward, _, ref_info = step(jax.random.split(sub, NUM_ENVS), state,
                                                       action.astype(np.int32), env.default_params)
        ref_obs, ref_reward, ref_info = jax.device_get((ref_obs, ref_reward, ref_info))
        assert data_equivalence(obs, ref_obs, exact=True), f"step {t}"
        np.testing.assert_array_equal(rewards, ref_reward)
        np.testing.assert_array_equal(terminations, ref_info["terminated"])
        np.testing.assert_array_equal(truncations, ref_info["truncated"])
        for name in STEP_INFO_KEYS:
            np.testing.assert_array_equal(infos[name], ref_info[name], err_msg=name)
        done = ref_info["terminated"] | ref_info["truncated"]
        assert ("final_obs" in infos) == done.any() == (t == MAX_STEPS - 1)
        for i in np.flatnonzero(done):
            ref_final = {name: value[i] for name, value in ref_info["final_observation"].items()}
            assert data_equivalence(infos["final_obs"][i], ref_final, exact=True)
            assert infos["episode"]["r"][i] == ref_info["returned_episode_returns"][i]
    np.testing.assert_array_equal(envs.action_masks(), np.repeat(np.asarray(state.legal), 5, axis=1))


def test_action_masks(envs):
    obs, _ = envs.reset(seed=7)
    for _ in range(MAX_STEPS + 1):  # across an auto-reset too
        masks = envs.action_masks()
        assert masks.dtype == np.bool_ and masks.shape == (NUM_ENVS, 45)
        assert masks[:, 40:45].all()  # WAIT is always legal
        np.testing.assert_array_equal(masks, obs["action_mask"])
        masks[:] = False  # a copy: the caller may modify it
        assert envs.action_masks()[:, 40:].all()
        obs, *_ = envs.step(WAIT)


def test_gymnasium_checks(envs):
    """gymnasium's `check_env` accepts only single envs; its reset checks apply to vector envs as they are,
    and the data-not-reused check (which needs scalar flags) is repeated here for the batch."""
    check_reset_return_type(envs)
    check_reset_seed_determinism(envs)
    check_reset_options(envs)
    with pytest.raises(ValueError, match="no options"):
        envs.reset(options={"map": "other"})
    first = envs.reset(seed=123)
    assert data_equivalence(first, envs.reset(seed=123), exact=True)

    calls = [envs.reset(seed=8)]
    for _ in range(MAX_STEPS):
        obs, _, _, _, infos = envs.step(WAIT)
        calls.append((obs, infos))
    calls.append(envs.reset(seed=8))
    for i, (obs_1, info_1) in enumerate(calls):
        for obs_2, info_2 in calls[i + 1:]:
            assert not data_shares_objects(obs_1, obs_2) and not data_shares_objects(info_1, info_2)


def data_shares_objects(first, second) -> bool:
    """Any array of `first` shares memory with one of `second` (gymnasium 1.4's check, which gymnasium 1.3 —
    the newest gymnax allows — lacks)."""

    def arrays(data):
        if isinstance(data, dict):
            return [a for value in data.values() for a in arrays(value)]
        if isinstance(data, list | tuple):
            return [a for value in data for a in arrays(value)]
        return [data] if isinstance(data, np.ndarray) else []

    return any(np.shares_memory(a, b) for a in arrays(first) for b in arrays(second))


def test_gymnasium_vector_wrappers_understand_the_infos(envs):
    stats = gymnasium.wrappers.vector.RecordEpisodeStatistics(envs, stats_key="gym_episode")
    stats.reset(seed=9)
    for _ in range(MAX_STEPS):
        *_, infos = stats.step(WAIT)
    np.testing.assert_allclose(infos["gym_episode"]["r"], infos["episode"]["r"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(infos["gym_episode"]["l"], infos["episode"]["l"])

    listed = gymnasium.wrappers.vector.DictInfoToList(envs)
    listed.reset(seed=9)
    for _ in range(MAX_STEPS):
        *_, infos = listed.step(WAIT)
    assert isinstance(infos, list) and len(infos) == NUM_ENVS
    for info in infos:
        assert set(info) == {"final_obs", "final_info", "episode"}
        assert set(info["final_info"]) == set(STEP_INFO_KEYS) and info["episode"]["l"] == MAX_STEPS


def test_lifecycle_errors(env):
    fresh = JaxVectorEnv(env, 2)
    with pytest.raises(RuntimeError, match="reset"):
        fresh.step([40, 40])
    with pytest.raises(RuntimeError, match="reset"):
        fresh.action_masks()
    with pytest.raises(NotImplementedError, match="render"):
        fresh.render()
    fresh.close()
    fresh.close()  # closing twice is allowed
    assert fresh.closed
    for call in (fresh.reset, lambda: fresh.step([40, 40]), fresh.action_masks):
        with pytest.raises(RuntimeError, match="closed"):
            call()
