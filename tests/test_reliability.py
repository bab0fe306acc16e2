"""Nothing silent, nothing lost: bad input through the command lines, resume semantics, NaN guards, every run
folder evaluable, damaged checkpoints, signals and kill -9 of a real `python -m jaxms.train`.

One tiny run (plains_32, single view, an eighth-width network, 2 envs x 8 steps) is trained once for the
module by a subprocess; the tests copy it before changing anything. Its programs are the same as
test_train.py's CLI test (conftest.TINY_CLI), so JAX's persistent compilation cache serves the later runs
(`make test` runs a test file on one worker: --dist loadfile).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_CLI

from jaxms.checkpoint import Checkpointer, CheckpointError
from jaxms.config import flags
from jaxms.evaluate import main as evaluate_main
from jaxms.maps.__main__ import main as maps_main
from jaxms.train import config_from_args
from jaxms.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
TINY = TINY_CLI
STEPS_PER_UPDATE = 16


def start_training(*args: str) -> subprocess.Popen:
    """`python -m jaxms.train ARGS` in its own process group, output piped (not a terminal)."""
    return subprocess.Popen([sys.executable, "-m", "jaxms.train", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))


def finish(process: subprocess.Popen, timeout: float = 400) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def steps_in(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def wait_for(condition, process: subprocess.Popen, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"training ended early ({process.returncode}):\n{out}\n{err}")
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.2)


def one_run(output: Path) -> Path:
    (run,) = [p for p in output.iterdir() if p.is_dir()]
    return run


def env_steps_column(run: Path) -> list[int]:
    lines = (run / "progress.csv").read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines]


def tensorboard_steps(run: Path, tag: str) -> list[int]:
    """The steps of `tag` as TensorBoard shows them: events files in order, each SessionLog START at step
    S (tensorboardX's purge_step) discarding what earlier files hold from S on."""
    from tensorboardX.proto import event_pb2

    steps: list[int] = []
    for path in sorted(run.glob("events.out.tfevents*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            if event.HasField("session_log") and event.session_log.status == event.session_log.START:
                steps = [s for s in steps if s < event.step]
            if event.HasField("summary"):
                steps += [event.step for value in event.summary.value if value.tag == tag]
    return steps


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, str]:
    """(run folder, stderr) of a finished 2-update run with checkpoints/1, /2, best/ and final/."""
    output = tmp_path_factory.mktemp("runs")
    process = start_training(*TINY, "--total-timesteps", "32", "--eval-every", "2", "--eval-games", "2",
                             "--output-dir", str(output), "--name", "tiny:915,290")
    code, out, err = finish(process)
    assert code == 0, out + err
    return one_run(output), err


def copy_run(run: Path, tmp_path: Path, without: tuple[str, ...] = ()) -> Path:
    copy = tmp_path / run.name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(*without))
    return copy


def test_the_cli_trains_checkpoints_resumes_and_evaluates(tmp_path, capsys):
    """In process (its programs are the subprocess runs' ones: the first compile serves the others)."""
    assert train_main([*TINY_CLI, "--eval-every", "2", "--eval-games", "2", "--total-timesteps", "32",
                       "--output-dir", str(tmp_path), "--name", "tiny"]) == 0
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
    assert train_main(["--continue-from", str(run), "--total-timesteps", "48"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "3"

    assert evaluate_main([str(run), "--games", "2", "--baselines", "wait"]) == 0
    results = json.loads((run / "evaluation.json").read_text())["results"]
    assert set(results) == {"agent", "wait"} and 0.0 <= results["agent"]["win_rate"] <= 1.0


# ---------------------------------------------------------------------------------------------------------
# Bad input: one line, exit code 2, no traceback
# ---------------------------------------------------------------------------------------------------------


def _cli_cases(tmp: Path, run: Path) -> list[tuple[str, list[str], str]]:
    a_file = tmp / "a_file"
    a_file.write_text("x")
    configs = {"fast.json": '{"learning_rate": "fast"}', "high.toml": '[ppo]\ngamma = "high"\n',
               "empty.json": "", "seed.json": '{"seed": "one"}', "nan.json": '{"ent_coef": NaN}'}
    for name, text in configs.items():
        (tmp / name).write_text(text)
    return [
        ("train", ["--learning-rate", "nan"], "--learning-rate: expected a finite number"),
        ("train", ["--ent-coef", "inf"], "--ent-coef: expected a finite number"),
        ("train", ["--max-minutes=-inf"], "--max-minutes: expected a finite number"),
        ("train", ["--seed", str(2**64)], "--seed must be an integer in 0..9223372036854775807"),
        ("train", ["--seed", "-1"], "--seed must be an integer in 0..9223372036854775807"),
        ("train", ["--config", str(tmp / "fast.json")], "key 'learning_rate'"),
        ("train", ["--config", str(tmp / "high.toml")], "key 'ppo.gamma'"),
        ("train", ["--config", str(tmp / "empty.json")], "is not valid JSON"),
        ("train", ["--config", str(tmp / "seed.json")], "key 'seed'"),
        ("train", ["--config", str(tmp / "nan.json")], "expected a finite number"),
        ("train", ["--config", str(tmp / "missing.toml")], "does not exist"),
        ("train", [*TINY, "--output-dir", str(a_file)], f"--output-dir {a_file}: is a file"),
        ("train", [*TINY, "--output-dir", str(a_file / "runs")], f"--output-dir {a_file / 'runs'}: cannot"),
        ("train", ["--continue-from", str(run), "--learning-rate", "1e-3", "--map", "plains_64"],
         "cannot be changed, the run fixes every setting"),
        ("train", ["--continue-from", str(tmp / "nothing")], "no such file or folder"),
        ("train", ["--continue-from", str(a_file)], "is a file"),
        ("evaluate", [str(run), "--out", str(tmp / "missing" / "e.json")], "does not exist"),
        ("evaluate", [str(run), "--out", str(tmp)], "is a folder"),
        ("evaluate", [str(tmp / "nothing")], "no such file or folder"),
        ("evaluate", [str(run), "--seed", str(2**64)], "--seed must be an integer in 0.."),
        ("maps", ["show", "plains_32", "--out", str(tmp / "missing" / "m.png")], "does not exist"),
        ("maps", ["show", "plains_32", "--out", str(a_file / "m.png")], "is a file, not a folder"),
        ("maps", ["show", "plains_32", "--out", str(tmp)], "is a folder"),
        ("maps", ["save", "plains_32", "--out", str(a_file)], "is a file"),
        ("maps", ["save", "plains_32", "--out", str(tmp / "missing" / "deeper" / "map")], "does not exist"),
    ]


def test_bad_input_through_the_clis_is_one_line_and_exit_code_2(finished_run, tmp_path, capsys):
    run, _ = finished_run
    mains = {"train": train_main, "evaluate": evaluate_main, "maps": maps_main}
    for cli, argv, expected in _cli_cases(tmp_path, run):
        try:
            code = mains[cli](argv)
        except SystemExit as exit:  # argparse's parser.error
            code = exit.code
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert code == 2, (cli, argv, err)
        assert len(errors) == 1 and expected in errors[0], (cli, argv, err)
        assert "Traceback" not in err
    assert not (tmp_path / "missing").exists() and (tmp_path / "a_file").read_text() == "x"


def test_every_number_setting_refuses_nan_and_infinity(capsys):
    numbers = [flag for flag, leaf in flags().items() if leaf.kind is float]
    assert {"learning-rate", "gamma", "ent-coef", "network-width"} <= set(numbers)
    for flag in numbers:
        for text in ("nan", "inf", "-inf"):
            with pytest.raises(SystemExit) as exit:
                config_from_args([f"--{flag}={text}"])
            assert exit.value.code == 2
            assert f"--{flag}: expected a finite number" in capsys.readouterr().err, flag


# ---------------------------------------------------------------------------------------------------------
# Resume: the run's own settings, extended only by --total-timesteps; no duplicate steps in the logs
# ---------------------------------------------------------------------------------------------------------


def test_a_run_folder_name_is_safe_and_output_off_a_terminal_shows_progress(finished_run):
    run, err = finished_run
    assert run.name.startswith("tiny_915_290_")  # the ':' and ',' of a name or map spec replaced
    progress = [line for line in err.splitlines() if "env steps (" in line]
    assert progress and "32/32 env steps (100%)" in progress[-1]
    assert all("steps/s" in line and "ETA" in line for line in progress)


def test_resume_keeps_the_runs_settings_and_extends_only_its_length(finished_run, tmp_path, capsys):
    run = copy_run(finished_run[0], tmp_path)
    before = (run / "config.json").read_text()
    # Without --total-timesteps a finished run has nothing left to do (it was once extended to 1,000,000).
    assert train_main(["--continue-from", str(run)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (run / "config.json").read_text() == before
    # Resuming from final/ stands for the run (final/ holds the network only); 48 steps: one more update.
    assert train_main(["--continue-from", str(run / "final"), "--total-timesteps", "48"]) == 0
    captured = capsys.readouterr()
    assert "resumed from" in captured.out and "final/ holds the network only" in captured.err
    saved = json.loads((run / "config.json").read_text())
    assert saved["ppo"]["total_timesteps"] == 48 and saved["run"]["map"] == "plains_32"
    assert steps_in(run / "checkpoints")[-1] == 3 and steps_in(run / "final") == [3]
    assert env_steps_column(run) == [16, 32, 48]


# ---------------------------------------------------------------------------------------------------------
# Evaluation from any folder of a run; non-finite networks refused
# ---------------------------------------------------------------------------------------------------------


def test_every_folder_of_a_run_is_evaluable(finished_run, tmp_path):
    from jaxms.run import load_run

    run = finished_run[0]
    bare = copy_run(run, tmp_path, without=("best", "final"))  # a run shorter than --eval-every
    for path, expected in ((run, "best/2"), (run / "final", "final/2"),
                           (run / "checkpoints", "checkpoints/2"),
                           (run / "checkpoints" / "1", "checkpoints/1"), (bare, "checkpoints/2")):
        lines: list[str] = []
        config, run_dir, _, params = load_run(path, report=lines.append)
        assert expected in lines[-1] and run_dir.name == run.name, (path, lines)
        assert config.ppo.total_timesteps == 32 and jax.tree.leaves(params)


def test_a_jax_runs_network_loads_into_the_torch_network(finished_run):
    """The other direction of tests/test_torch.py's: a JAX run's best/ weights in the PyTorch mirror give the
    JAX network's logits and values (within 1e-5) on observations of the run's shapes."""
    torch = pytest.importorskip("torch", reason="PyTorch is optional (pip install -e '.[torch]')")
    from jaxms.run import load_run
    from jaxms.torch.convert import load_torch_network

    run = finished_run[0]
    config, _, network, params = load_run(run)
    torch_net, torch_config = load_torch_network(run)
    assert torch_config == config and config.run.backend == "jax"
    shapes = torch_net.shapes
    obs = network.example_observation(seed=1, batch=(8,), global_size=shapes["map"][0],
                                      channels=shapes["map"][-1], features=shapes["features"][0])
    logits, value, _ = jax.jit(network.apply)(params, obs)
    with torch.no_grad():
        torch_obs = {key: torch.from_numpy(np.array(value)) for key, value in obs.items()}
        torch_logits, torch_value, _ = torch_net(torch_obs)
    np.testing.assert_allclose(torch_logits.numpy(), np.asarray(logits), atol=1e-5, rtol=0)
    np.testing.assert_allclose(torch_value.numpy(), np.asarray(value), atol=1e-5, rtol=0)


def test_evaluate_a_run_without_best_shows_what_it_loads_and_games_as_they_go(finished_run, tmp_path, capsys,
                                                                             monkeypatch):
    import jaxms.play

    monkeypatch.setattr(jaxms.play, "REPORT_EVERY_S", 0.0)
    bare = copy_run(finished_run[0], tmp_path, without=("best", "final"))
    out = tmp_path / "evaluation.json"
    assert evaluate_main([str(bare), "--games", "2", "--baselines", "none", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"network: {bare / 'checkpoints' / '2'} (the newest checkpoint" in err
    assert "games finished" in err and "agent: 2/2 games played" in err
    assert json.loads(out.read_text())["results"]["agent"]["games"] == 2


def test_a_network_that_is_not_finite_is_refused(finished_run, tmp_path):
    from jaxms.run import load_run

    run = copy_run(finished_run[0], tmp_path)
    reader = Checkpointer(run / "final", read_only=True)
    state, meta = reader.restore_raw()
    poisoned = jax.tree.map(lambda x: np.full_like(x, np.nan), state)
    shutil.rmtree(run / "final")
    writer = Checkpointer(run / "final", keep=1, asynchronous=False)
    writer.save(2, poisoned, meta)
    writer.close()
    with pytest.raises(CheckpointError, match=r"final/2: the network's parameters are not finite"):
        load_run(run / "final")


# ---------------------------------------------------------------------------------------------------------
# Checkpoints: damaged ones skipped by name, temp folders, a failed background save
# ---------------------------------------------------------------------------------------------------------


def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_used(finished_run, tmp_path):
    run = copy_run(finished_run[0], tmp_path)
    newest = run / "checkpoints" / "2"
    biggest = max((p for p in (newest / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    os.truncate(biggest, biggest.stat().st_size // 3)
    warnings: list[str] = []
    reader = Checkpointer(run / "checkpoints", read_only=True, warn=warnings.append)
    _, meta = reader.restore_raw()
    assert reader.restored_step == 1 and meta["update"] == 1
    assert len(warnings) == 1 and f"checkpoint {newest} is damaged" in warnings[0]
    # Empty and corrupt JSON: named, and the run's config comes from the previous step.
    for text in ("", "{not json"):
        (newest / "meta" / "metadata").write_text(text)
        warnings.clear()
        assert reader.read_meta()["update"] == 1 and str(newest) in warnings[0]
    with pytest.raises(CheckpointError, match=re.escape(str(newest))):
        reader.read_meta(2)
    # A temp folder of an interrupted save is not a step, and is removed when the folder is written to.
    leftover = run / "checkpoints" / "3.orbax-checkpoint-tmp"
    leftover.mkdir()
    assert Checkpointer(run / "checkpoints", read_only=True).latest_step() == 2
    Checkpointer(run / "checkpoints").close()
    assert not leftover.exists()


def test_a_checkpoint_of_another_layout_is_refused_by_what_differs(finished_run, tmp_path, capsys):
    """A checkpoint whose state lacks a field this jaxms has (as one written before `GameState.beach_box`
    existed would) is not "damaged": resuming names it and what differs, in one line, exit code 2, and
    does not fall back to older steps (they share its layout)."""
    run = copy_run(finished_run[0], tmp_path)
    reader = Checkpointer(run / "checkpoints", read_only=True)
    state, meta = reader.restore_raw()

    def without(tree, name):  # the nested dicts as read back, one key dropped wherever it is
        if isinstance(tree, dict):
            return {key: without(value, name) for key, value in tree.items() if key != name}
        return [without(value, name) for value in tree] if isinstance(tree, list) else tree

    older = without(state, "beach_box")
    assert older != state
    writer = Checkpointer(run / "checkpoints", asynchronous=False)
    writer.save(3, older, {**meta, "update": 3})
    writer.close()
    code = train_main(["--continue-from", str(run), "--total-timesteps", "64"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == 2 and len(errors) == 1, errors
    assert f"checkpoint {run / 'checkpoints' / '3'} holds a state laid out otherwise" in errors[0]
    assert "lacks" in errors[0] and "beach_box" in errors[0] and "damaged" not in errors[0]


def test_a_save_failing_in_the_background_is_reported_once_and_the_last_good_one_survives(tmp_path, capfd):
    tree = {"weights": jax.random.normal(jax.random.key(0), (100_000,)), "key": jax.random.key(1)}
    checkpoints = Checkpointer(tmp_path / "checkpoints")
    checkpoints.save(1, tree, {"update": 1})
    checkpoints.wait()
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, limits[1]))  # writes past 50 kB fail, like a full disk
    try:
        checkpoints.save(2, tree, {"update": 2})  # asynchronous: fails in orbax's background thread
        with pytest.raises(CheckpointError) as failure:
            checkpoints.wait()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    message = str(failure.value)
    assert "could not write checkpoint" in message and "File too large" in message
    assert f"the last good checkpoint is {tmp_path / 'checkpoints' / '1'}" in message and "\n" not in message
    checkpoints.close()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1"]  # no temp folder left
    restored, meta = Checkpointer(tmp_path / "checkpoints", read_only=True).restore(tree)
    assert meta == {"update": 1}
    np.testing.assert_array_equal(restored["weights"], tree["weights"])
    assert "Checkpointer failed" not in capfd.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# A non-finite loss or parameter stops the run, naming the update, keeping the last good checkpoint
# ---------------------------------------------------------------------------------------------------------


def test_training_that_diverges_stops_naming_the_update(tmp_path, capsys, monkeypatch):
    import jaxms.ppo

    real = jaxms.ppo.make_train

    def diverging_make_train(*args, **kwargs):
        trainer = real(*args, **kwargs)
        chunk = trainer.train_chunk

        def train_chunk(runner):
            runner, metrics = chunk(runner)
            if int(runner.update) == 2:  # the second update's parameters blow up
                runner = runner.replace(params=jax.tree.map(lambda x: x * jnp.nan, runner.params))
            return runner, metrics

        return dataclasses.replace(trainer, train_chunk=train_chunk)

    monkeypatch.setattr(jaxms.ppo, "make_train", diverging_make_train)
    code = train_main([*TINY, "--total-timesteps", "64", "--eval-every", "0", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    run = one_run(tmp_path)
    assert code == 1
    assert "training stopped at update 2: network parameters not finite" in err
    assert f"the last good checkpoint is {run / 'checkpoints' / '1'}" in err
    assert steps_in(run / "checkpoints") == [1] and not (run / "final").exists()


# ---------------------------------------------------------------------------------------------------------
# Signals and kill -9 of a real `python -m jaxms.train`
# ---------------------------------------------------------------------------------------------------------


def test_sigterm_saves_kill_9_loses_only_the_chunk_and_resume_continues(tmp_path):
    output = tmp_path / "runs"
    long_run = [*TINY, "--total-timesteps", "100000", "--eval-every", "0", "--output-dir", str(output)]
    process = start_training(*long_run)
    wait_for(lambda: output.is_dir() and any(output.iterdir()) and
             len(steps_in(one_run(output) / "checkpoints")) >= 2, process)
    process.send_signal(signal.SIGTERM)
    code, out, err = finish(process)
    run = one_run(output)
    assert code == 0 and "SIGTERM: finishing this chunk" in err, err
    assert f"resume with --continue-from {run}" in out
    saved = steps_in(run / "checkpoints")[-1]
    assert saved == len(env_steps_column(run))  # the update it stopped at is saved, and logged once
    assert not list((run / "checkpoints").glob("*tmp*")) and not (run / "final").exists()

    # kill -9 while it trains: the checkpoints written before it are intact; the tail it lost is redone.
    process = start_training("--continue-from", str(run))
    wait_for(lambda: steps_in(run / "checkpoints")[-1] >= saved + 2, process)
    process.kill()
    process.wait()
    resume_at = steps_in(run / "checkpoints")[-1]
    total = (resume_at + 2) * STEPS_PER_UPDATE
    code, out, err = finish(start_training("--continue-from", str(run), "--total-timesteps", str(total)))
    assert code == 0, err
    assert f"at update {resume_at} (" in out
    assert steps_in(run / "final") == [total // STEPS_PER_UPDATE]
    logged = env_steps_column(run)
    assert logged == list(range(STEPS_PER_UPDATE, total + 1, STEPS_PER_UPDATE))  # no step twice, none lost
    loss_steps = tensorboard_steps(run, "train/loss")
    assert loss_steps == logged
    assert json.loads((run / "config.json").read_text())["ppo"]["total_timesteps"] == total


def test_a_signal_before_the_first_update_leaves_no_run_behind(tmp_path):
    output = tmp_path / "runs"
    process = start_training(*TINY, "--total-timesteps", "32", "--eval-every", "0",
                             "--output-dir", str(output))
    wait_for(lambda: output.is_dir() and any(p.is_dir() for p in output.iterdir()), process)
    process.send_signal(signal.SIGTERM)
    code, _, err = finish(process)
    assert code == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not any(output.iterdir())  # no run folder, no LATEST
