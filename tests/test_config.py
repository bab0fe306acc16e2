"""One source for every setting: the CLI and config files are generated from the component configs' fields.

These tests need no JAX (nothing here builds an env or a network), except the import check, which runs a
fresh interpreter.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from jaxms.config import TrainConfig, load_config_file, read_config_file, resolve
from jaxms.ppo.config import PPOConfig
from jaxms.train import config_from_args

PACKAGE = Path(__file__).resolve().parents[1] / "jaxms"


def walk(cls: type, path: tuple[str, ...] = ()):
    """(path, field, resolved type) of every leaf field of a settings dataclass, recursively (written here
    with dataclasses.fields, independently of jaxms.settings, so a field the generator skips is caught)."""
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            yield from walk(kind, (*path, field.name))
        else:
            yield (*path, field.name), field, kind


def get(config, path):
    for name in path:
        config = getattr(config, name)
    return config


def other_value(field: dataclasses.Field, kind) -> tuple[object, str]:
    """A valid value other than the field's default, and how it is written on the command line."""
    default, choices = field.default, field.metadata.get("choices")
    base = typing.get_args(kind)[0] if typing.get_origin(kind) in (typing.Union, type(int | None)) else kind
    if typing.get_origin(base) is tuple:
        value = tuple(c for c in choices if c not in default)[:2]
        return value, ",".join(value)
    if choices:
        value = next(c for c in choices if c != default)
        return value, str(value)
    if base is bool:
        return (not default), str(not default).lower()
    if base is int:
        value = 64 if default is None else default + 1
        return value, str(value)
    if base is float:
        value = 1.5 if default is None else (default / 2 if default else 0.5)
        return value, repr(value)
    value = "x" if default is None else default + "_x"
    return value, value




# Settings whose accepted values `other_value` cannot guess: (value, as written on the command line).
SPECIAL_VALUES = {"devices": ("all", "all"), "coordinator": ("127.0.0.1:1234", "127.0.0.1:1234"),
                  "num-processes": (2, "2"), "process-id": (1, "1")}
TOGETHER = ("coordinator", "num-processes", "process-id")


def test_every_field_of_every_component_is_a_flag_that_lands_in_its_component():
    defaults = TrainConfig()
    leaves = list(walk(TrainConfig))
    assert {path[0] for path, _, _ in leaves} == {"run", "env", "network", "ppo"}
    assert ("env", "obs", "frame_stack") in {path for path, _, _ in leaves}
    flags_seen, tested = set(), 0
    for path, field, kind in leaves:
        assert field.metadata.get("help"), f"{'.'.join(path)} has no help text"
        if not field.metadata.get("cli", True):
            continue
        flag = field.metadata.get("flag") or field.name.replace("_", "-")
        assert flag not in flags_seen, f"--{flag} is claimed twice"
        flags_seen.add(flag)
        value, text = SPECIAL_VALUES.get(flag) or other_value(field, kind)
        assert value != get(defaults, path), path
        # The multi-process settings are valid only together: each is given with the others.
        companions = [arg for name, (_, given) in SPECIAL_VALUES.items() if name in TOGETHER and name != flag
                      for arg in (f"--{name}", given)] if flag in TOGETHER else []
        config = config_from_args([f"--{flag}", text, *companions])
        assert get(config, path) == value, (flag, text, get(config, path))
        for other, _, _ in leaves:  # nothing else moved (network.obs follows --obs)
            if other != path and other != ("network", "obs") and not (
                    companions and other[-1].replace("_", "-") in TOGETHER):
                assert get(config, other) == get(defaults, other), (flag, other)
        tested += 1
    assert tested >= 50
    # The earlier system's flag names, and every flag the CLI had before the configs were composed.
    for flag in ("map", "num-bots", "local-view-size", "device", "n-envs", "batch-size", "n-steps",
                 "total-timesteps", "learning-rate", "output-dir", "continue-from", "maps-dir", "nations",
                 "obs", "frame-stack", "lr-schedule", "gamma", "gae-lambda", "clip-eps", "ent-coef",
                 "vf-coef", "max-grad-norm", "update-epochs", "seed", "ticks-per-step", "max-steps",
                 "time-limit", "reset-pool-size", "reward", "network-width", "network-dtype", "attention",
                 "name",
                 "updates-per-chunk", "checkpoint-every", "keep-checkpoints", "eval-every", "eval-games",
                 "image-every", "max-minutes",
                 # settable now: they fell on the floor before
                 "heads", "conv", "clip-value", "adam-eps", "normalize-advantages", "stacked-channels"):
        assert flag in flags_seen, flag


def test_obs_sets_the_observation_and_the_network_from_one_flag():
    config = config_from_args(["--obs", "single"])
    assert config.env.obs.mode == "single" and config.network.obs == "single"
    assert TrainConfig().replace(obs="single").network.obs == "single"
    stacked = config_from_args(["--stacked-channels", "border,own"]).env.obs.stacked_channels
    assert stacked == ("own", "border")  # in the contract's channel order


def test_a_bad_flag_value_names_the_flag_and_what_is_accepted(capsys):
    cases = [(["--n-envs", "0"], "--n-envs must be an integer >= 1, got 0"),
             (["--obs", "triple"], "expected one of multi, single, got 'triple'"),
             (["--heads", "3"], "expected one of 1, 2, 4, 8, got 3"),
             (["--attention", "maybe"], "--attention: expected true or false, got 'maybe'"),
             (["--learning-rate", "fast"], "--learning-rate: expected a number, got 'fast'"),
             (["--gamma", "1.5"], "--gamma must be a finite number >= 0 and <= 1, got 1.5"),
             (["--stacked-channels", "own,sky"], "--stacked-channels: expected a list"),
             (["--local-view-size", "32", "--local-size", "64"],
              "--local-view-size (32) must be >= local_size"),
             (["--n-envs", "3", "--n-steps", "10", "--batch-size", "7"], "--batch-size 7 must divide")]
    for argv, message in cases:
        with pytest.raises(SystemExit):
            config_from_args(argv)
        assert message in capsys.readouterr().err, argv


def test_config_files_take_flat_and_nested_settings(tmp_path):
    flat = tmp_path / "flat.toml"
    flat.write_text('num-bots = 3\nobs = "single"\nlearning_rate = 3e-4\nclip-value = true\n'
                    'stacked-channels = ["own", "border"]\n')
    config = load_config_file(flat)
    assert (config.env.num_bots, config.env.obs.mode, config.network.obs) == (3, "single", "single")
    assert config.ppo.learning_rate == 3e-4 and config.ppo.clip_value is True
    assert config.env.obs.stacked_channels == ("own", "border")
    nested = tmp_path / "nested.toml"
    nested.write_text('map = "plains_64"\n[ppo]\nlearning_rate = 1e-3\nn-envs = 4\n[env]\nnum_bots = 2\n'
                      'frame-stack = 2\n[env.obs]\ntactical_size = 16\n[network]\nwidth = 0.5\nheads = 2\n')
    config = load_config_file(nested)
    assert config.run.map == "plains_64" and config.ppo.learning_rate == 1e-3 and config.ppo.num_envs == 4
    assert config.env.num_bots == 2 and config.env.obs.frame_stack == 2 and config.env.obs.tactical_size == 16
    assert config.network.width == 0.5 and config.network.heads == 2
    as_json = tmp_path / "nested.json"
    as_json.write_text(json.dumps({"env": {"num_bots": 3, "obs": {"mode": "single"}}, "ppo": {"gamma": 0.9}}))
    config = load_config_file(as_json)
    assert config.env.num_bots == 3 and config.network.obs == "single" and config.ppo.gamma == 0.9


def test_a_run_folders_config_json_round_trips_and_old_flat_ones_still_load(tmp_path):
    config = TrainConfig().replace(map="plains_32", obs="single", n_envs=2, n_steps=8, batch_size=8,
                                   stacked_channels=("own", "enemy", "border"), heads=2, max_minutes=3.0)
    saved = tmp_path / "config.json"
    saved.write_text(config.to_json())
    assert json.loads(saved.read_text())["ppo"]["num_envs"] == 2  # written nested
    assert load_config_file(saved) == config
    assert TrainConfig.from_dict(dataclasses.asdict(config)) == config  # checkpoint meta
    # An earlier run's flat config.json (every key of the flat TrainConfig before the refactor).
    old = {"map": "continents_128", "maps_dir": None, "num_bots": 5, "nations": False, "obs": "multi",
           "local_view_size": None, "frame_stack": 4, "device": "auto", "n_envs": 16, "batch_size": 128,
           "n_steps": 32, "total_timesteps": 120000, "learning_rate": 0.001, "lr_schedule": "linear",
           "gamma": 0.995, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.005, "vf_coef": 0.5,
           "max_grad_norm": 0.5, "update_epochs": 4, "seed": 0, "ticks_per_step": 10, "max_steps": 80,
           "time_limit": "lose", "reset_pool_size": 64, "reward": "share", "network_width": 0.25,
           "network_dtype": "float32", "attention": True, "output_dir": "runs/learning",
           "name": "learning_multi", "continue_from": None, "updates_per_chunk": 1, "checkpoint_every": 20,
           "keep_checkpoints": 3, "eval_every": 0, "eval_games": 16, "image_every": 0, "max_minutes": 20.0}
    (tmp_path / "old.json").write_text(json.dumps(old))
    config = load_config_file(tmp_path / "old.json")
    assert (config.ppo.num_envs, config.ppo.batch_size, config.env.time_limit) == (16, 128, "lose")
    assert config.network.width == 0.25 and config.run.max_minutes == 20.0


def test_flags_win_over_the_config_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"ppo": {"learning_rate": 0.1, "gamma": 0.9}, "num-bots": 3}))
    config = config_from_args(["--config", str(path), "--learning-rate", "0.2"])
    assert (config.ppo.learning_rate, config.ppo.gamma, config.env.num_bots) == (0.2, 0.9, 3)


@pytest.mark.parametrize("content, message", [
    ({"num_bots": 3, "learning_rat": 0.1}, "unknown key 'learning_rat'"),
    ({"num_envs": 4}, "unknown key 'num_envs' (did you mean --n-envs?)"),
    ({"ppo": {"learning_rat": 0.1}}, "unknown key 'ppo.learning_rat'; accepted are num_envs, n_steps"),
    ({"learning_rate": "fast"},
     "key 'learning_rate' (PPOConfig.learning_rate): expected a number, got 'fast'"),
    ({"env": {"nations": "yes"}}, "key 'env.nations' (EnvConfig.nations): expected true or false"),
    ({"ppo": 3}, "key 'ppo' must be a section"),
    ({"reward": "gold"}, "expected one of share, rank, got 'gold'"),
    ({"ppo": {"gamma": 2.0}}, "key 'ppo.gamma' must be a finite number >= 0 and <= 1, got 2.0"),
    ({"network": {"obs": "single"}}, "key 'network.obs' is not set directly"),
    ({"obs": "single", "env": {"obs": {"mode": "multi"}}}, "both set ObsConfig.mode"),
])
def test_bad_config_files_say_which_file_and_key_and_what_is_accepted(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError) as error:
        load_config_file(path)
    text = str(error.value)
    assert message in text and str(path) in text and "\n" not in text, text


def test_unreadable_config_files_and_cli_reports(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text("learning_rate = \n")
    with pytest.raises(ValueError, match="is not valid TOML"):
        read_config_file(broken)
    with pytest.raises(ValueError, match="does not exist"):
        read_config_file(tmp_path / "missing.json")
    with pytest.raises(SystemExit):
        config_from_args(["--config", str(broken)])
    assert "is not valid TOML" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"ppo": {"n_envs": 0}}))
    with pytest.raises(SystemExit):
        config_from_args(["--config", str(bad)])
    assert f"config file {bad}: key 'ppo.n_envs' must be an integer >= 1, got 0" in capsys.readouterr().err


def test_replace_takes_flags_fields_and_components():
    config = TrainConfig().replace(n_envs=4, learning_rate=1e-3, ppo=PPOConfig(gamma=0.9))
    assert config.ppo.num_envs == 4 and config.ppo.gamma == 0.9 and config.ppo.learning_rate == 1e-3
    flat = config.flat()
    assert flat["n-envs"] == 4 and flat["obs"] == "multi" and "network-width" in flat and "obs" in flat
    assert TrainConfig.from_dict(flat) == config  # the flat form reads back
    with pytest.raises(ValueError, match="unknown key 'learning_rat'"):
        TrainConfig().replace(learning_rat=1)
    with pytest.raises(ValueError, match=r"key 'time_limit'.*expected one of truncate, lose"):
        TrainConfig().replace(time_limit="never")


def test_unset_rollout_sizes_are_filled_by_device_and_refused_until_then():
    with pytest.raises(ValueError, match=r"PPOConfig\.num_envs is unset"):
        _ = TrainConfig().ppo.rollout_size
    resolved = resolve(TrainConfig(), map_tiles=128 * 128, device="cpu")
    assert resolved.ppo.rollout_size == 8 * 64
    with pytest.raises(ValueError, match=r"PPOConfig\.batch_size 48 must divide"):
        resolve(TrainConfig().replace(batch_size=48), map_tiles=1024 * 1024, device="cuda")


def test_the_configuration_imports_no_jax():
    code = ("import sys, jaxms.config, jaxms.train, jaxms.settings, jaxms.nn, jaxms.ppo; "
            "from jaxms.nn import NetworkConfig; from jaxms.ppo import PPOConfig; "
            "jaxms.train.build_parser(); jaxms.config.TrainConfig(); "
            "assert 'jax' not in sys.modules, sorted(m for m in sys.modules if m.startswith('jax.'))[:5]")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_nothing_in_the_package_imports_the_command_lines():
    """The host layer has no cycles: jaxms.train and jaxms.evaluate are CLIs nothing imports."""
    clis = {"jaxms.train", "jaxms.evaluate"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            offenders += [f"{path.relative_to(PACKAGE.parent)}: {name}" for name in names if name in clis]
    assert not offenders, offenders
    # benchmarks/learning.py trains through jaxms.run too, not the training CLI.
    learning = (PACKAGE.parent / "benchmarks" / "learning.py").read_text()
    assert "jaxms.train" not in learning.replace("python -m jaxms.train", "")
