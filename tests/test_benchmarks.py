"""The benchmarks as a package: every script starts as `python -m benchmarks.NAME`; and bench_train's cheap
parts: the settings each case runs with, and the loop-carried nudge.

(Running a benchmark itself compiles a whole trainer or times many programs, minutes even on a tiny map:
too slow here. `--help` runs each module's imports and argument parser; the device suite's `--smoke` mode
runs every case of the GPU suite on tiny sizes.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import bench_train, device_suite
from jaxms.config import TrainConfig, resolve

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(path.stem for path in (REPO_ROOT / "benchmarks").glob("*.py")
                 if path.stem not in ("__init__", "common"))


def test_every_benchmark_runs_as_a_module():
    assert {"bench_env", "bench_model", "bench_obs", "bench_train", "learning"} <= set(SCRIPTS)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    # Started together (each spends its time importing JAX), from the repository root, with no sys.path edit.
    runs = {name: subprocess.Popen([sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=REPO_ROOT,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in SCRIPTS}
    for name, run in runs.items():
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, f"python -m benchmarks.{name} --help failed:\n{err[-3000:]}"
        assert f"python -m benchmarks.{name}" in out, f"benchmarks.{name}'s usage should name how to run it"


def test_benchmarks_take_the_map_as_an_argument():
    # Jitted code reads the map from the env's params (env.map_arrays(params)); env.arrays is the host-side
    # first map, a constant if closed over (XLA folds it: not what the env's step compiles).
    for name in SCRIPTS:
        source = (REPO_ROOT / "benchmarks" / f"{name}.py").read_text()
        assert "env.arrays" not in source, f"benchmarks/{name}.py reads env.arrays"


def settings(*flags: str):
    return bench_train.build_parser().parse_args(list(flags))


@pytest.mark.parametrize("size", [256, 1024])
def test_train_settings_are_what_the_train_cli_resolves(size):
    config = bench_train.case_config(size, "multi", "cpu", settings("--settings", "train"))
    expected = TrainConfig().replace(map=f"continents_{size}", obs="multi", device="cpu")
    expected = resolve(expected, size * size, "cpu")
    assert config == expected


def test_quick_settings_and_overrides():
    quick = bench_train.case_config(1024, "single", "cpu", settings("--settings", "quick"))
    ppo = quick.ppo
    assert (ppo.num_envs, ppo.n_steps, ppo.batch_size, ppo.update_epochs) == (2, 32, 32, 2)
    assert quick.env.obs.mode == "single" and quick.network.obs == "single"
    assert quick.run.map == "continents_1024" and quick.run.device == "cpu"
    # A rollout the quick minibatch does not divide gets the largest divisor below it.
    odd = bench_train.case_config(256, "multi", "cpu", settings("--settings", "quick", "--n-envs", "3",
                                                                 "--n-steps", "5", "--network-width", "0.5"))
    assert (odd.ppo.num_envs, odd.ppo.n_steps, odd.ppo.batch_size, odd.network.width) == (3, 5, 15, 0.5)
    with pytest.raises(ValueError, match="must divide"):
        bench_train.case_config(256, "multi", "cpu", settings("--settings", "quick", "--batch-size", "7"))


def test_nudge_keeps_values_unless_the_flag_is_set():
    tree = {"owner": jnp.full((2, 3, 3), 4, jnp.uint8), "mask": jnp.zeros((2, 5), bool),
            "features": jnp.ones((2, 4), jnp.float32)}
    same = bench_train._nudge(tree, jnp.array([False, False]))
    for name in tree:
        np.testing.assert_array_equal(same[name], tree[name])
        assert same[name].dtype == tree[name].dtype
    moved = bench_train._nudge(tree, jnp.array([False, True]))
    assert int(moved["owner"][1].min()) == 5 and int(moved["owner"][0].max()) == 4
    assert bool(moved["mask"][1].all()) and not bool(moved["mask"][0].any())


def test_device_suite_smoke_runs_every_case_on_the_cpu(tmp_path):
    # The GPU suite at tiny sizes on the CPU (one compiled env step serves the four env-step cases, then one
    # tiny training chunk), so `make bench-device` never rots where no GPU is lent.
    rows, json_path = device_suite.main(["--smoke", "--out-dir", str(tmp_path)])
    assert json_path == tmp_path / "smoke.json" and (tmp_path / "smoke.md").is_file()
    saved = json.loads(json_path.read_text())
    assert saved["rows"] == rows and saved["machine"]["cores"] >= 1
    env_rows = [r for r in rows if r["case"] == "env steps"]
    train_rows = [r for r in rows if r["case"] == "training"]
    assert len(env_rows) == len(device_suite.ENV_CASES) and len(train_rows) == 1
    for row in env_rows + train_rows:
        assert "skipped" not in row, row
        assert row["env_steps_per_s"] > 0 and row["timed_env_steps"] > 0 and row["compile_s"] >= 0
        assert row["device"] == "cpu" and row["map"] == "32x32"
    assert train_rows[0]["obs"] == "single" and "w 0.125" in train_rows[0]["settings"]
    assert "SMOKE" in (tmp_path / "smoke.md").read_text()


def test_device_suite_names_results_by_device_and_spends_its_budget(tmp_path, monkeypatch):
    class Device:
        device_kind = "NVIDIA H200 (SXM)"

    monkeypatch.setattr(device_suite.jax, "devices", lambda *a: [Device()])
    assert device_suite.device_name() == "NVIDIA_H200_SXM"
    monkeypatch.undo()
    # With no time left every case is reported as skipped, none is run.
    rows, json_path = device_suite.main(["--smoke", "--budget-s", "0", "--out-dir", str(tmp_path)])
    assert rows and all(r["skipped"] == "time budget 0 s" for r in rows)
    assert json.loads(json_path.read_text())["rows"] == rows


def test_profile_self_times_leave_out_nested_ops():
    """profile_tick's self time: a loop's own time is its span less the ops inside it (nested intervals)."""
    from types import SimpleNamespace

    from benchmarks.profile_tick import self_times

    event = lambda name, start, length: SimpleNamespace(name=name, start_ns=start, duration_ns=length)  # noqa: E731
    events = [event("while.1", 0, 100), event("fusion.2", 10, 30), event("copy.3", 50, 20),
              event("fusion.2", 200, 5), event("while.1", 300, 10)]
    own, calls = self_times(events)
    assert own == {"while.1": 100 - 30 - 20 + 10, "fusion.2": 35, "copy.3": 20}
    assert calls == {"while.1": 2, "fusion.2": 2, "copy.3": 1}
