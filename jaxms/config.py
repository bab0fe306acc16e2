"""The run configuration of `python -m jaxms.train`: `TrainConfig`, composed of the component configs.

    TrainConfig
      run:     RunConfig      map, maps_dir, device, seed, output_dir, name, continue_from, checkpoints,
                              evaluation, images and GIFs, max_minutes (this module)
      env:     EnvConfig      players, ticks per step, max steps, time limit, reward (jaxms.env.config)
        obs:   ObsConfig      mode (--obs), view sizes, frame stack (jaxms.env.contract)
      network: NetworkConfig  dtype, width, attention, heads, conv (jaxms.nn.config); its `obs` follows
                              env.obs.mode
      ppo:     PPOConfig      rollout sizes, PPO and Adam settings (jaxms.ppo.config)

Every setting is one field of one of these frozen dataclasses, declared with `jaxms.settings.setting`
(help text, choices, flag name beside the field). The command line and config files are generated from the
fields: each field is one flat flag (`--learning-rate`, `--frame-stack`, `--n-envs`), its name the field's
name with '-' for '_' unless its metadata names the flag (the earlier system's names: `--n-envs` for
`ppo.num_envs`, `--obs` for `env.obs.mode`, `--network-width` for `network.width`). Fields with `cli=False`
are set by another setting (`network.obs` by `--obs`).

Config files (JSON or TOML) take the same settings flat (`learning-rate = 3e-4` or `learning_rate`), in
sections (`[ppo] learning_rate = 3e-4`, `{"env": {"num_bots": 3, "obs": {"frame_stack": 2}}}`), or both;
a run folder's `config.json` is written nested (`dataclasses.asdict`) and read back by the same loader.

Each component validates itself (`__post_init__`); `TrainConfig` only adds what spans components. The rollout
sizes (`ppo.num_envs`, `ppo.n_steps`, `ppo.batch_size`) may stay unset (None) in a TrainConfig: `resolve`
fills them from the device table before training (the earlier system's "unset = by device"):
- n_envs / batch_size / n_steps from the earlier system's table per device (CUDA 8/256/1024,
  MPS 4/64/512, CPU 2/32/256), and on CPU from a smaller table for small maps so they train fast;
- views follow the map's size (`ObsConfig.sized`, done by the env).

JAX-free: importing this module imports no JAX.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jaxms.env.config import EnvConfig
from jaxms.nn.config import NetworkConfig
from jaxms.ppo.config import PPOConfig
from jaxms.settings import (
    Leaf,
    check_choice,
    check_int,
    check_number,
    field_types,
    is_settings_class,
    leaves,
    setting,
)

DEVICES = ("auto", "cpu", "cuda", "gpu", "mps")
BACKENDS = ("jax", "torch")  # who trains the network (the env is JAX's either way)
# device -> (n_envs, batch_size, n_steps): the earlier system's recommended settings.
DEVICE_DEFAULTS = {"cuda": (8, 256, 1024), "mps": (4, 64, 512), "cpu": (2, 32, 256)}
# On CPU, maps up to this many tiles train with more, shorter rollouts (cheap steps, quick feedback).
SMALL_MAP_TILES = 256 * 256
SMALL_MAP_CPU_DEFAULTS = (8, 64, 64)

# --coordinator: process 0's HOST:PORT (a name or an IPv4 address)
COORDINATOR = re.compile(r"^[A-Za-z0-9][\w.\-]*:(\d{1,5})$")
MAX_SEED = 2**63 - 1  # JAX's seeds are signed 64-bit integers
SettingPath = tuple[str, ...]  # a setting's place in TrainConfig: ("ppo", "learning_rate")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What a training run is about and how the host loop runs it: the map, the device, the run folder,
    checkpoints, evaluation during training and its time budget."""

    map: str = setting("continents_128", "map spec: built-in (continents_128, islands_256x128_s1), an "
                       "OpenFront folder or name (australia, australia@4x), a crop "
                       "(australia:915,290,1024,1024), a terrain PNG, or a pool of maps of one shape "
                       "(continents_256_s0-99, a+b) (see python -m jaxms.maps list)")
    maps_dir: str | None = setting(None, "folder of OpenFront map folders (also $JAXMS_MAPS_DIR)")
    device: str = setting("auto", "cpu, cuda (gpu), mps or auto (a GPU if one is seen; on a Mac whose JAX "
                          "sees no GPU, mps); mps trains with the PyTorch path (--backend torch)",
                          choices=DEVICES)
    backend: str = setting("jax", "who trains the network: jax (jaxms.ppo, all in jit) or torch (the PyTorch "
                           "mirror, jaxms.torch, fed by the JAX env; --device mps selects it)",
                           choices=BACKENDS)
    seed: int = setting(0, "random seed (same seed, same run), 0..2^63-1")
    output_dir: str = setting("runs", "folder for runs")
    name: str | None = setting(None, "run name (default: map and obs mode)")
    continue_from: str | None = setting(None, "resume from a run folder (or its checkpoints/, best/, final/ "
                                        "folder)")
    checkpoint_every: int = setting(10, "updates between checkpoints")
    keep_checkpoints: int = setting(3, "checkpoints kept")
    eval_every: int = setting(50, "updates between evaluations (for best/; 0: never)")
    eval_games: int = setting(16, "games per evaluation")
    image_every: int = setting(50, "updates between logged pictures: an image of the views and a GIF of a "
                               "short game of the current agent (0: never)")
    gif_steps: int = setting(40, "env steps of the game recorded as a GIF every --image-every updates (0: "
                             "the views image only)")
    max_minutes: float | None = setting(None, "stop after this many minutes of training (saved like a "
                                        "finished run)")
    devices: str = setting("1", "devices to train on, data-parallel: a count or all (every device of every "
                           "process); --n-envs and --batch-size are the global batch, split over them")
    coordinator: str | None = setting(None, "HOST:PORT of process 0 (a free port) for a run over several "
                                      "processes or machines (jax.distributed); with --num-processes and "
                                      "--process-id")
    num_processes: int = setting(1, "processes of a multi-process run (one per machine), each training on "
                                 "all its devices")
    process_id: int = setting(0, "this process's index in a multi-process run, 0..num-processes - 1 "
                              "(process 0 logs, evaluates and writes the run folder)")

    def __post_init__(self) -> None:
        check_choice("RunConfig", "device", self.device, DEVICES)
        check_choice("RunConfig", "backend", self.backend, BACKENDS)
        if not isinstance(self.map, str) or not self.map:
            raise ValueError(f"RunConfig.map must be a map spec, got {self.map!r}")
        check_int("RunConfig", "seed", self.seed, 0, MAX_SEED)
        for name, low in (("checkpoint_every", 1), ("keep_checkpoints", 1), ("eval_every", 0),
                          ("eval_games", 1), ("image_every", 0), ("gif_steps", 0)):
            check_int("RunConfig", name, getattr(self, name), low)
        check_number("RunConfig", "max_minutes", self.max_minutes, low=0, low_open=True, optional=True)
        self._check_devices()

    def _check_devices(self) -> None:
        """--devices, and the multi-process settings as a whole."""
        if not isinstance(self.devices, str) or not (self.devices == "all" or (
                self.devices.isdigit() and int(self.devices) >= 1)):
            raise ValueError(f"RunConfig.devices={self.devices!r} is not accepted: give a count (1, 2, ...) "
                             "or all")
        check_int("RunConfig", "num_processes", self.num_processes, 1)
        check_int("RunConfig", "process_id", self.process_id, 0)
        if self.coordinator is not None:
            match = COORDINATOR.match(self.coordinator) if isinstance(self.coordinator, str) else None
            if not match or not 0 < int(match.group(1)) < 65536:
                raise ValueError(f"RunConfig.coordinator={self.coordinator!r} is not accepted: give "
                                 "HOST:PORT of process 0's machine with a free port (e.g. 10.0.0.1:1234)")
        if self.num_processes > 1 and self.coordinator is None:
            raise ValueError(f"RunConfig.num_processes {self.num_processes} needs RunConfig.coordinator "
                             "HOST:PORT (process 0's machine) for the processes to find each other")
        if self.coordinator is not None and self.num_processes == 1:
            raise ValueError("RunConfig.coordinator is for runs over several processes: give "
                             "RunConfig.num_processes (2 or more) and RunConfig.process_id too, or leave "
                             "it out")
        if self.process_id >= self.num_processes:
            raise ValueError(f"RunConfig.process_id {self.process_id} is not accepted with "
                             f"RunConfig.num_processes {self.num_processes}: give "
                             f"0..{self.num_processes - 1}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs, as its component configs; saved as config.json in the run folder.

    `network.obs` is derived from `env.obs.mode` (one source: `--obs`). Build one from flat or nested
    settings with `TrainConfig.from_dict` or `replace` (`config.replace(learning_rate=1e-3, n_envs=16)`).
    """

    run: RunConfig = setting(RunConfig(), "the run: map, device, run folder, checkpoints, evaluation")
    env: EnvConfig = setting(EnvConfig(), "the environment and its observation")
    network: NetworkConfig = setting(NetworkConfig(), "the policy/value network")
    ppo: PPOConfig = setting(PPOConfig(), "the PPO algorithm and its rollout sizes")

    def __post_init__(self) -> None:
        for name, kind in field_types(TrainConfig).items():
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"TrainConfig.{name} must be a {kind.__name__}, got "
                                 f"{type(getattr(self, name)).__name__}")
        if self.network.obs != self.env.obs.mode:
            object.__setattr__(self, "network", dataclasses.replace(self.network, obs=self.env.obs.mode))

    def to_json(self) -> str:
        """The nested form written as config.json (read back by `from_dict` / `load_config_file`)."""
        return json.dumps(dataclasses.asdict(self), indent=2)

    def replace(self, **changes: Any) -> TrainConfig:
        """This config with `changes`: whole components (`ppo=PPOConfig(...)`) or settings by flag or field
        name (`learning_rate=1e-3`, `n_envs=16`, `obs="single"`). Raises ValueError (unknown name, wrong
        type, invalid value)."""
        return TrainConfig.from_dict(changes, source="TrainConfig.replace", base=self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "settings", base: TrainConfig | None = None
                  ) -> TrainConfig:
        """A config from flat and/or nested settings (the forms of a config file) over `base` (default:
        the defaults). Raises ValueError naming `source`, the key and what is accepted."""
        settings, keys = parse_settings(data, source)
        try:
            return build_config(settings, base)
        except ValueError as error:
            named = {p: f"key '{key}'" for p, key in keys.items()}
            raise ValueError(f"{source}: {explain(error, named)}") from None

    def flat(self) -> dict[str, Any]:
        """Every setting by flag name (`{"learning-rate": 0.0001, ...}`), `cli=False` fields left out."""
        return {flag: _get(self, leaf.path) for flag, leaf in flags().items()}


# ---------------------------------------------------------------------------------------------------------
# Settings by name: flags, flat and nested config-file keys
# ---------------------------------------------------------------------------------------------------------


@functools.cache
def all_leaves() -> tuple[Leaf, ...]:
    """Every setting of TrainConfig (those with `cli=False` included), depth first."""
    return tuple(leaves(TrainConfig))


@functools.cache
def flags() -> dict[str, Leaf]:
    """The command-line settings by flag name without dashes ("learning-rate"): every leaf with `cli`.
    Raises if two fields claim one flag (a new field must pick another name with `flag=`)."""
    found: dict[str, Leaf] = {}
    for leaf in all_leaves():
        if not leaf.cli:
            continue
        if leaf.flag in found:
            raise RuntimeError(f"--{leaf.flag} is claimed by {found[leaf.flag].qualname} and "
                               f"{leaf.qualname}: give one of them another name with setting(flag=...)")
        found[leaf.flag] = leaf
    return found


def _by_qualname() -> dict[str, Leaf]:
    return {leaf.qualname: leaf for leaf in all_leaves()}


def _get(config: Any, path: SettingPath) -> Any:
    for name in path:
        config = getattr(config, name)
    return config


def _normal(key: str) -> str:
    return key.replace("_", "-")


def parse_settings(data: Mapping[str, Any], source: str = "settings"
                   ) -> tuple[dict[SettingPath, Any], dict[SettingPath, str]]:
    """Settings of `data` as (values by path, the key each came from), values type-checked.

    Accepted keys: at the top level a flag name (`learning-rate` / `learning_rate`), or a section of
    TrainConfig (`run`, `env`, `network`, `ppo`) holding a mapping (or a component config instance);
    inside a section, the section's field names, nested sections (`env.obs`) and the flag names of the
    section's settings. `cli=False` fields (`network.obs`) are accepted and checked against what they
    follow (by `build_config`). Raises ValueError naming `source` and the key.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{source} must hold a mapping of settings, got {type(data).__name__}")
    settings: dict[SettingPath, Any] = {}
    keys: dict[SettingPath, str] = {}
    _parse_section(TrainConfig, (), data, source, "", settings, keys)
    return settings, keys


def _parse_section(cls: type, prefix: SettingPath, data: Mapping[str, Any], source: str, key_prefix: str,
                   settings: dict[SettingPath, Any], keys: dict[SettingPath, str]) -> None:
    hints = field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    under = {leaf.flag: leaf for leaf in all_leaves() if leaf.path[:len(prefix)] == prefix and leaf.cli}
    for key, value in data.items():
        key = str(key)
        where = f"{key_prefix}{key}"
        name = key.replace("-", "_")
        section = name in fields and is_settings_class(hints[name])
        if section and isinstance(value, hints[name]):
            settings[(*prefix, name)], keys[(*prefix, name)] = value, where
            continue
        if section and (isinstance(value, Mapping) or _normal(key) not in under):
            if not isinstance(value, Mapping):
                raise ValueError(f"{source}: key '{where}' must be a section (a mapping of "
                                 f"{hints[name].__name__} settings), got {value!r}")
            _parse_section(hints[name], (*prefix, name), value, source, where + ".", settings, keys)
            continue
        leaf = None
        if name in fields and not section:
            leaf = next(lf for lf in all_leaves() if lf.path == (*prefix, name))
        elif _normal(key) in under:  # a flag name (`[env] obs = "single"`, `[env] frame-stack = 2`)
            leaf = under[_normal(key)]
        if leaf is None:
            hint = [f"--{lf.flag}" for lf in all_leaves() if lf.name == name and lf.cli]
            raise ValueError(f"{source}: unknown key '{where}'"
                             f"{' (did you mean ' + ' or '.join(hint) + '?)' if hint else ''}; accepted "
                             f"are {_accepted_keys(prefix)}")
        try:
            checked = leaf.check(value)
        except ValueError as error:
            raise ValueError(f"{source}: key '{where}' ({leaf.qualname}): {error}") from None
        if leaf.path in settings and keys[leaf.path] != where:
            raise ValueError(f"{source}: keys '{keys[leaf.path]}' and '{where}' both set {leaf.qualname}")
        settings[leaf.path], keys[leaf.path] = checked, where


def _accepted_keys(prefix: SettingPath) -> str:
    if not prefix:
        return ("the flag names of python -m jaxms.train --help (learning-rate or learning_rate) or the "
                "sections run, env, network, ppo")
    names = [leaf.path[len(prefix)] for leaf in all_leaves() if leaf.path[:len(prefix)] == prefix]
    return ", ".join(dict.fromkeys(names))


def build_config(settings: Mapping[SettingPath, Any], base: TrainConfig | None = None) -> TrainConfig:
    """`base` (default: the defaults) with `settings` (values by path) applied, each component built (and
    so validated) once. A value given for a `cli=False` field must agree with what it follows. Raises the
    components' ValueError (messages start with `Component.field`)."""
    config = _apply(TrainConfig, TrainConfig() if base is None else base, settings)
    for path, value in settings.items():
        leaf = next((lf for lf in all_leaves() if lf.path == path), None)
        if leaf is not None and not leaf.cli and _get(config, path) != value:
            raise ValueError(f"{leaf.qualname} is not set directly ({leaf.help}): got {value!r} where the "
                             f"config has {_get(config, path)!r}")
    return config


def _apply(cls: type, base: Any, settings: Mapping[SettingPath, Any]) -> Any:
    changes: dict[str, Any] = {}
    nested: dict[str, dict[SettingPath, Any]] = {}
    for path, value in settings.items():
        if len(path) == 1:
            changes[path[0]] = value
        else:
            nested.setdefault(path[0], {})[path[1:]] = value
    hints = field_types(cls)
    for name, sub in nested.items():
        changes[name] = _apply(hints[name], changes.get(name, getattr(base, name)), sub)
    return dataclasses.replace(base, **changes) if changes else base


_QUALNAME = re.compile(r"\b([A-Z]\w*Config)\.(\w+)")


def explain(error: Exception, names: Mapping[SettingPath, str] | None = None) -> str:
    """A component's message with each `Component.field` replaced by how the user wrote it: the key of
    `names` (by path) when given there, else the flag (`--n-envs`)."""
    by_qualname = _by_qualname()

    def name(match: re.Match) -> str:
        leaf = by_qualname.get(f"{match.group(1)}.{match.group(2)}")
        if leaf is None:
            return match.group(0)
        if names and leaf.path in names:
            return names[leaf.path]
        return f"--{leaf.flag}" if leaf.cli else match.group(0)

    return _QUALNAME.sub(name, str(error))


def read_config_file(path: str | Path) -> tuple[dict[SettingPath, Any], dict[SettingPath, str]]:
    """Settings of a JSON or TOML file (any of the forms of `parse_settings`) as (values by path, the
    key each came from, prefixed with the file). Raises ValueError naming the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    kind = "TOML" if path.suffix == ".toml" else "JSON"
    try:
        text = path.read_text()
        data = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"config file {path} is not valid {kind}: {error}") from error
    settings, keys = parse_settings(data, f"config file {path}")
    return settings, {p: f"config file {path}: key '{key}'" for p, key in keys.items()}


def load_config_file(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """The TrainConfig of a JSON or TOML file (flat, nested, or an earlier run's config.json) over `base`.
    Raises ValueError naming the file, the key and what is accepted."""
    settings, keys = read_config_file(path)
    try:
        return build_config(settings, base)
    except ValueError as error:
        raise ValueError(explain(error, keys)) from None


# ---------------------------------------------------------------------------------------------------------
# Resolution: the device table
# ---------------------------------------------------------------------------------------------------------


def resolve(config: TrainConfig, map_tiles: int, device: str) -> TrainConfig:
    """Fill the unset rollout sizes (`ppo.num_envs`, `n_steps`, `batch_size`) from the device table (and the
    small-map table on CPU); check they fit together. `device` is "cpu", "cuda" or "mps"."""
    n_envs, batch_size, n_steps = DEVICE_DEFAULTS.get(device, DEVICE_DEFAULTS["cpu"])
    if device == "cpu" and map_tiles <= SMALL_MAP_TILES:
        n_envs, batch_size, n_steps = SMALL_MAP_CPU_DEFAULTS
    ppo = config.ppo
    n_envs, n_steps = ppo.num_envs or n_envs, ppo.n_steps or n_steps
    rollout = n_envs * n_steps
    if ppo.batch_size is not None:
        if rollout % ppo.batch_size != 0:
            raise ValueError(f"PPOConfig.batch_size {ppo.batch_size} must divide PPOConfig.num_envs x "
                             f"PPOConfig.n_steps = {n_envs} x {n_steps} = {rollout}")
        batch_size = ppo.batch_size
    elif ppo.num_minibatches is not None:  # minibatches given as a count: their size follows the rollout
        if rollout % ppo.num_minibatches != 0:
            raise ValueError(f"PPOConfig.num_minibatches {ppo.num_minibatches} must divide "
                             f"PPOConfig.num_envs x PPOConfig.n_steps = {n_envs} x {n_steps} = {rollout}")
        batch_size = rollout // ppo.num_minibatches
    elif rollout % batch_size != 0:
        batch_size = _largest_divisor_at_most(rollout, batch_size)
    return dataclasses.replace(config, ppo=dataclasses.replace(ppo, num_envs=n_envs, n_steps=n_steps,
                                                               batch_size=batch_size))


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)
