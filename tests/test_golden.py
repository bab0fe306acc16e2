"""Golden behaviour: the same seed plays the same games and trains the same parameters as recorded.

Recorded on the code before the configuration / env-seams refactor (issue 13) so that refactors that should
not change behaviour are proven not to. Integer and boolean arrays (views, masks, the owner grid, tiles,
dones) are hashed exactly; float arrays (features, rewards, troops) are compared by their sums and sums of
absolute values with a tolerance, since a refactor may reorder float operations by an ulp (the map's land
count as an argument instead of a constant does). The trained parameters are compared by per-leaf sums.

Re-record (only for an intended behaviour change, and say so in the commit):
    JAX_PLATFORMS=cpu python tests/test_golden.py --record
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

GOLDEN = Path(__file__).with_name("golden.json")
STEPS = 50
# (map spec, bots, observation mode): a single-scale plains game and a multi-scale continents game.
GAMES = (("plains_64x48", 2, "single"), ("continents_96", 4, "multi"))
GAME_FIELDS = ("owner", "troops", "gold", "tiles", "alive", "attacks", "frontier_age", "tick", "winner")


def _digest(values) -> dict:
    """{"exact": hash of the integer and boolean arrays, "floats": [sum, sum of |x|] of the float arrays}."""
    sha = hashlib.sha256()
    total, magnitude = 0.0, 0.0
    for value in values:
        array = np.ascontiguousarray(np.asarray(value))
        if array.dtype.kind == "f":
            total += float(array.astype(np.float64).sum())
            magnitude += float(np.abs(array.astype(np.float64)).sum())
        else:
            sha.update(str(array.dtype).encode() + str(array.shape).encode() + array.tobytes())
    return {"exact": sha.hexdigest()[:16], "floats": [total, magnitude]}


def play(spec: str, bots: int, obs_mode: str) -> dict[str, dict]:
    """Hashes of 50 steps of random legal actions (same key, same game): obs, rewards, game state."""
    from jaxms.env import make_env

    env = make_env(spec, num_bots=bots, obs=obs_mode, max_steps=30, reset_pool_size=4, seed=3)
    params = env.default_params
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    obs, state = reset(jax.random.key(11), params)
    key = jax.random.key(12)
    observations, rewards, games = [], [], []
    for _ in range(STEPS):
        key, act_key, step_key = jax.random.split(key, 3)
        action = jax.random.categorical(act_key, jnp.where(obs["action_mask"], 0.0, -1e9)).astype(jnp.int32)
        obs, state, reward, done, _info = step(step_key, state, action, params)
        observations.extend(obs[name] for name in sorted(obs))
        rewards.extend([reward, done])
        games.extend(getattr(state.game, name) for name in GAME_FIELDS)
    return {"observations": _digest(observations), "rewards": _digest(rewards), "games": _digest(games)}


def train_two_updates() -> dict[str, list[float]]:
    """Per-leaf (sum, sum of squares) of the parameters after two PPO updates on a tiny run."""
    from jaxms.env import make_env
    from jaxms.nn import NetworkConfig, make_network
    from jaxms.ppo import PPOConfig, make_train

    env = make_env("plains_32", num_bots=1, obs="single", max_steps=5, reset_pool_size=2)
    network = make_network(NetworkConfig(obs="single", width=0.125, heads=1))
    config = PPOConfig(num_envs=2, n_steps=8, batch_size=8, update_epochs=2, total_timesteps=32,
                       updates_per_chunk=2, learning_rate=1e-3)
    trainer = make_train(config, env, env.default_params, network)
    runner, _ = trainer.train_chunk(trainer.init(jax.random.key(7)))
    flat = jax.tree_util.tree_flatten_with_path(runner.params)[0]
    return {jax.tree_util.keystr(path): [float(np.sum(leaf, dtype=np.float64)),
                                         float(np.sum(np.square(leaf, dtype=np.float64)))]
            for path, leaf in ((p, np.asarray(x)) for p, x in flat)}


def record() -> dict:
    return {"games": {spec: play(spec, bots, mode) for spec, bots, mode in GAMES},
            "training": train_two_updates()}


def test_same_seed_same_games():
    golden = json.loads(GOLDEN.read_text())["games"]
    for spec, bots, mode in GAMES:
        played = play(spec, bots, mode)
        for part in ("observations", "rewards", "games"):
            assert played[part]["exact"] == golden[spec][part]["exact"], (spec, part)
            np.testing.assert_allclose(played[part]["floats"], golden[spec][part]["floats"], rtol=1e-5,
                                       atol=1e-3, err_msg=f"{spec} {part}")


def test_same_seed_same_trained_parameters():
    golden = json.loads(GOLDEN.read_text())["training"]
    trained = train_two_updates()
    assert sorted(trained) == sorted(golden)
    for name, (total, squares) in trained.items():
        np.testing.assert_allclose([total, squares], golden[name], rtol=1e-4, atol=1e-5, err_msg=name)


if __name__ == "__main__":
    if "--record" in sys.argv:
        GOLDEN.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN}")
