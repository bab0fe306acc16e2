"""The training CLI's flags and presets, and its errors (its runs end to end: test_reliability.py; exact
resume of a trainer: test_ppo.py)."""

from __future__ import annotations

import pytest

from jaxms.config import TrainConfig, resolve
from jaxms.train import main


def test_bad_flags_and_runs_say_what_is_accepted(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--obs", "triple"])
    assert "--obs: expected one of multi, single, got 'triple'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--n-envs", "0"])
    assert "--n-envs must be an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--time-limit", "never"])
    assert "--time-limit: expected one of truncate, lose, leader, got 'never'" in capsys.readouterr().err
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
