"""Stable-Baselines3 side by side: our env as an SB3 `VecEnv`, our network as an SB3 features extractor.

    from sb3_contrib import MaskablePPO
    from jaxms.torch.sb3 import JaxmsExtractor, SB3VecEnv
    venv = SB3VecEnv(JaxVectorEnv(make_env("continents_128", num_bots=5), num_envs=8))
    model = MaskablePPO("MultiInputPolicy", venv, policy_kwargs=sb3_policy_kwargs(NetworkConfig(width=0.25)))
    model.learn(10_000)

`SB3VecEnv` is a thin adapter from `JaxVectorEnv` (gymnasium's vector API) to SB3's `VecEnv`:
- `step_wait` returns (obs, rewards, dones, infos as a list of dicts); an env whose episode ended has
  `info["terminal_observation"]` (its last observation; the returned one is the next episode's first),
  `info["TimeLimit.truncated"]` (so SB3 bootstraps truncated episodes from the terminal observation's
  value, as our trainers do) and `info["episode"]` ({"r", "l", "t"} as SB3's Monitor writes it, plus "won"
  and "share");
- `env_method("action_masks")` gives each env's legal actions, which is what sb3-contrib's MaskablePPO
  asks for; plain PPO ignores them (a masked direction is played as WAIT by the env);
- the views are given channels-first (uint8 [C, H, W]), SB3's image convention, so SB3 neither wraps the
  env in `VecTransposeImage` nor mistakes a small view for a channels-first one; SB3 scales them to [0, 1].

`JaxmsExtractor` is our network's trunk (`TorchNetwork.encode`: the scale branches, scalar MLP,
cross-attention and fusion) as a `BaseFeaturesExtractor`; SB3 puts its own policy and value heads on the
fused features (`sb3_policy_kwargs` sets `net_arch=[]`, so the heads sit on them directly, as ours do).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv

from jaxms.env.contract import VIEW_KEYS
from jaxms.env.vector import JaxVectorEnv
from jaxms.nn.config import NetworkConfig
from jaxms.torch.networks import make_torch_network

ALL_VIEW_KEYS = tuple(dict.fromkeys(VIEW_KEYS["multi"] + VIEW_KEYS["single"]))


def _channels_first(space: gymnasium.spaces.Dict) -> gymnasium.spaces.Dict:
    boxes = {}
    for key, box in space.spaces.items():
        if key in ALL_VIEW_KEYS:
            height, width, channels = box.shape
            if channels >= min(height, width):
                raise ValueError(f"observation {key!r} of shape {box.shape}: SB3 tells an image's channels "
                                 "by the smallest side, and this view has as many channels as rows or "
                                 "columns; use views larger than the channel count (--global-size etc.)")
            box = gymnasium.spaces.Box(0, 255, (channels, height, width), np.uint8)
        boxes[key] = box
    return gymnasium.spaces.Dict(boxes)


class SB3VecEnv(VecEnv):
    """`JaxVectorEnv` as a Stable-Baselines3 `VecEnv` (see the module docstring). Observations: dict of
    NumPy arrays [num_envs, ...], views uint8 [num_envs, C, H, W]."""

    def __init__(self, envs: JaxVectorEnv):
        if not isinstance(envs, JaxVectorEnv):
            raise TypeError(f"SB3VecEnv wraps a JaxVectorEnv, got {type(envs).__name__}")
        self.envs = envs
        self.render_mode = None
        self._actions: np.ndarray | None = None
        self._episode_start = time.monotonic()
        super().__init__(envs.num_envs, _channels_first(envs.single_observation_space),
                         envs.single_action_space)

    @staticmethod
    def _convert(obs: dict[str, np.ndarray], batched: bool = True) -> dict[str, np.ndarray]:
        axes = (0, 3, 1, 2) if batched else (2, 0, 1)
        return {key: np.ascontiguousarray(value.transpose(axes)) if key in ALL_VIEW_KEYS else value
                for key, value in obs.items()}

    def reset(self) -> dict[str, np.ndarray]:
        seed = self._seeds[0]
        obs, _ = self.envs.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return self._convert(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self):
        obs, rewards, terminated, truncated, infos = self.envs.step(self._actions)
        dones = terminated | truncated
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            episode = infos["episode"]
            elapsed = round(time.monotonic() - self._episode_start, 6)
            for i in np.flatnonzero(dones):
                out[i]["terminal_observation"] = self._convert(infos["final_obs"][i], batched=False)
                out[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                out[i]["episode"] = {"r": float(episode["r"][i]), "l": int(episode["l"][i]), "t": elapsed,
                                     "won": bool(episode["won"][i]), "share": float(episode["share"][i])}
        return self._convert(obs), rewards.astype(np.float32), dones, out

    def action_masks(self) -> np.ndarray:
        """bool[num_envs, 45]: the legal actions of the current observations."""
        return self.envs.action_masks()

    def _indices(self, indices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        if method_name == "action_masks":
            masks = self.envs.action_masks()
            return [masks[i] for i in self._indices(indices)]
        raise AttributeError(f"SB3VecEnv has no per-env method {method_name!r} (the envs are one batched "
                             "JAX program); available: action_masks")

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        if attr_name == "action_masks":
            return [self.action_masks for _ in self._indices(indices)]
        if attr_name == "render_mode":
            return [None for _ in self._indices(indices)]
        value = getattr(self.envs.env, attr_name)  # AttributeError when absent, as SB3 expects
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        raise AttributeError(f"SB3VecEnv cannot set {attr_name!r}: the envs' settings are fixed when the "
                             "JAX env is made (jaxms.make_env)")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def close(self) -> None:
        self.envs.close()


class JaxmsExtractor(BaseFeaturesExtractor):
    """Our network's trunk as an SB3 features extractor: observations as SB3 gives them (views float in
    [0, 1], channels-first [N, C, H, W]; features [N, F]; the mask, unused here) -> fused features
    [N, NetworkConfig.fusion]."""

    def __init__(self, observation_space: gymnasium.spaces.Dict, network: NetworkConfig | None = None):
        network = NetworkConfig() if network is None else network
        shapes = {}
        for key, box in observation_space.spaces.items():
            shapes[key] = (box.shape[1], box.shape[2], box.shape[0]) if key in ALL_VIEW_KEYS else box.shape
        trunk = make_torch_network(network, shapes)
        super().__init__(observation_space, features_dim=trunk.hidden_size)
        self.trunk = trunk

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        obs = {key: value.permute(0, 2, 3, 1) if key in ALL_VIEW_KEYS else value
               for key, value in observations.items()}
        return self.trunk.encode(obs)[0]


def sb3_policy_kwargs(network: NetworkConfig) -> dict[str, Any]:
    """`policy_kwargs` for SB3's "MultiInputPolicy" (PPO or MaskablePPO) with our network: the extractor,
    heads directly on its features, Adam eps 1e-5 (ours; also SB3's default for PPO)."""
    return {"features_extractor_class": JaxmsExtractor, "features_extractor_kwargs": {"network": network},
            "net_arch": [], "optimizer_kwargs": {"eps": 1e-5}}
