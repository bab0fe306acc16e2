"""The run configuration of `python -m jaxms.train`: one frozen dataclass, presets, device defaults.

Flags keep the earlier system's names and meaning (`--map`, `--num-bots`, `--local-view-size`, `--device`,
`--n-envs`, `--batch-size`, `--n-steps`, `--total-timesteps`, `--learning-rate`, `--output-dir`,
`--continue-from`). Values left unset (None) are filled in by `resolve`:
- n_envs / batch_size / n_steps from the earlier system's table per device (CUDA 8/256/1024,
  MPS 4/64/512, CPU 2/32/256), and on CPU from a smaller table for small maps so they train fast;
- views from the map's size (`ObsConfig.for_map` when the observation module provides it).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

DEVICES = ("auto", "cpu", "cuda", "gpu", "mps")
OBS_MODES = ("multi", "single")
REWARDS = ("share", "rank")
TIME_LIMITS = ("truncate", "lose")  # jaxms.env.territory.TIME_LIMITS (not imported: config stays jax-free)
# device -> (n_envs, batch_size, n_steps): the earlier system's recommended settings.
DEVICE_DEFAULTS = {"cuda": (8, 256, 1024), "mps": (4, 64, 512), "cpu": (2, 32, 256)}
# On CPU, maps up to this many tiles train with more, shorter rollouts (cheap steps, quick feedback).
SMALL_MAP_TILES = 256 * 256
SMALL_MAP_CPU_DEFAULTS = (8, 64, 64)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved as config.json in the run folder."""

    map: str = "continents_128"
    maps_dir: str | None = None
    num_bots: int = 10
    nations: bool = False
    obs: str = "multi"
    local_view_size: int | None = None  # tiles around the agent in the local view (default by map size)
    frame_stack: int = 4
    device: str = "auto"
    n_envs: int | None = None
    batch_size: int | None = None
    n_steps: int | None = None
    total_timesteps: int = 1_000_000
    learning_rate: float = 1e-4
    lr_schedule: str = "constant"
    gamma: float = 0.995
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.005
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    update_epochs: int = 10
    seed: int = 0
    ticks_per_step: int = 10
    max_steps: int = 1000
    time_limit: str = "truncate"  # what max_steps means: "truncate" (bootstrapped) or "lose" (a timed game)
    reset_pool_size: int = 16  # start positions made at launch for auto-reset (0: a fresh game every reset)
    reward: str = "share"
    network_width: float = 1.0
    network_dtype: str = "float32"
    attention: bool = True
    output_dir: str = "runs"
    name: str | None = None
    continue_from: str | None = None
    updates_per_chunk: int = 1
    checkpoint_every: int = 10  # updates
    keep_checkpoints: int = 3
    eval_every: int = 50  # updates; 0 disables evaluation during training
    eval_games: int = 16
    image_every: int = 50  # updates between logged images of the views; 0 disables
    max_minutes: float | None = None  # stop (checkpointed, like the end of the run) after this long

    def __post_init__(self) -> None:
        _check_choice("device", self.device, DEVICES)
        _check_choice("obs", self.obs, OBS_MODES)
        _check_choice("reward", self.reward, REWARDS)
        _check_choice("time_limit", self.time_limit, TIME_LIMITS)
        for name in ("num_bots", "frame_stack", "total_timesteps", "ticks_per_step", "max_steps",
                     "update_epochs", "updates_per_chunk", "checkpoint_every", "keep_checkpoints",
                     "eval_every", "eval_games", "image_every", "seed", "reset_pool_size"):
            value = getattr(self, name)
            low = 0 if name in ("num_bots", "eval_every", "image_every", "seed", "reset_pool_size") else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")
        for name in ("n_envs", "batch_size", "n_steps", "local_view_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"--max-minutes must be > 0, got {self.max_minutes!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _check_choice(name: str, value: Any, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ValueError(f"--{name.replace('_', '-')} {value!r} is not accepted: use one of "
                         f"{', '.join(accepted)}")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a JSON or TOML file (keys are TrainConfig fields, `-` or `_`). Raises ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"config file {path} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: "
                         f"{error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings, got {type(data).__name__}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = {key.replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise ValueError(f"config file {path}: unknown settings {unknown}; accepted are {sorted(fields)}")
    return settings


def detect_device(requested: str) -> str:
    """'cpu' or 'cuda' (JAX's platform for the run). 'mps' is refused with where to go instead."""
    import jax

    if requested == "mps":
        raise ValueError("--device mps: JAX has no working Metal backend; on a Mac, train the same network "
                         "with the PyTorch path (jaxms.torch_backend) or use --device cpu")
    platforms = {d.platform for d in jax.devices()}
    if requested in ("cuda", "gpu"):
        if "gpu" not in platforms and "cuda" not in platforms:
            raise ValueError(f"--device {requested}: no GPU is visible to JAX (devices: "
                             f"{', '.join(sorted(platforms))}); install jax[cuda12] or use --device cpu")
        return "cuda"
    if requested == "cpu":
        return "cpu"
    return "cuda" if ("gpu" in platforms or "cuda" in platforms) else "cpu"


def resolve(config: TrainConfig, map_tiles: int, device: str) -> TrainConfig:
    """Fill unset sizes from the device table (and the small-map table on CPU); check they fit together."""
    n_envs, batch_size, n_steps = DEVICE_DEFAULTS.get(device, DEVICE_DEFAULTS["cpu"])
    if device == "cpu" and map_tiles <= SMALL_MAP_TILES:
        n_envs, batch_size, n_steps = SMALL_MAP_CPU_DEFAULTS
    resolved = config.replace(n_envs=config.n_envs or n_envs, n_steps=config.n_steps or n_steps,
                              batch_size=config.batch_size or batch_size)
    rollout = resolved.n_envs * resolved.n_steps
    if rollout % resolved.batch_size != 0:
        if config.batch_size is not None:
            raise ValueError(f"--batch-size {resolved.batch_size} must divide --n-envs x --n-steps = "
                             f"{rollout}")
        resolved = resolved.replace(batch_size=_largest_divisor_at_most(rollout, resolved.batch_size))
    return resolved


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)
