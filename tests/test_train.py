"""Training runs: exact resume from a checkpoint, the CLI end to end, and its errors."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from conftest import TINY_CLI

from jaxms.checkpoint import Checkpointer
from jaxms.config import TrainConfig, resolve
from jaxms.train import main


def leaves(tree):
    to_data = lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x  # noqa: E731
    return [np.asarray(to_data(x)) for x in jax.tree.leaves(tree)]


def test_a_resumed_run_continues_bit_for_bit(tmp_path, tiny_run):
    """Two chunks of 2 updates straight, or the first, a checkpoint, a restore and the second: the same
    runner state and metrics bit for bit (the run is conftest's tiny_run, compiled once a session)."""
    _, _, trainer = tiny_run
    straight = trainer.init(jax.random.key(5))
    straight, _ = trainer.train_chunk(straight)
    straight, metrics_straight = trainer.train_chunk(straight)

    interrupted = trainer.init(jax.random.key(5))
    interrupted, _ = trainer.train_chunk(interrupted)
    checkpoints = Checkpointer(tmp_path / "checkpoints", keep=2)
    checkpoints.save(1, interrupted, {"note": "half way"})
    checkpoints.close()
    del interrupted
    template = trainer.init(jax.random.key(99))  # another seed: everything must come from the checkpoint
    restored, meta = Checkpointer(tmp_path / "checkpoints").restore(template)
    assert meta == {"note": "half way"} and int(restored.update) == 2
    resumed, metrics_resumed = trainer.train_chunk(restored)
    for a, b in zip(leaves(metrics_straight), leaves(metrics_resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(leaves(straight), leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


TINY_RUN = [*TINY_CLI, "--eval-every", "2", "--eval-games", "2"]


def test_the_cli_trains_checkpoints_resumes_and_evaluates(tmp_path, capsys):
    assert main([*TINY_RUN, "--total-timesteps", "32", "--output-dir", str(tmp_path), "--name", "tiny"]) == 0
    (run,) = (p for p in tmp_path.iterdir() if p.is_dir())
    assert run.name.startswith("tiny_")
    assert (tmp_path / "LATEST").read_text().strip() == str(run)
    saved = json.loads((run / "config.json").read_text())
    assert saved["ppo"]["num_envs"] == 2 and saved["env"]["obs"]["mode"] == "single"
    assert saved["network"]["obs"] == "single" and saved["network"]["width"] == 0.125
    assert saved["env"]["obs"]["global_size"] == 16 and saved["network"]["attention"] is False
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["1", "2"]
    assert [p.name for p in (run / "final").iterdir()] == ["2"] and any((run / "best").iterdir())
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    # Continue the same run to 48 steps: it picks up at update 2 and writes into the same folder.
    assert main(["--continue-from", str(run), "--total-timesteps", "48"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "3"

    from jaxms.evaluate import main as evaluate_main

    assert evaluate_main([str(run), "--games", "2", "--baselines", "wait"]) == 0
    results = json.loads((run / "evaluation.json").read_text())["results"]
    assert set(results) == {"agent", "wait"} and 0.0 <= results["agent"]["win_rate"] <= 1.0


def test_bad_flags_and_runs_say_what_is_accepted(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--obs", "triple"])
    assert "--obs: expected one of multi, single, got 'triple'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--n-envs", "0"])
    assert "--n-envs must be an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--time-limit", "never"])
    assert "--time-limit: expected one of truncate, lose, got 'never'" in capsys.readouterr().err
    assert main(["--map", "atlantis_of_dreams", "--output-dir", str(tmp_path)]) == 2
    assert "atlantis_of_dreams" in capsys.readouterr().err
    assert main(["--device", "mps"]) == 2
    assert "PyTorch" in capsys.readouterr().err
    assert main(["--continue-from", str(tmp_path / "nothing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_device_and_map_presets_fill_unset_sizes():
    small = resolve(TrainConfig(), map_tiles=128 * 128, device="cpu")
    assert (small.ppo.num_envs, small.ppo.batch_size, small.ppo.n_steps) == (8, 64, 64)
    large = resolve(TrainConfig(), map_tiles=1024 * 1024, device="cpu")
    assert (large.ppo.num_envs, large.ppo.batch_size, large.ppo.n_steps) == (2, 32, 256)
    cuda = resolve(TrainConfig().replace(n_envs=16), map_tiles=1024 * 1024, device="cuda")
    assert (cuda.ppo.num_envs, cuda.ppo.batch_size, cuda.ppo.n_steps) == (16, 256, 1024)
    # An unset batch size that does not divide the rollout becomes its largest divisor below the table's.
    odd = resolve(TrainConfig().replace(n_envs=3, n_steps=10), map_tiles=100, device="cpu")
    assert (odd.ppo.num_envs, odd.ppo.batch_size, odd.ppo.n_steps) == (3, 30, 10)
    with pytest.raises(ValueError, match="must divide"):
        resolve(TrainConfig().replace(batch_size=48), map_tiles=1024 * 1024, device="cpu")
