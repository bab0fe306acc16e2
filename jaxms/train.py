"""Train an agent: `python -m jaxms.train --map continents_128 [--obs multi|single] ...` (see --help).

The run lives in `<output-dir>/<name>_<timestamp>/`: `config.json`, TensorBoard events, `checkpoints/`
(every `--checkpoint-every` updates, the last `--keep-checkpoints` kept), `best/` (best evaluation win rate)
and `final/`. Each jitted chunk runs `--updates-per-chunk` PPO updates on the device; between chunks this
host loop logs, checkpoints, evaluates and moves the progress bar. `--continue-from RUN` resumes a run
exactly where its last checkpoint left it (same folder, same random streams). Ctrl-C saves a checkpoint
and exits cleanly.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import jax

from jaxms.config import (
    DEVICES,
    OBS_MODES,
    REWARDS,
    TIME_LIMITS,
    TrainConfig,
    detect_device,
    load_config_file,
    resolve,
)

FLAG_HELP = {
    "map": "map spec: built-in (continents_128, islands_256x128_s1), an OpenFront folder or name "
           "(australia, australia@4x), a crop (australia:915,290,1024,1024), a terrain PNG (see python -m "
           "jaxms.maps list)",
    "maps_dir": "folder of OpenFront map folders (also $JAXMS_MAPS_DIR)",
    "num_bots": "tribes playing against the agent",
    "nations": "also spawn the map's nations (reduced nation AI)",
    "obs": "multi: global + local + tactical views; single: one global view (the baseline)",
    "local_view_size": "tiles around the agent in the local view (default by map size; 128/256/512 suit "
                       "512/1024/2048 maps)",
    "frame_stack": "frames stacked in each view",
    "device": "cpu, cuda (gpu) or auto; mps is served by the PyTorch path, not JAX",
    "n_envs": "parallel environments (default by device: cuda 8, cpu 2; 8 on small maps on CPU)",
    "batch_size": "PPO minibatch size in transitions (default by device: cuda 256, cpu 32; must divide "
                  "n_envs x n_steps)",
    "n_steps": "rollout steps per environment per update (default by device: cuda 1024, cpu 256)",
    "total_timesteps": "environment steps to train for (all envs together)",
    "learning_rate": "Adam step size",
    "lr_schedule": "constant or linear (decays to 0)",
    "gamma": "discount", "gae_lambda": "GAE lambda", "clip_eps": "PPO ratio clip",
    "ent_coef": "entropy bonus weight", "vf_coef": "value loss weight",
    "max_grad_norm": "global gradient-norm clip", "update_epochs": "passes over each rollout",
    "seed": "random seed (same seed, same run)",
    "ticks_per_step": "game ticks per env step (10: an attack runs ~50 ticks, so the agent re-aims ~5 times; "
                      "see benchmarks/bench_action_horizon.py)",
    "max_steps": "env steps before an episode ends (see --time-limit)",
    "time_limit": "truncate: max_steps cuts episodes short for training (PPO bootstraps the rest of the "
                  "game); lose: a timed game, lost unless won within max_steps (the agent sees "
                  "the time left)",
    "reset_pool_size": "start positions made at launch that finished episodes restart from (0: a fresh game "
                       "each time, slower)",
    "reward": "share: change in land share x10, +1 win / -1 loss; rank: the earlier system's rank reward",
    "network_width": "width multiplier of the network (1.0 = reference architecture)",
    "network_dtype": "float32 or bfloat16 compute (parameters stay float32)",
    "attention": "use the attention blocks (false: the ablation)",
    "output_dir": "folder for runs", "name": "run name (default: map and obs mode)",
    "continue_from": "resume from a run folder (or its checkpoints/, best/, final/ folder)",
    "updates_per_chunk": "PPO updates per jitted call between host-side logging",
    "checkpoint_every": "updates between checkpoints", "keep_checkpoints": "checkpoints kept",
    "eval_every": "updates between evaluations (for best/; 0: never)", "eval_games": "games per evaluation",
    "image_every": "updates between logged images of the views (0: never)",
    "max_minutes": "stop after this many minutes of training (saved like a finished run)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jaxms.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON or TOML file of settings (flag names with - or _); flags given here win")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        help_text = FLAG_HELP.get(field.name, "") + f" (default: {field.default})"
        if field.type in ("bool",):
            parser.add_argument(flag, type=_parse_bool, default=None, metavar="true|false", help=help_text)
            continue
        kind = {"int": int, "float": float, "str": str, "int | None": int, "str | None": str,
                "float | None": float}[field.type]
        choices = {"device": DEVICES, "obs": OBS_MODES, "reward": REWARDS, "time_limit": TIME_LIMITS,
                   "lr_schedule": ("constant", "linear"), "network_dtype": ("float32", "bfloat16")}
        parser.add_argument(flag, type=kind, default=None, choices=choices.get(field.name), help=help_text)
    return parser


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def config_from_args(argv: list[str] | None) -> TrainConfig:
    """TrainConfig from a config file (if any) overridden by flags. Bad values exit with a message."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings: dict[str, Any] = {}
    try:
        if args.config is not None:
            settings.update(load_config_file(args.config))
        settings.update({k: v for k, v in vars(args).items() if k != "config" and v is not None})
        return TrainConfig(**settings)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def build_run(config: TrainConfig, agent_autopilot: bool = False):
    """(env, network, ppo_config, game_map) of a resolved config."""
    from jaxms.env import make_env
    from jaxms.env.observe import make_observer
    from jaxms.maps import load_map
    from jaxms.nn import NetworkConfig, make_network
    from jaxms.ppo import PPOConfig

    game_map = load_map(config.map, maps_dir=config.maps_dir)
    overrides = {"frame_stack": config.frame_stack}
    if config.local_view_size is not None:
        overrides["local_view_size"] = config.local_view_size
    observer = make_observer(config.obs, (game_map.height, game_map.width), **overrides)
    env = make_env(game_map, num_bots=config.num_bots, nations=config.nations,
                   ticks_per_step=config.ticks_per_step, max_steps=config.max_steps, reward=config.reward,
                   time_limit=config.time_limit,
                   observer=observer, seed=config.seed, agent_autopilot=agent_autopilot,
                   reset_pool_size=config.reset_pool_size)
    network = make_network(NetworkConfig(obs=config.obs, dtype=config.network_dtype,
                                         width=config.network_width, attention=config.attention))
    ppo = PPOConfig(num_envs=config.n_envs, n_steps=config.n_steps, batch_size=config.batch_size,
                    total_timesteps=config.total_timesteps, update_epochs=config.update_epochs,
                    learning_rate=config.learning_rate, lr_schedule=config.lr_schedule, gamma=config.gamma,
                    gae_lambda=config.gae_lambda, clip_eps=config.clip_eps, ent_coef=config.ent_coef,
                    vf_coef=config.vf_coef, max_grad_norm=config.max_grad_norm,
                    updates_per_chunk=config.updates_per_chunk)
    return env, network, ppo, game_map


def load_run(path: str | Path, map_override: str | None = None):
    """(config, run folder, network, network params) of a saved run, for evaluation."""
    from jaxms.checkpoint import Checkpointer, find_checkpoint

    path = Path(path)
    if (path / "best").is_dir() and any((path / "best").iterdir()):
        path = path / "best"
    folder, step = find_checkpoint(path)
    checkpointer = Checkpointer(folder, asynchronous=False)
    meta = checkpointer.read_meta(step)
    config = TrainConfig(**meta["config"])
    if map_override:
        config = config.replace(map=map_override)
    env, network, _, _ = build_run(config)
    obs, _ = env.reset(jax.random.key(0), env.default_params)
    template = network.init(jax.random.key(0), obs)
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
    """Run (or resume) a training run; returns its folder."""
    from jaxms.checkpoint import Checkpointer, find_checkpoint
    from jaxms.evaluate import network_policy, play_games, summarise
    from jaxms.logging import RunLogger
    from jaxms.ppo import make_train

    device = detect_device(config.device)
    if device == "cpu":
        jax.config.update("jax_default_device", jax.devices("cpu")[0])
    resume_from = None
    if config.continue_from:
        folder, step = find_checkpoint(config.continue_from)
        meta = Checkpointer(folder, asynchronous=False).read_meta(step)
        saved = TrainConfig(**meta["config"])
        # The run continues as saved; only its length may be extended from the command line.
        config = saved.replace(total_timesteps=max(config.total_timesteps, saved.total_timesteps),
                               continue_from=config.continue_from)
        run_dir, resume_from = folder.parent, (folder, step)
    from jaxms.maps import load_map

    game_map = load_map(config.map, maps_dir=config.maps_dir)
    config = resolve(config, game_map.width * game_map.height, device)
    env, network, ppo, _ = build_run(config)
    if resume_from is None:
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        name = config.name or f"{game_map.name}_{config.obs}"
        run_dir = Path(config.output_dir) / f"{name}_{stamp}"
        run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "config.json").write_text(config.to_json() + "\n")
    # Scripts (make train) find the run they just started here.
    (run_dir.parent / "LATEST").write_text(str(run_dir) + "\n")
    if not quiet:
        print(f"run folder: {run_dir}\n{env}\nPPO: {ppo}\nconfig:\n{config.to_json()}", flush=True)

    trainer = make_train(ppo, env, env.default_params, network)
    runner = trainer.init(jax.random.key(config.seed))
    checkpoints = Checkpointer(run_dir / "checkpoints", keep=config.keep_checkpoints)
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

    def meta(**extra):
        return {"config": dataclasses.asdict(config), "update": int(runner.update),
                "env_steps": int(runner.env_steps), "best_win_rate": best_win_rate, **extra}

    def save_checkpoint():
        if checkpoints.latest_step() != int(runner.update):
            checkpoints.save(int(runner.update), runner, meta())

    deadline = time.monotonic() + 60.0 * config.max_minutes if config.max_minutes else float("inf")
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
                        f"out of memory with n_envs={config.n_envs}, n_steps={config.n_steps}, batch_size="
                        f"{config.batch_size}, views {env.observer.config.view_sizes}: reduce --n-envs, "
                        "--batch-size or --n-steps, or --local-view-size / use --obs single") from error
                raise
            logger.log_chunk(metrics, time.perf_counter() - start, ppo.rollout_size * ppo.updates_per_chunk)
            update = int(runner.update)
            if config.image_every and update % config.image_every < ppo.updates_per_chunk:
                logger.log_views(runner.obs, update)
            if config.eval_every and update % config.eval_every < ppo.updates_per_chunk:
                policy = network_policy(network, runner.params)
                summary = summarise(play_games(env, env.default_params, policy, config.eval_games,
                                               jax.random.key(config.seed + update)))
                logger.log_evaluation(summary, int(runner.env_steps))
                if summary["win_rate"] > best_win_rate:
                    best_win_rate = summary["win_rate"]
                    best.save(update, {"params": runner.params}, meta(evaluation=summary))
            if update % config.checkpoint_every < ppo.updates_per_chunk:
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


def main(argv: list[str] | None = None) -> int:
    config = config_from_args(argv)
    try:
        train(config)
    except (ValueError, FileNotFoundError) as error:  # bad maps (MapError), settings or paths
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
