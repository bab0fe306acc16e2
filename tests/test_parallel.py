"""Data-parallel training (jaxms.ppo.parallel, jaxms.distributed) on forced CPU devices.

JAX fixes its device count (XLA_FLAGS=--xla_force_host_platform_device_count) and its distributed runtime
when it starts, so the runs happen in subprocesses (tests/parallel_worker.py, gymnax's CartPole for a
cheap compile): one process with 4 devices, and two processes with 2 devices each joined over loopback
(gloo). Both start when the module's first test asks for them and run side by side.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gymnax", reason="gymnax is in the dev extra: pip install -e '.[dev]'")

WORKER = Path(__file__).with_name("parallel_worker.py")
TOLERANCE = 1e-5  # float32: sums over shards are added in another order
TIMEOUT_S = 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(devices: int) -> dict:
    # The device count joins the test session's XLA flags (xla_options.TEST_XLA_FLAGS: quicker compiles).
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags)
    env["PYTHONPATH"] = os.pathsep.join([str(WORKER.parents[1]), env.get("PYTHONPATH", "")])
    return env


def _finish(process: subprocess.Popen, what: str) -> None:
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    assert process.returncode == 0, f"{what} failed ({process.returncode}):\n{output[-4000:]}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(results of the 4-device process, results of the two processes, their folder), run side by side."""
    out = tmp_path_factory.mktemp("parallel")
    common = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    devices = subprocess.Popen([sys.executable, str(WORKER), "devices", str(out)], env=_environment(4),
                               **common)
    port = str(_free_port())
    processes = [subprocess.Popen([sys.executable, str(WORKER), "process", str(i), port, str(out)],
                                  env=_environment(2), **common) for i in (0, 1)]
    _finish(devices, "the 4-device run")
    for i, process in enumerate(processes):
        _finish(process, f"process {i} of the two-process run")
    two = [json.loads((out / f"process_{i}.json").read_text()) for i in (0, 1)]
    return json.loads((out / "devices.json").read_text()), two, out


def test_one_two_and_four_devices_train_to_the_same_parameters(runs):
    result, _, _ = runs
    assert result["device_count"] == 4
    # the env axis is split over 1, 2 and 4 devices; parameters are replicated
    assert [result[f"obs_shards_{n}"] for n in (1, 2, 4)] == [1, 2, 4]
    assert all(result[f"params_sharding_{n}"] == "P()" for n in (1, 2, 4))
    assert result["env_steps"] == 4 * 16 * 4  # 4 updates of the global batch (4 envs x 16 steps)
    assert result["params_change_4_to_1"] > 0.1  # training moved the parameters: equality means something
    for n in (2, 4):
        assert result[f"params_difference_1_vs_{n}"] < TOLERANCE
        assert result[f"loss_difference_1_vs_{n}"] < 1e-4


@pytest.mark.parametrize("write, read", [(4, 1), (1, 4)])
def test_a_checkpoint_resumes_on_another_device_count(runs, write, read):
    result, _, _ = runs
    key = f"{write}_to_{read}"
    assert result[f"restored_update_{key}"] == 2
    assert result[f"restored_meta_devices_{key}"] == write
    assert result[f"restored_obs_shards_{key}"] == read  # restored straight into the reader's layout
    # the resumed run's next 2 updates end where the uninterrupted run on `write` devices did
    assert result[f"resume_difference_{key}"] < TOLERANCE


def test_two_processes_train_as_one_and_checkpoint_together(runs):
    _, two, out = runs
    assert [r["process"] for r in two] == [0, 1]
    assert all(r["update"] == 4 and r["restored_update"] == 4 for r in two)
    assert all(r["restored_difference"] == 0.0 for r in two)
    assert all(r["local_obs_rows"] == 1 for r in two)  # 4 envs over 2 x 2 devices
    assert two[0]["loss"] == two[1]["loss"]
    params = [np.load(out / f"process_{i}_params.npz") for i in (0, 1)]
    reference = np.load(out / "devices_params.npz")  # one process, 4 devices, same global batch
    for name in reference.files:
        assert np.array_equal(params[0][name], params[1][name])
        assert np.abs(params[0][name] - reference[name]).max() < TOLERANCE
    # orbax wrote one checkpoint, each process its own devices' shards
    state = out / "two_process_checkpoint" / "4" / "state"
    assert (state / "ocdbt.process_0").is_dir() and (state / "ocdbt.process_1").is_dir()


def test_rollout_sizes_that_do_not_split_over_the_devices_are_refused():
    from jaxms.ppo import PPOConfig
    from jaxms.ppo.parallel import check_divisible

    check_divisible(PPOConfig(num_envs=6, n_steps=8, batch_size=48), 1)  # one device: anything goes
    check_divisible(PPOConfig(num_envs=8, n_steps=16, batch_size=32), 4)
    with pytest.raises(ValueError, match=r"--n-envs 6 must be divisible by the 4 devices"):
        check_divisible(PPOConfig(num_envs=6, n_steps=8, batch_size=16), 4)
    with pytest.raises(ValueError, match=r"--batch-size 6 must be divisible by the 4 devices"):
        check_divisible(PPOConfig(num_envs=4, n_steps=3, batch_size=6), 4)
    with pytest.raises(ValueError, match=r"minibatches .* must divide --n-steps 4"):
        check_divisible(PPOConfig(num_envs=8, n_steps=4, batch_size=4), 2)


def test_device_counts_beyond_what_jax_sees_are_refused():
    import jax

    from jaxms.ppo.parallel import device_count

    available = jax.device_count()
    assert device_count("all") == available and device_count("1") == 1
    with pytest.raises(ValueError, match=rf"--devices {available + 1}: JAX sees {available} device"):
        device_count(str(available + 1))
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match="give a count"):
            device_count(bad)


@pytest.mark.parametrize("argv, message", [
    (["--devices", "two"], "--devices='two' is not accepted: give a count (1, 2, ...) or all"),
    (["--devices", "0"], "--devices='0' is not accepted"),
    (["--num-processes", "2"], "--num-processes 2 needs --coordinator HOST:PORT"),
    (["--coordinator", "10.0.0.1:1234"], "--coordinator is for runs over several processes"),
    (["--coordinator", "10.0.0.1", "--num-processes", "2"], "give HOST:PORT of process 0's machine"),
    (["--coordinator", "h:1234", "--num-processes", "2", "--process-id", "2"],
     "--process-id 2 is not accepted with --num-processes 2: give 0..1"),
])
def test_bad_device_and_process_flags_are_refused_naming_the_flag(argv, message, capsys):
    from jaxms.train import config_from_args

    with pytest.raises(SystemExit) as exit_info:
        config_from_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_command_refuses_more_devices_than_jax_sees(tmp_path, capsys):
    import jax
    from conftest import TINY_CLI

    from jaxms.train import main

    too_many = str(jax.device_count() + 1)
    assert main([*TINY_CLI, "--devices", too_many, "--output-dir", str(tmp_path)]) == 2
    assert f"--devices {too_many}: JAX sees {jax.device_count()} device(s)" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before a run folder was made
