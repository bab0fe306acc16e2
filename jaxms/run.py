"""A training run on the host: assembling it from a `TrainConfig`, loading a saved one, and training it.

    from jaxms.config import TrainConfig
    from jaxms.run import build_run, load_run, train
    run_dir = train(TrainConfig().replace(map="continents_128", total_timesteps=40_960))
    config, run_dir, network, params = load_run(run_dir)

`build_run` turns a config into the env, the network and the PPO settings; `load_run` rebuilds a saved
run's network and restores its parameters; `train` is the host loop around `jaxms.ppo.make_train`.

Why the training loop lives here and not in `jaxms/train.py`: `train.py` is the command line (parse flags,
report errors), and programs that train (benchmarks/learning.py, notebooks) call `train(config)` without
importing a CLI. The host layer imports one way: train.py / evaluate.py (CLIs) -> run.py (assembly, the
loop) -> play.py (policies, playing games) -> env/, nn/, ppo/.

The run lives in `<output-dir>/<name>_<timestamp>/`: `config.json`, TensorBoard events, `checkpoints/`
(every `--checkpoint-every` updates, the last `--keep-checkpoints` kept), `best/` (best evaluation win rate)
and `final/`. Each jitted chunk runs `--updates-per-chunk` PPO updates on the device; between chunks the
host loop logs, checkpoints, evaluates and moves the progress bar.

Resume: `--continue-from RUN` (or its checkpoints/, best/, final/ or a step folder) resumes the run exactly
where its newest intact checkpoint left it (same folder, same random streams), with the run's own settings
(`resume_config`): only RESUME_SETTINGS may change (the total, to extend or shorten it; the device, the
maps folder, the time budget). Guards: after each chunk the losses and parameters are checked on the host;
a non-finite one stops the run (TrainingStopped, naming the update) before anything of it is saved.
Signals: Ctrl-C or SIGTERM saves a checkpoint and exits; before the first update they stop at once and the
new run's folder is removed; a second one aborts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxms.config import TrainConfig, _get, all_leaves, resolve
from jaxms.ppo.config import PPOConfig


def detect_device(requested: str) -> str:
    """'cpu' or 'cuda' (JAX's platform for the run). 'mps' is refused with where to go instead."""
    if requested == "mps":
        raise ValueError("--device mps: JAX has no working Metal backend; on a Mac the PyTorch path trains "
                         "the same network on MPS (python -m jaxms.train --device mps), or use --device cpu")
    platforms = {d.platform for d in jax.devices()}
    if requested in ("cuda", "gpu"):
        if "gpu" not in platforms and "cuda" not in platforms:
            raise ValueError(f"--device {requested}: no GPU is visible to JAX (devices: "
                             f"{', '.join(sorted(platforms))}); install jax[cuda12] or use --device cpu")
        return "cuda"
    if requested == "cpu":
        return "cpu"
    return "cuda" if ("gpu" in platforms or "cuda" in platforms) else "cpu"


def _jax_sees_gpu() -> bool:
    return any(d.platform in ("gpu", "cuda") for d in jax.devices())


def _mps_available() -> bool:
    """PyTorch's MPS backend is usable here (only asked on a Mac, and only when torch is installed)."""
    if sys.platform != "darwin":
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.backends.mps.is_available())


def training_backend(config: TrainConfig) -> tuple[str, str]:
    """(backend, device) a run trains with: ("jax", "cpu" | "cuda") or ("torch", "cpu" | "cuda" | "mps").

    `--device mps` always means the PyTorch path (JAX has no working Metal backend), and so does
    `--device auto` on a Mac whose JAX sees no GPU when PyTorch's MPS backend is available. Raises
    ValueError (one line) when the torch path is asked for without PyTorch installed or on a device that
    is not there, or with a setting it cannot honour."""
    requested, backend = config.run.device, config.run.backend
    if requested == "mps":
        backend = "torch"
    elif requested == "auto" and backend == "jax" and _mps_available() and not _jax_sees_gpu():
        backend, requested = "torch", "mps"
    if backend == "jax":
        return "jax", detect_device(requested)
    from jaxms.torch import INSTALL_HINT

    try:
        from jaxms.torch.trainer import resolve_torch_device
    except ImportError:
        raise ValueError(f"--backend torch (and --device mps): {INSTALL_HINT}") from None
    if config.network.dtype != "float32":
        raise ValueError(f"--network-dtype {config.network.dtype}: the PyTorch path (--backend torch, "
                         "--device mps) computes in float32 only; use --network-dtype float32")
    return "torch", resolve_torch_device(requested).type


def load_game_maps(config: TrainConfig) -> list:
    """The GameMaps of `--map`: one map, or a pool of maps of one shape. Raises MapError (a ValueError)."""
    from jaxms.maps import load_maps

    return load_maps(config.run.map, maps_dir=config.run.maps_dir)


class Run(NamedTuple):
    """What `build_run` assembles (a tuple: `env, network, ppo, maps = build_run(config)`)."""

    env: Any  # jaxms.env.TerritoryEnv
    network: Any  # jaxms.nn.Network
    ppo: PPOConfig
    maps: list  # the GameMaps of the run (one, or a pool of one shape)


def build_run(config: TrainConfig, maps: list | None = None) -> Run:
    """The env, network and PPO settings of `config` (`maps`: the run's maps if already loaded).

    The tribe-AI baseline plays this env with `params.replace(agent_autopilot=True)` (`jaxms.play`).
    PPO's rollout sizes are as in `config`: `resolve` it first if they are to be chosen by device.
    """
    from jaxms.env import make_env
    from jaxms.nn import make_network

    maps = load_game_maps(config) if maps is None else maps
    env = make_env(maps[0] if len(maps) == 1 else maps, config.env, seed=config.run.seed)
    return Run(env, make_network(config.network), config.ppo, maps)


def read_run_config(folder: Path, step: int | None = None) -> TrainConfig:
    """The TrainConfig saved with checkpoint `step` in `folder` (default: the newest intact one; nested, or
    an earlier run's flat form)."""
    from jaxms.checkpoint import Checkpointer

    meta = Checkpointer(folder, read_only=True).read_meta(step)
    return _saved_config(meta, folder)


def _saved_config(meta: dict, folder: Path) -> TrainConfig:
    if not isinstance(meta.get("config"), dict):
        from jaxms.checkpoint import CheckpointError

        raise CheckpointError(f"{folder}: the checkpoint's meta/metadata holds no run config (was it written "
                              "by jaxms.train?)")
    return TrainConfig.from_dict(meta["config"], source=f"the config saved in {folder}")


# Run folders hold checkpoints in these, tried in this order when evaluating a run.
EVALUATION_ORDER = ("best", "final", "checkpoints")
WHY = {"best": "the best evaluation win rate during training", "final": "the end of training",
       "checkpoints": "the newest checkpoint"}


def _has_steps(folder: Path) -> bool:
    return folder.is_dir() and any(child.name.isdigit() and child.is_dir() for child in folder.iterdir())


def network_checkpoints(path: str | Path) -> list[tuple[Path, int | None]]:
    """The checkpoints to try, in order, for the network of `path`: a run folder gives its best/, final/,
    then checkpoints/ (those that hold steps); a checkpoints/, best/ or final/ folder or a step folder gives
    itself. Raises CheckpointError (a ValueError) saying what was expected."""
    from jaxms.checkpoint import find_checkpoint

    path = Path(path)
    found = [(path / name, None) for name in EVALUATION_ORDER if _has_steps(path / name)]
    return found or [find_checkpoint(path, what="checkpoint")]


def nonfinite(tree: Any, prefix: str = "") -> list[str]:
    """Paths of the floating-point leaves of `tree` holding NaN or inf (empty when all are finite)."""
    bad = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        array = np.asarray(leaf)
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad.append(prefix + "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path))
    return bad


def load_run(path: str | Path, map_override: str | None = None, report=None):
    """(config, run folder, network, network params) of a saved run, for evaluation.

    `path`: a run folder (its best/ checkpoint if it has one, else final/, else the newest checkpoint in
    checkpoints/), one of those folders (its newest intact step), or a step folder. `report(line)` is told
    which checkpoint was loaded. `map_override`: play on another map (spec or pool). Raises ValueError
    (CheckpointError) naming the folder when nothing loadable is found or the parameters are not finite.
    """
    from jaxms.checkpoint import Checkpointer, CheckpointError

    failures = []
    for folder, step in network_checkpoints(path):
        reader = Checkpointer(folder, read_only=True, warn=report or (lambda line: None))
        try:
            state, meta = reader.restore_raw(step)
        except CheckpointError as error:
            failures.append(str(error))
            continue
        where = folder / str(reader.restored_step)
        config = _saved_config(meta, folder)
        if map_override:
            config = config.replace(map=map_override)
        if not isinstance(state, dict) or "params" not in state:
            raise CheckpointError(f"{where} holds no network parameters")
        env, network, _, _ = build_run(config)
        # Shapes only (traced, not run: an eager reset compiles hundreds of one-op programs).
        obs, _ = jax.eval_shape(env.reset, jax.random.key(0), env.default_params)
        template = jax.eval_shape(network.init, jax.random.key(0), obs)
        params = _as_template(state["params"], template, where)
        bad = nonfinite(params)
        if bad:
            raise CheckpointError(f"{where}: the network's parameters are not finite (NaN or inf in "
                                  f"{len(bad)} arrays, e.g. {bad[0]}): training diverged before this "
                                  "checkpoint; evaluate an earlier one (a step folder in checkpoints/)")
        if report is not None:
            why = WHY.get(folder.name, "") if step is None else "the step given"
            report(f"network: {where} ({why or 'the newest checkpoint there'}, update "
                   f"{meta.get('update', reader.restored_step)}, {meta.get('env_steps', '?')} env steps)")
        return config, folder.parent, network, params
    raise CheckpointError("; ".join(failures))


def _as_template(saved: Any, template: Any, where: Path) -> Any:
    """`saved` (nested dicts of arrays, as restored) in the structure and dtypes of `template`."""
    try:
        return jax.tree.map(_matching, template, saved)
    except (ValueError, TypeError, KeyError) as error:
        from jaxms.checkpoint import CheckpointError

        raise CheckpointError(f"{where}: the saved network does not match the run's config "
                              f"({str(error).splitlines()[0][:160]})") from None


def _matching(template_leaf, saved_leaf):
    import jax.numpy as jnp

    saved_leaf = np.asarray(saved_leaf)
    if saved_leaf.shape != template_leaf.shape:
        raise ValueError(f"an array of shape {saved_leaf.shape} where the network has {template_leaf.shape}")
    return jnp.asarray(saved_leaf, template_leaf.dtype)


# Settings a resumed run may change: its length, and where this session runs. Every other setting is fixed
# by the run (its checkpoints were made with them).
RESUME_SETTINGS = {("ppo", "total_timesteps"): "total-timesteps", ("run", "continue_from"): "continue-from",
                   ("run", "device"): "device", ("run", "maps_dir"): "maps-dir",
                   ("run", "max_minutes"): "max-minutes", ("run", "devices"): "devices",
                   ("run", "coordinator"): "coordinator", ("run", "num_processes"): "num-processes",
                   ("run", "process_id"): "process-id"}


def resume_config(path: str | Path, warn=None, **changes: Any) -> TrainConfig:
    """The config to resume the run at `path` with: the run's own (from its newest intact checkpoint),
    `continue_from=path`, and `changes` among RESUME_SETTINGS (by field or flag name: `total_timesteps` to
    extend the run, `device`, `maps_dir`, `max_minutes`, and where this session runs: `devices`,
    `coordinator`, `num_processes`, `process_id`: one device unless given, whatever earlier sessions used).
    Raises ValueError for a fixed setting or a bad path."""
    from jaxms.checkpoint import Checkpointer

    folder, step = _resume_folder(path, warn)
    saved = _saved_config(Checkpointer(folder, read_only=True, warn=warn or _stderr).read_meta(step), folder)
    allowed = {flag.replace("-", "_") for flag in RESUME_SETTINGS.values()}
    fixed = sorted(f"--{name.replace('_', '-')}" for name in changes if name.replace("-", "_") not in allowed)
    if fixed:
        raise ValueError(fixed_settings_message(fixed, path))
    # Where a session runs is its own: the devices and processes of the run's earlier sessions are not kept.
    session = {"devices": "1", "coordinator": None, "num_processes": 1, "process_id": 0}
    return saved.replace(continue_from=str(path), **{**session, **changes})


def fixed_settings_message(given: list[str], path: str | Path) -> str:
    return (f"--continue-from {path}: {', '.join(given)} cannot be changed, the run fixes every setting "
            "(its config.json); with --continue-from give only --total-timesteps (to extend or shorten the "
            "run), --device, --maps-dir, --max-minutes, --devices, --coordinator, --num-processes or "
            "--process-id, or start a new run")


def _stderr(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr, flush=True)


def _resume_folder(path: str | Path, warn=None) -> tuple[Path, int | None]:
    """(checkpoints folder, step or None) to resume `path` from: best/ and final/ hold parameters only,
    so they stand for their run, resumed from its checkpoints/."""
    from jaxms.checkpoint import find_checkpoint

    folder, step = find_checkpoint(path)
    if folder.name in ("best", "final"):
        checkpoints = folder.parent / "checkpoints"
        if not _has_steps(checkpoints):
            from jaxms.checkpoint import CheckpointError

            raise CheckpointError(f"--continue-from {path}: {folder.name}/ holds the network only and the "
                                  "run has no checkpoints/ to resume from")
        (warn or _stderr)(f"{folder.name}/ holds the network only: resuming the run from {checkpoints}")
        folder, step = checkpoints, None
    return folder, step


def safe_name(text: str) -> str:
    """`text` as a file name on any file system: characters other than letters, digits and . _ - + @ =
    (a map spec's ':' and ',', a path's '/') become '_'."""
    name = re.sub(r"[^\w.+@=-]", "_", text).strip("._") or "run"
    return name[:120]


def _run_folder(config: TrainConfig, maps: list) -> Path:
    """A new run folder under --output-dir, created; ValueError naming the path if that cannot be done."""
    output = Path(config.run.output_dir)
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output-dir {output}: is a file, not a folder; give a folder to hold runs "
                         "(created if missing)")
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    where = maps[0].name if len(maps) == 1 else f"{maps[0].name}_pool{len(maps)}"
    name = safe_name(config.run.name or f"{where}_{config.env.obs.mode}")
    run_dir = output / f"{name}_{stamp}"
    for suffix in range(1, 100):
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            run_dir = output / f"{name}_{stamp}_{suffix}"
        except OSError as error:
            raise ValueError(f"--output-dir {output}: cannot create the run folder {run_dir} "
                             f"({error.strerror or error}); give a writable folder") from None
    if not os.access(run_dir, os.W_OK):
        run_dir.rmdir()
        raise ValueError(f"--output-dir {output}: not writable; give a writable folder")
    return run_dir


class TrainingStopped(RuntimeError):
    """Training cannot go on: a non-finite loss or parameter, or a checkpoint that could not be written.
    The message names the update and the last good checkpoint."""


class _Interrupt:
    """Ctrl-C / SIGTERM. Before the first update: stop at once (KeyboardInterrupt, nothing is kept). After
    it: a flag the loop checks between chunks, to save a checkpoint and exit; a second signal aborts."""

    def __init__(self) -> None:
        self.requested = False
        self.started = False  # a first update has been done (there is something to save)

    def __call__(self, signum, frame) -> None:
        if self.requested or not self.started:
            self.requested = True
            raise KeyboardInterrupt  # may be swallowed (raised inside a gc callback): `check` raises it again
        self.requested = True
        name = "SIGTERM" if signum == signal.SIGTERM else "interrupt"
        print(f"\n{name}: finishing this chunk, saving a checkpoint and exiting (again to abort)",
              file=sys.stderr, flush=True)

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal came before the first update."""
        if self.requested and not self.started:
            raise KeyboardInterrupt


SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Metrics that are never NaN in a healthy run (explained variance is NaN when the returns do not vary).
GUARDED_METRICS = ("loss", "policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl", "grad_norm")


def _check_finite(metrics: dict, params: Any, first_update: int) -> str | None:
    """None, or what is not finite in this chunk, naming its first such update (1-based)."""
    bad_updates: dict[int, list[str]] = {}
    for key in GUARDED_METRICS:
        if key in metrics:
            values = np.asarray(metrics[key], np.float64).reshape(len(np.asarray(metrics["env_steps"])), -1)
            for i in np.flatnonzero(~np.isfinite(values).all(axis=1)):
                bad_updates.setdefault(int(i), []).append(key)
    if bad_updates:
        i = min(bad_updates)
        return f"update {first_update + i + 1}: {', '.join(bad_updates[i])} not finite"
    if not bool(_all_finite(params)):
        where = nonfinite(params)
        return (f"update {first_update + len(np.asarray(metrics['env_steps']))}: network parameters not "
                f"finite ({len(where)} arrays, e.g. {where[0] if where else '?'})")
    return None


@jax.jit
def _all_finite(tree):
    import jax.numpy as jnp

    leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


class _NoLogger:
    """The logger of processes other than process 0: they train, checkpoint their part, and say nothing."""

    def log_chunk(self, *args, **kwargs) -> None:
        pass

    def log_views(self, *args, **kwargs) -> None:
        pass

    def log_evaluation(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def _trainer(config: TrainConfig, device: str, env, network) -> tuple[Any, bool]:
    """(trainer, whether it is the data-parallel one): `make_train` on one device, else
    `make_parallel_train` over a mesh of `--devices` (all devices of all processes in a multi-process run).
    Raises ValueError for a device count JAX does not have or rollout sizes that do not split over it."""
    from jaxms.ppo import make_train
    from jaxms.ppo.parallel import device_count, device_mesh, make_parallel_train

    platform = "gpu" if device == "cuda" else "cpu"
    count = device_count(config.run.devices, platform)
    every = len(jax.devices(platform))
    if jax.process_count() > 1 and count != every:
        raise ValueError(f"--devices {config.run.devices}: a run over {jax.process_count()} processes trains "
                         f"on every device of every process ({every}): give --devices all")
    if count == 1 and jax.process_count() == 1:
        return make_train(config.ppo, env, env.default_params, network), False
    mesh = device_mesh(count, platform)
    return make_parallel_train(config.ppo, env, env.default_params, network, mesh), True


def train(config: TrainConfig, quiet: bool = False) -> Path:
    """Run (or resume, with `config.run.continue_from`) a training run; returns its folder.

    A resumed run keeps its settings: `config` must be the run's own (`resume_config(RUN, ...)` makes it),
    changed only in RESUME_SETTINGS. Raises ValueError / FileNotFoundError for bad maps, settings or paths,
    TrainingStopped when training cannot go on (non-finite loss or parameters, a checkpoint not written),
    KeyboardInterrupt when stopped by Ctrl-C / SIGTERM before the first update (its new run folder is
    removed) or aborted by a second one."""
    interrupt = _Interrupt()
    previous = {signum: signal.signal(signum, interrupt) for signum in SIGNALS}
    unraisable = sys.unraisablehook

    def quiet_interrupts(info) -> None:  # a signal raised inside a gc callback: `check` raises it again
        if not issubclass(info.exc_type, KeyboardInterrupt):
            unraisable(info)

    sys.unraisablehook = quiet_interrupts
    try:
        return _train(config, quiet, interrupt)
    finally:
        sys.unraisablehook = unraisable
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _train(config: TrainConfig, quiet: bool, interrupt: _Interrupt) -> Path:
    from jaxms.checkpoint import Checkpointer, CheckpointError
    from jaxms.distributed import any_process, from_main_process, initialize, local_copy
    from jaxms.logging import RunLogger
    from jaxms.play import evaluate_policies, network_policy

    if config.run.coordinator:  # before anything else starts JAX (a no-op if the command line did it)
        initialize(config.run.coordinator, config.run.num_processes, config.run.process_id)
    main_process = jax.process_index() == 0  # logs, evaluates, writes the run folder's files
    quiet = quiet or not main_process
    backend, device = training_backend(config)
    if backend == "torch" and (config.run.devices != "1" or config.run.coordinator):
        raise ValueError(f"--devices {config.run.devices} / --coordinator: the PyTorch path (--backend "
                         "torch, --device mps) trains on one device in one process; use --backend jax to "
                         "scale out")
    if backend == "jax" and device == "cpu":
        # this process's own first CPU device (in a multi-process run, jax.devices() starts with process 0's)
        jax.config.update("jax_default_device", jax.local_devices(backend="cpu")[0])
    resume_from = None
    if config.run.continue_from:
        folder, step = _resume_folder(config.run.continue_from, lambda line: None)  # said by resume_config
        reader = Checkpointer(folder, read_only=True, warn=_stderr)
        saved = _saved_config(reader.read_meta(step), folder)
        differ = [f"--{leaf.flag}" for leaf in all_leaves() if leaf.cli and leaf.path not in RESUME_SETTINGS
                  and _get(config, leaf.path) != _get(saved, leaf.path)]
        if differ:
            raise ValueError(fixed_settings_message(differ, config.run.continue_from)
                             + " (in Python: jaxms.run.resume_config)")
        if backend != saved.run.backend:
            raise ValueError(f"--continue-from {config.run.continue_from}: the run trains with --backend "
                             f"{saved.run.backend} and --device {config.run.device} would train it with "
                             f"{backend}; resume it on a device its backend has (cpu, cuda"
                             f"{', mps' if saved.run.backend == 'torch' else ''})")
        run_dir, resume_from = folder.parent, (folder, step)
    maps = load_game_maps(config)
    config = resolve(config, maps[0].width * maps[0].height, device)
    if backend != config.run.backend:  # --device mps (or auto on a Mac): the run's config says so
        config = config.replace(backend=backend)
    env, network, ppo, _ = build_run(config, maps=maps)
    if backend == "torch":
        from jaxms.torch.trainer import make_torch_train

        trainer, parallel = make_torch_train(ppo, env, config.network, device, seed=config.run.seed), False
    else:
        trainer, parallel = _trainer(config, device, env, network)
    if resume_from is None:  # process 0 makes the folder; the others write their checkpoint parts into it
        run_dir = Path(from_main_process(str(_run_folder(config, maps)) if main_process else ""))
    checkpoints = None
    try:
        if resume_from is None and main_process:
            (run_dir / "config.json").write_text(config.to_json() + "\n")
        if not quiet:
            print(f"run folder: {run_dir}\n{env}\nPPO: {ppo}\ntraining with {backend} on {device}\n"
                  f"config:\n{config.to_json()}", flush=True)
        runner = trainer.init(jax.random.key(config.run.seed))
        best_win_rate = -1.0
        if resume_from is not None:
            folder, step = resume_from
            reader = Checkpointer(folder, read_only=True, warn=_stderr)
            runner, meta = reader.restore(runner, step)
            best_win_rate = float(meta.get("best_win_rate", -1.0))
            interrupt.started = True  # a resumed run has a checkpoint to fall back on
            if not quiet:
                print(f"resumed from {folder / str(reader.restored_step)} at update {int(runner.update)} "
                      f"({int(runner.env_steps)} env steps); the run ends at {ppo.num_updates} updates "
                      f"({config.ppo.total_timesteps} env steps)", flush=True)
            if int(runner.update) >= ppo.num_updates:
                print(f"nothing to do: the run already did {int(runner.update)} of its {ppo.num_updates} "
                      f"updates; give --total-timesteps above {int(runner.env_steps)} to extend it",
                      flush=True)
                return run_dir
            if main_process:
                (run_dir / "config.json").write_text(config.to_json() + "\n")  # its new total, if extended
        checkpoints = Checkpointer(run_dir / "checkpoints", keep=config.run.keep_checkpoints)
        logger = RunLogger(run_dir, config, env, network, quiet=quiet,
                           resume_step=int(runner.env_steps) if resume_from is not None else None
                           ) if main_process else _NoLogger()
    except BaseException:  # Ctrl-C while compiling, a bad path: a new run leaves no folder behind
        if checkpoints is not None:
            checkpoints.close()
        if resume_from is None and main_process:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    best = Checkpointer(run_dir / "best", keep=1, asynchronous=False)
    run = config.run
    last_saved = int(runner.update) if resume_from is not None else None

    def meta(**extra):
        return {"config": dataclasses.asdict(config), "update": int(runner.update),
                "env_steps": int(runner.env_steps), "best_win_rate": best_win_rate, **extra}

    def save_checkpoint():
        nonlocal last_saved
        if last_saved != int(runner.update):
            checkpoints.save(int(runner.update), runner, meta())
            last_saved = int(runner.update)

    def last_good() -> str:
        step = checkpoints.latest_step()
        return (f"the last good checkpoint is {run_dir / 'checkpoints' / str(step)}" if step is not None
                else "no checkpoint was saved before it")

    deadline = time.monotonic() + 60.0 * run.max_minutes if run.max_minutes else float("inf")
    gif_key = jax.random.fold_in(jax.random.key(run.seed), 0x676966)  # the logged games' own stream
    completed = False
    try:
        interrupt.check()
        # A signal or the time budget in any process: all processes stop after the same chunk.
        while (int(runner.update) < ppo.num_updates
               and not any_process(interrupt.requested or time.monotonic() >= deadline)):
            start = time.perf_counter()
            first_update = int(runner.update)
            try:
                runner, metrics = trainer.train_chunk(runner)
                metrics = jax.device_get(metrics)
            except KeyboardInterrupt:
                raise
            except Exception as error:  # XLA reports out-of-memory as a runtime error
                if "RESOURCE_EXHAUSTED" in str(error) or "out of memory" in str(error).lower():
                    raise SystemExit(
                        f"out of memory with n_envs={ppo.num_envs}, n_steps={ppo.n_steps}, batch_size="
                        f"{ppo.batch_size}, views {env.observer.config.view_sizes}: reduce --n-envs, "
                        "--batch-size or --n-steps, or --local-view-size / use --obs single") from error
                raise
            problem = _check_finite(metrics, runner.params, first_update)
            if problem:
                checkpoints.wait()
                raise TrainingStopped(f"training stopped at {problem} (learning rate "
                                      f"{ppo.learning_rate}, max grad norm {ppo.max_grad_norm}); nothing of "
                                      f"this update was saved, {last_good()}")
            if not interrupt.started:
                interrupt.check()
                interrupt.started = True
                # Scripts (make train) find the run they just started here, once it has something in it.
                if main_process:
                    (run_dir.parent / "LATEST").write_text(str(run_dir) + "\n")
            logger.log_chunk(metrics, time.perf_counter() - start, ppo.rollout_size * ppo.updates_per_chunk)
            update = int(runner.update)
            if run.image_every and update % run.image_every < ppo.updates_per_chunk and main_process:
                params_here = local_copy(runner.params) if parallel else runner.params
                logger.log_views(local_copy(runner.obs) if parallel else runner.obs, int(runner.env_steps))
                if run.gif_steps and hasattr(env.observer, "config"):
                    from jaxms.play import network_actor
                    from jaxms.render import record_episode

                    # One compiled recorder serves every update: the parameters are its argument.
                    episode = record_episode(env, env.default_params, network_actor(network),
                                             jax.random.fold_in(gif_key, update), run.gif_steps,
                                             policy_params=params_here)
                    logger.log_episode(episode, int(runner.env_steps))
            if run.eval_every and update % run.eval_every < ppo.updates_per_chunk:
                summary = {"win_rate": -1.0}
                if main_process:  # on the parameters' host copy: this process's default device plays
                    # The program `python -m jaxms.evaluate` plays too (one compile serves both).
                    policy = network_policy(network, local_copy(runner.params) if parallel else runner.params)
                    key = jax.random.fold_in(jax.random.key(run.seed), update)
                    summary = evaluate_policies(env, env.default_params, {"agent": policy}, run.eval_games,
                                                key=key)["agent"]
                    logger.log_evaluation(summary, int(runner.env_steps))
                win_rate = from_main_process(float(summary["win_rate"]))
                if win_rate > best_win_rate:  # every process writes its part (orbax), process 0 the meta
                    best_win_rate = win_rate
                    best.save(update, {"params": runner.params}, meta(evaluation=summary))
            if update % run.checkpoint_every < ppo.updates_per_chunk:
                save_checkpoint()
        save_checkpoint()
        checkpoints.wait()
        if not any_process(interrupt.requested):
            final = Checkpointer(run_dir / "final", keep=1, asynchronous=False)
            final.save(int(runner.update), {"params": runner.params}, meta())
            final.close()
        completed = True
    except CheckpointError as error:
        raise TrainingStopped(f"training stopped at update {int(runner.update)}: {error}") from None
    finally:
        try:
            checkpoints.close()
        except CheckpointError as error:
            if completed:  # otherwise an error is already on its way out
                raise TrainingStopped(f"training stopped at update {int(runner.update)}: {error}") from None
        finally:
            best.close()
            logger.close()
            if not interrupt.started and resume_from is None and main_process:
                shutil.rmtree(run_dir, ignore_errors=True)  # stopped before the first update: nothing to keep
    if interrupt.requested and not quiet:
        print(f"stopped at update {int(runner.update)}; resume with --continue-from {run_dir}", flush=True)
    return run_dir
