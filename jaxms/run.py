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
host loop logs, checkpoints, evaluates and moves the progress bar. `--continue-from RUN` resumes a run
exactly where its last checkpoint left it (same folder, same random streams). Ctrl-C saves a checkpoint
and exits cleanly.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import jax

from jaxms.config import TrainConfig, resolve
from jaxms.ppo.config import PPOConfig


def detect_device(requested: str) -> str:
    """'cpu' or 'cuda' (JAX's platform for the run). 'mps' is refused with where to go instead."""
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


def build_run(config: TrainConfig, agent_autopilot: bool = False, maps: list | None = None) -> Run:
    """The env, network and PPO settings of `config` (`maps`: the run's maps if already loaded).

    `agent_autopilot=True` plays the agent's seat with the tribe rules (an evaluation baseline).
    PPO's rollout sizes are as in `config`: `resolve` it first if they are to be chosen by device.
    """
    from jaxms.env import make_env
    from jaxms.nn import make_network

    maps = load_game_maps(config) if maps is None else maps
    env = make_env(maps[0] if len(maps) == 1 else maps, config.env, seed=config.run.seed,
                   agent_autopilot=agent_autopilot)
    return Run(env, make_network(config.network), config.ppo, maps)


def read_run_config(folder: Path, step: int) -> TrainConfig:
    """The TrainConfig saved with checkpoint `step` in `folder` (nested, or an earlier run's flat form)."""
    from jaxms.checkpoint import Checkpointer

    meta = Checkpointer(folder, asynchronous=False).read_meta(step)
    return TrainConfig.from_dict(meta["config"], source=f"the config saved in {folder}")


def load_run(path: str | Path, map_override: str | None = None):
    """(config, run folder, network, network params) of a saved run, for evaluation: its best/ checkpoint
    if it has one, else the latest in `path`. `map_override`: play on another map (spec or pool)."""
    from jaxms.checkpoint import Checkpointer, find_checkpoint

    path = Path(path)
    if (path / "best").is_dir() and any((path / "best").iterdir()):
        path = path / "best"
    folder, step = find_checkpoint(path)
    config = read_run_config(folder, step)
    if map_override:
        config = config.replace(map=map_override)
    env, network, _, _ = build_run(config)
    obs, _ = env.reset(jax.random.key(0), env.default_params)
    template = network.init(jax.random.key(0), obs)
    checkpointer = Checkpointer(folder, asynchronous=False)
    params, _ = checkpointer.restore({"params": template}, step)
    checkpointer.close()
    return config, folder.parent, network, params["params"]


class _Interrupt:
    """Turns the first Ctrl-C into a flag the loop checks between chunks (a second one aborts)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: finishing this chunk, saving a checkpoint and exiting (Ctrl-C again to abort)",
              file=sys.stderr, flush=True)


def train(config: TrainConfig, quiet: bool = False) -> Path:
    """Run (or resume, with `config.run.continue_from`) a training run; returns its folder.

    Raises ValueError / FileNotFoundError for bad maps, settings or paths."""
    from jaxms.checkpoint import Checkpointer, find_checkpoint
    from jaxms.logging import RunLogger
    from jaxms.play import network_policy, play_games, summarise
    from jaxms.ppo import make_train

    device = detect_device(config.run.device)
    if device == "cpu":
        jax.config.update("jax_default_device", jax.devices("cpu")[0])
    resume_from = None
    if config.run.continue_from:
        folder, step = find_checkpoint(config.run.continue_from)
        saved = read_run_config(folder, step)
        # The run continues as saved; only its length may be extended from the command line.
        config = saved.replace(total_timesteps=max(config.ppo.total_timesteps, saved.ppo.total_timesteps),
                               continue_from=config.run.continue_from)
        run_dir, resume_from = folder.parent, (folder, step)
    maps = load_game_maps(config)
    config = resolve(config, maps[0].width * maps[0].height, device)
    env, network, ppo, _ = build_run(config, maps=maps)
    if resume_from is None:
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        where = maps[0].name if len(maps) == 1 else f"{maps[0].name}_pool{len(maps)}"
        name = config.run.name or f"{where}_{config.env.obs.mode}"
        run_dir = Path(config.run.output_dir) / f"{name}_{stamp}"
        run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "config.json").write_text(config.to_json() + "\n")
    # Scripts (make train) find the run they just started here.
    (run_dir.parent / "LATEST").write_text(str(run_dir) + "\n")
    if not quiet:
        print(f"run folder: {run_dir}\n{env}\nPPO: {ppo}\nconfig:\n{config.to_json()}", flush=True)

    trainer = make_train(ppo, env, env.default_params, network)
    runner = trainer.init(jax.random.key(config.run.seed))
    checkpoints = Checkpointer(run_dir / "checkpoints", keep=config.run.keep_checkpoints)
    best = Checkpointer(run_dir / "best", keep=1, asynchronous=False)
    best_win_rate = -1.0
    if resume_from is not None:
        folder, step = resume_from
        runner, meta = Checkpointer(folder, asynchronous=False).restore(runner, step)
        best_win_rate = float(meta.get("best_win_rate", -1.0))
        if not quiet:
            print(f"resumed from {folder} at update {int(runner.update)} ({int(runner.env_steps)} env steps)")

    logger = RunLogger(run_dir, config, env, network, quiet=quiet)
    interrupt = _Interrupt()
    previous_handler = signal.signal(signal.SIGINT, interrupt)
    run = config.run

    def meta(**extra):
        return {"config": dataclasses.asdict(config), "update": int(runner.update),
                "env_steps": int(runner.env_steps), "best_win_rate": best_win_rate, **extra}

    def save_checkpoint():
        if checkpoints.latest_step() != int(runner.update):
            checkpoints.save(int(runner.update), runner, meta())

    deadline = time.monotonic() + 60.0 * run.max_minutes if run.max_minutes else float("inf")
    try:
        while (int(runner.update) < ppo.num_updates and not interrupt.requested
               and time.monotonic() < deadline):
            start = time.perf_counter()
            try:
                runner, metrics = trainer.train_chunk(runner)
                metrics = jax.device_get(metrics)
            except Exception as error:  # XLA reports out-of-memory as a runtime error
                if "RESOURCE_EXHAUSTED" in str(error) or "out of memory" in str(error).lower():
                    raise SystemExit(
                        f"out of memory with n_envs={ppo.num_envs}, n_steps={ppo.n_steps}, batch_size="
                        f"{ppo.batch_size}, views {env.observer.config.view_sizes}: reduce --n-envs, "
                        "--batch-size or --n-steps, or --local-view-size / use --obs single") from error
                raise
            logger.log_chunk(metrics, time.perf_counter() - start, ppo.rollout_size * ppo.updates_per_chunk)
            update = int(runner.update)
            if run.image_every and update % run.image_every < ppo.updates_per_chunk:
                logger.log_views(runner.obs, update)
            if run.eval_every and update % run.eval_every < ppo.updates_per_chunk:
                policy = network_policy(network, runner.params)
                summary = summarise(play_games(env, env.default_params, policy, run.eval_games,
                                               jax.random.key(run.seed + update)))
                logger.log_evaluation(summary, int(runner.env_steps))
                if summary["win_rate"] > best_win_rate:
                    best_win_rate = summary["win_rate"]
                    best.save(update, {"params": runner.params}, meta(evaluation=summary))
            if update % run.checkpoint_every < ppo.updates_per_chunk:
                save_checkpoint()
        save_checkpoint()
        checkpoints.wait()
        if not interrupt.requested:
            final = Checkpointer(run_dir / "final", keep=1, asynchronous=False)
            final.save(int(runner.update), {"params": runner.params}, meta())
            final.close()
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        checkpoints.close()
        best.close()
        logger.close()
    if interrupt.requested and not quiet:
        print(f"stopped at update {int(runner.update)}; resume with --continue-from {run_dir}")
    return run_dir
