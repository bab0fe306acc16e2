"""A gymnasium `VectorEnv` over `num_envs` copies of a `TerritoryEnv`: NumPy in, NumPy out.

For PyTorch / Stable-Baselines3-style code that wants batched NumPy arrays rather than JAX calls:

    from jaxms.env.vector import JaxVectorEnv
    envs = JaxVectorEnv(make_env(load_map("plains_64x48"), num_bots=2), num_envs=16, seed=0)
    obs, infos = envs.reset()
    obs, rewards, terminations, truncations, infos = envs.step(actions)   # actions: int[16] in 0..44
    masks = envs.action_masks()                                          # bool[16, 45] (MaskablePPO)

The whole batch is simulated on the JAX device by one jitted `jax.vmap` of `TerritoryEnv.step` (and one of
`TerritoryEnv.reset`); only the results cross to the host, once per call.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import gymnasium
import jax
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from jaxms.env.actions import INTENSITIES
from jaxms.env.spaces import to_gymnasium
from jaxms.env.territory import EnvParams, TerritoryEnv, check_action

# Keys of the JAX env's step info that are returned per step (with gymnasium's `_key` masks).
STEP_INFO_KEYS = ("land_share", "rank", "won", "dead", "invalid_action", "illegal_direction", "attacked")


@partial(jax.jit, static_argnums=1)
def _next_keys(key: jax.Array, num_envs: int) -> tuple[jax.Array, jax.Array]:
    """(the wrapper's next key, one key per env): `key, sub = split(key); keys = split(sub, num_envs)`."""
    key, sub = jax.random.split(key)
    return key, jax.random.split(sub, num_envs)


def _to_numpy(tree: Any) -> Any:
    """Fetch a pytree of device arrays to the host as writable NumPy arrays (one transfer for the tree).

    Writable because the caller owns the results: `torch.from_numpy` warns on read-only arrays, and
    in-place edits of an observation must not fail.
    """
    host = jax.device_get(tree)
    return jax.tree.map(lambda x: x if x.flags.writeable else np.array(x), host)


class JaxVectorEnv(gymnasium.vector.VectorEnv):
    """`num_envs` independent `TerritoryEnv` games stepped together, as a gymnasium 1.x `VectorEnv`.

    Batching: every observation entry, reward, flag and info value has a leading axis of length
    `num_envs`; actions are one integer per env. The spaces are gymnasium's batched versions of the single
    env's (`gymnasium.vector.utils.batch_space`):
    - `single_action_space` is `Discrete(45)`, `action_space` is `MultiDiscrete([45] * num_envs)`;
    - `single_observation_space` is `to_gymnasium(env.observation_space())` (a `Dict`), and
      `observation_space` its batched `Dict`. Observations keep the JAX env's dtypes (with the minimal
      observer: `map` uint8[N, 32, 32, 4], `features` float32[N, 4], `action_mask` bool[N, 45]).

    Returned dtypes: rewards float32[N], terminations and truncations bool[N]; every array is a fresh,
    writable NumPy array. Actions may be any integer array of shape (num_envs,) with values in 0..44
    (a list works too); anything else raises ValueError before the simulation runs.

    Auto-reset (`metadata["autoreset_mode"] == AutoresetMode.SAME_STEP`): the JAX env resets an env in
    the step that ends its episode (from its pool of start positions, see `TerritoryEnv`), so `step`
    returns the first observation of the next episode for it, and the terminal observation is in
    `infos["final_obs"]`. Following gymnasium's `SyncVectorEnv` in that mode, when at least one env ended:
    - `infos["final_obs"]`: object array [N], the ended env's last observation (a dict of arrays without
      the batch axis) where `infos["_final_obs"]` is True, None elsewhere;
    - `infos["final_info"]`: the ended step's info (same keys as below, each with its `_key` mask), with
      `infos["_final_info"]` marking the ended envs;
    - `infos["episode"]`: {"r": return float32[N], "l": length int32[N], "won": bool[N], "share": final
      land share float32[N]} of the episodes that ended, where `infos["_episode"]` is True (the layout
      of `gymnasium.wrappers.vector.RecordEpisodeStatistics`, which is therefore not needed; wrapping
      with it anyway needs its `stats_key` set to something other than "episode").
    Every step, `infos` holds `land_share`, `rank` (float32, 1 = most land), `won`, `dead`,
    `invalid_action`, `illegal_direction` (the chosen direction was masked, so the agent waited) and
    `attacked` (an order was given), each [N] with a `_key` mask that is False for the envs that ended
    (their values for the step are in `final_info`; the top-level info belongs to the new episode).
    Terminated means the game ended (the agent won or died, or another player won); truncated means
    the episode hit `max_steps` or the game's tick limit.

    Randomness: the wrapper holds a JAX key, `jax.random.key(seed)` at construction and again at
    `reset(seed=...)`. Each `reset` and `step` draws per-env keys from it as
    `key, sub = split(key); keys = split(sub, num_envs)`, so a seed fixes the whole trajectory.

    The reset and step functions are compiled once per `num_envs` (on first use); actions are passed
    as int32 whatever integer dtype they come in, so no call recompiles.

    With `obs_on_device=True`, `reset` and `step` return the observations as the JAX arrays they are on
    JAX's device (same keys, shapes and dtypes), not fetched to the host: a consumer on the same device
    takes them without a copy through DLPack (`torch.from_dlpack`; the torch trainer does this on CUDA).
    Everything else (rewards, flags, infos, `final_obs`) is NumPy as always.
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, env: TerritoryEnv, num_envs: int, seed: int = 0, params: EnvParams | None = None,
                 obs_on_device: bool = False):
        if not isinstance(env, TerritoryEnv):
            raise TypeError(f"env must be a TerritoryEnv (jaxms.env.make_env), got {type(env).__name__}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if params is not None and not isinstance(params, EnvParams):
            raise TypeError(f"params must be EnvParams (env.default_params or env.make_params(...)), got "
                            f"{type(params).__name__}")
        self.env = env
        self.obs_on_device = bool(obs_on_device)
        self.params = env.default_params if params is None else params
        self.num_envs = int(num_envs)
        self.single_observation_space = to_gymnasium(env.observation_space(self.params))
        self.single_action_space = to_gymnasium(env.action_space(self.params))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._reset_fn = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
        # On accelerators the old state's buffers are reused for the new one; the CPU backend cannot donate.
        donate = (1,) if jax.default_backend() != "cpu" else ()
        self._step_fn = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)), donate_argnums=donate)
        self._key = self._seed_key(seed)
        self._state = None  # batched EnvState on the device, after reset
        self._masks: np.ndarray | None = None  # bool[N, 45] for the current observations

    @staticmethod
    def _seed_key(seed: Any) -> jax.Array:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        return jax.random.key(int(seed))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a fresh game in every env (spawn phase included). `seed` re-seeds the wrapper's key;
        without it the key continues, so successive resets differ. No options are accepted."""
        if options:
            raise ValueError(f"JaxVectorEnv.reset accepts no options, got {sorted(options)}")
        self._check_open()
        if seed is not None:
            self._key = self._seed_key(seed)
        super().reset(seed=seed)  # seeds `self.np_random` as gymnasium expects (unused by the simulation)
        self._key, keys = _next_keys(self._key, self.num_envs)
        obs, self._state = self._reset_fn(keys, self.params)
        host_obs, legal = _to_numpy((None if self.obs_on_device else obs, self._state.legal))
        self._masks = np.repeat(legal, len(INTENSITIES), axis=1)
        return (obs if self.obs_on_device else host_obs), {}

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, Any]]:
        """Act in every env: actions int[num_envs] in 0..44. See the class docstring for what comes back."""
        actions = check_action(actions, self.num_envs).astype(np.int32, copy=False)
        self._check_open()
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, keys = _next_keys(self._key, self.num_envs)
        obs, self._state, reward, _, info = self._step_fn(keys, self._state, actions, self.params)
        final_obs = info.pop("final_observation")
        host_obs, reward, info, legal = _to_numpy((None if self.obs_on_device else obs, reward, info,
                                                   self._state.legal))
        obs = obs if self.obs_on_device else host_obs
        self._masks = np.repeat(legal, len(INTENSITIES), axis=1)
        terminated, truncated = info["terminated"], info["truncated"]
        done = terminated | truncated

        infos: dict[str, Any] = {}
        for key in STEP_INFO_KEYS:
            infos[key], infos[f"_{key}"] = info[key], ~done
        if done.any():
            final_obs = _to_numpy(final_obs)  # fetched only when some env ended
            infos["final_obs"] = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                infos["final_obs"][i] = {name: value[i] for name, value in final_obs.items()}
            infos["_final_obs"] = done.copy()
            final_info: dict[str, Any] = {}
            for key in STEP_INFO_KEYS:
                final_info[key], final_info[f"_{key}"] = info[key].copy(), done.copy()
            infos["final_info"], infos["_final_info"] = final_info, done.copy()
            infos["episode"] = {
                "r": np.where(done, info["returned_episode_returns"], 0.0).astype(np.float32),
                "l": np.where(done, info["returned_episode_lengths"], 0).astype(np.int32),
                "won": done & info["returned_episode_won"],
                "share": np.where(done, info["returned_episode_share"], 0.0).astype(np.float32)}
            infos["_episode"] = done.copy()
        return obs, reward, terminated, truncated, infos

    def action_masks(self) -> np.ndarray:
        """bool[num_envs, 45]: the legal actions for the current observations (every intensity of a
        direction with an attackable border, and WAIT, actions 40..44, always). The name sb3-contrib's
        MaskablePPO looks for; the same mask is `obs["action_mask"]` with the minimal observer."""
        self._check_open()
        if self._masks is None:
            raise RuntimeError("call reset() before action_masks()")
        return self._masks.copy()

    def snapshot(self) -> dict[str, Any]:
        """The wrapper's whole state, to checkpoint and `restore` (a pytree: the batched EnvState on the
        device and the wrapper's typed key). The current observations are not in it: keep the last ones
        `step` returned."""
        self._check_open()
        if self._state is None:
            raise RuntimeError("call reset() before snapshot()")
        return {"state": self._state, "key": self._key}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Continue from a `snapshot` (restored from a checkpoint: arrays may be NumPy): the next `step`
        is the one that would have followed it."""
        self._check_open()
        state = jax.tree.map(jax.numpy.asarray, snapshot["state"])
        self._state, self._key = state, snapshot["key"]
        self._masks = np.repeat(np.asarray(state.legal), len(INTENSITIES), axis=1)

    def render(self) -> None:
        raise NotImplementedError("JaxVectorEnv does not render; draw the game from the JAX env's state "
                                  "instead")

    def close_extras(self, **kwargs: Any) -> None:
        """Drop the device state (the compiled functions stay cached until the wrapper is collected)."""
        self._state, self._masks = None, None

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this JaxVectorEnv is closed")

    def __repr__(self) -> str:
        return f"JaxVectorEnv({self.env!r}, num_envs={self.num_envs})"
