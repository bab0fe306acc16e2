"""Training speed: env steps per second of whole PPO training (rollout + update), single- vs multi-scale.

For each map size (built-in `continents_<size>` maps) and observation mode, a run is assembled exactly as
`python -m jaxms.train` assembles it (`resolve` + `build_run` + `make_train`), then:
- compile: `trainer.train_chunk.lower(runner)` and `.compile()`, timed apart (the first chunk's cost before
  it runs; JAX's persistent compilation cache is switched off unless `--compile-cache`), and XLA's memory
  analysis of the compiled chunk (argument, output and temporary bytes);
- whole training: the compiled chunk runs once (timed apart as "first run": it starts from freshly reset
  envs), then `--chunks` more chunks, each blocked on; env steps/s = transitions collected / wall time of
  those chunks;
- the split of an update's time, each piece jitted on its own on the shapes of the run (the envs' state
  and observations after the chunks above, the run's parameters) and timed as ms per update:
  * simulation: `n_steps` calls of the vmapped `env.simulate` (the env step's `ticks_per_step` game ticks
    with the scripted bots), without actions, observation or reward;
  * observation: `n_steps` calls of the vmapped `env.observe` (the agent's direction targets and action
    mask, then the observer; frame stack carried; results recorded before the env's seams counted the
    direction targets in "rest");
  * policy forward: `n_steps` forwards of the network on the n_envs observations plus action sampling, in
    a scan like the rollout's (on CPU a convolution costs differently inside and outside a scan);
  * update: `update_epochs` x minibatches of gradient + optimizer steps over one rollout's worth of
    transitions (the trainer's loss, optimizer and minibatch gathering).
  The pieces are reported with their share of the pieces' sum; "rest" is the chunk's time per update minus
  that sum (`env.act`, `env.outcome`, auto-reset copies, GAE, last-value forward, metrics;
  negative when the pieces cost more apart than fused in the chunk). Inside each piece's scan every step
  feeds the next (the observed owner grid and the network's input are nudged by a value derived from the
  last output, always zero but unknown to XLA), so XLA cannot hoist the work out of the loop. The map's
  arrays are arguments of each piece (`env.map_arrays(params)`), as in the env's step, not constants.
- peak memory: on CPU the process's peak resident set while the chunks run ("run_rss_mb", shown), and
  while the env is built, initialised and the chunk compiled ("setup_compile_rss_mb": the compiler's own
  memory); on Linux the high-water mark is reset before each stage (/proc/self/clear_refs), elsewhere both
  are `ru_maxrss`, the process's peak so far. On a GPU `device.memory_stats()['peak_bytes_in_use']` (the
  process's peak so far: cases run smallest first).

Settings: `--settings train` uses what `python -m jaxms.train` resolves for the map and device (CPU:
2 envs x 256 steps, minibatch 32, 10 epochs; 8 x 64, minibatch 64 on maps up to 256x256; GPU: 8 x 1024,
minibatch 256). On a 2-core CPU one such multi-scale update takes minutes, so the CPU default is `quick`:
2 envs x 32 steps, minibatch 32, 2 epochs (the update's share is then smaller than in a real run: it
grows with epochs x transitions, the rest with transitions only). `--compile-train-config` also compiles
(without running) the chunk of the `train` settings, for the compile-time aim. Every row states its
settings. Aim (DESIGN.md): the first chunk of the default 1024x1024 multi-scale run compiles in under 2
minutes on CPU.

Devices (`--devices 1 2 4 8`): weak scaling of the data-parallel trainer (jaxms.ppo.parallel). With n
devices the run has n times the envs and n times the minibatch (each device keeps the one-device batch of
`--n-envs` and `--batch-size`); the row reports whole-training env steps/s and the scaling efficiency
= env steps/s on n devices / (n x env steps/s on 1 device), every count on the same sharded code (1 device
included). Results go to `<name>_devices.json/.md`. On a CPU, devices can be forced (XLA_FLAGS=
--xla_force_host_platform_device_count=4) but share the same cores: such figures test the code path and
the results' equality, not speed.

    python -m benchmarks.bench_train [--sizes 256 1024] [--obs multi single] [--settings quick|train]
        [--n-envs N] [--n-steps T] [--batch-size B] [--update-epochs E] [--network-width W] [--chunks 2]
        [--repeats 2] [--compile-train-config] [--devices 1 2 4 8] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from benchmarks.common import call_times, write_results
from jaxms.config import TrainConfig, resolve
from jaxms.maps.procedural import GENERATORS
from jaxms.ppo import log_prob, make_train
from jaxms.ppo.parallel import device_count, device_mesh, make_parallel_train
from jaxms.run import build_run, detect_device

COMPILE_AIM_S = 120.0  # first chunk, default 1024x1024 multi-scale run, CPU
QUICK = {"n_envs": 2, "n_steps": 32, "update_epochs": 2}
QUICK_BATCH_SIZE = 32
PIECES = ("simulation", "observation", "forward", "update")
NEVER = 1e30  # outputs compared against this are never larger: the comparison is an always-false flag


# ------------------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------------------

def _divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def case_config(size: int, obs: str, device: str, args) -> TrainConfig:
    """The run's TrainConfig: `train` or `quick` settings, then the command line's overrides, resolved."""
    overrides = {name: getattr(args, name) for name in ("n_envs", "n_steps", "batch_size", "update_epochs",
                                                        "network_width", "num_bots", "updates_per_chunk")
                 if getattr(args, name) is not None}
    base = dict(QUICK) if args.settings == "quick" else {}
    config = TrainConfig().replace(map=f"{args.family}_{size}", obs=obs, device=device,
                                   **{**base, **overrides})
    config = resolve(config, size * size, device)
    if args.settings == "quick" and args.batch_size is None:
        config = config.replace(batch_size=_divisor_at_most(config.ppo.num_envs * config.ppo.n_steps,
                                                            QUICK_BATCH_SIZE))
    return config


def train_defaults(size: int, obs: str, device: str, args) -> TrainConfig:
    """What `python -m jaxms.train --map <map> --obs <obs>` resolves to (with this run's bots and width)."""
    extra = {name: getattr(args, name) for name in ("network_width", "num_bots")
             if getattr(args, name) is not None}
    return resolve(TrainConfig().replace(map=f"{args.family}_{size}", obs=obs, device=device, **extra),
                   size * size, device)


def settings_text(config: TrainConfig) -> str:
    ppo = config.ppo
    return (f"{ppo.num_envs}x{ppo.n_steps}, mb {ppo.batch_size}, {ppo.update_epochs} ep, "
            f"w {config.network.width:g}")


# ------------------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------------------

def reset_peak_rss() -> bool:
    """Reset the process's resident-set high-water mark (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb(reset_worked: bool) -> float:
    """Peak resident set in MiB: VmHWM since the last reset where it worked, else ru_maxrss (ever)."""
    if reset_worked:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # macOS: bytes; Linux: KiB


def device_peak_mb(device) -> float | None:
    try:
        stats = device.memory_stats()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    if not stats or "peak_bytes_in_use" not in stats:
        return None
    return stats["peak_bytes_in_use"] / 2**20


def memory_mb(compiled) -> dict[str, float]:
    """XLA's memory analysis of a compiled program in MiB (empty where the backend has none)."""
    try:
        analysis = compiled.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return {}
    if analysis is None:
        return {}
    mb = lambda name: getattr(analysis, name, 0) / 2**20  # noqa: E731
    out = {"argument": mb("argument_size_in_bytes"), "output": mb("output_size_in_bytes"),
           "temp": mb("temp_size_in_bytes"), "alias": mb("alias_size_in_bytes")}
    out["peak"] = out["argument"] + out["output"] + out["temp"] - out["alias"]
    return {name: round(value, 1) for name, value in out.items()}


def lower_and_compile(jitted, *args) -> tuple[object, float, float]:
    """(compiled, seconds lowering, seconds compiling)."""
    start = time.perf_counter()
    lowered = jitted.lower(*args)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    return compiled, lowered_at - start, time.perf_counter() - lowered_at


def median_seconds(fn, *args, repeats: int) -> float:
    """Median wall time of `fn(*args)` (blocked on) over `repeats` calls, after one warm-up call."""
    return float(np.median(call_times(fn, *args, repeats=repeats)))


# ------------------------------------------------------------------------------------------------------
# The pieces of an update, each jitted alone
# ------------------------------------------------------------------------------------------------------

def _nudge(tree, flag: jax.Array):
    """`tree` plus an always-false per-env `flag` [N]: unchanged values that XLA must recompute from."""

    def one(x):
        f = flag.reshape(flag.shape + (1,) * (x.ndim - 1))
        return x | f if x.dtype == jnp.bool_ else x + f.astype(x.dtype)

    return jax.tree.map(one, tree)


def make_pieces(env, network, trainer, ppo):
    """Jittable functions, each doing one update's worth of one part of the work (see the docstring). The map
    is an argument (`env.map_arrays(params)`), as in the env's step: never closed over."""
    num_steps = ppo.n_steps
    simulate = jax.vmap(env.simulate, in_axes=(0, None))
    observe = jax.vmap(env.observe, in_axes=(0, None, 0, 0, None))

    def simulation(games, arrays):
        def step(games, _):
            return simulate(games, arrays), None

        return jax.lax.scan(step, games, None, length=num_steps)[0]

    def observation(games, memory, steps, arrays, params):
        def step(carry, _):
            games, memory, steps = carry
            steps = steps + 1
            obs, memory, _directions = observe(games, arrays, memory, steps, params)
            flag = jnp.any(obs["features"] > NEVER, axis=-1)
            games = games.replace(board_owner=_nudge(games.board_owner, flag),
                                  troops=_nudge(games.troops, flag))
            return (games, memory, steps), None

        return jax.lax.scan(step, (games, memory, steps), None, length=num_steps)[0]

    def forward(params, obs, key):
        def step(carry, _):
            obs, key = carry
            key, action_key = jax.random.split(key)
            logits, value, _ = network.apply(params, obs)
            action = jax.random.categorical(action_key, logits).astype(jnp.int32)
            action_log_prob = log_prob(logits, action)
            flag = (value > NEVER) | (action_log_prob > NEVER)
            return (_nudge(obs, flag), key), (action, action_log_prob, value)

        return jax.lax.scan(step, (obs, key), None, length=num_steps)[1]

    return {"simulation": simulation, "observation": observation, "forward": forward, "update": trainer.learn}


def rollout_batch(obs, ppo, key):
    """One rollout's worth of transitions [n_steps * n_envs]: the envs' current observations repeated, legal
    random actions, their uniform log-probabilities, random values, advantages and returns."""
    repeat = lambda x: jnp.broadcast_to(x[None], (ppo.n_steps, *x.shape)).reshape(  # noqa: E731
        (ppo.rollout_size, *x.shape[1:]))
    batch_obs = jax.tree.map(repeat, obs)
    mask = batch_obs["action_mask"]
    action_key, value_key, advantage_key, return_key = jax.random.split(key, 4)
    action = jax.random.categorical(action_key, jnp.where(mask, 0.0, -1e9)).astype(jnp.int32)
    shape = (ppo.rollout_size,)
    return {"obs": batch_obs, "action": action,
            "log_prob": -jnp.log(mask.sum(axis=-1).astype(jnp.float32)),
            "value": jax.random.normal(value_key, shape),
            "advantage": jax.random.normal(advantage_key, shape),
            "return": jax.random.normal(return_key, shape)}


def time_pieces(env, network, trainer, ppo, runner, repeats: int) -> tuple[dict, dict]:
    """(seconds per update of each piece, seconds compiling each) on the shapes of `runner`."""
    pieces = make_pieces(env, network, trainer, ppo)
    state = runner.env_state
    params = env.default_params
    arrays = env.map_arrays(params)
    batch = jax.jit(lambda obs, key: rollout_batch(obs, ppo, key))(runner.obs, jax.random.key(1))
    arguments = {"simulation": (state.game, arrays),
                 "observation": (state.game, state.memory, state.steps, arrays, params),
                 "forward": (runner.params, runner.obs, jax.random.key(2)),
                 "update": (runner.params, runner.opt_state, batch, jax.random.key(3))}
    seconds, compile_s = {}, {}
    for name in PIECES:
        compiled, lower_s, build_s = lower_and_compile(jax.jit(pieces[name]), *arguments[name])
        compile_s[name] = lower_s + build_s
        seconds[name] = median_seconds(compiled, *arguments[name], repeats=repeats)
        print(f"    {name}: {1e3 * seconds[name]:.1f} ms per update (compiled in {compile_s[name]:.1f} s)",
              flush=True)
    return seconds, compile_s


# ------------------------------------------------------------------------------------------------------
# One case
# ------------------------------------------------------------------------------------------------------

def bench_case(size: int, obs: str, device: str, args) -> dict:
    config = case_config(size, obs, device, args)
    print(f"{config.run.map} {obs}-scale: {settings_text(config)}", flush=True)
    rss_reset = reset_peak_rss()
    start = time.perf_counter()
    env, network, ppo, _ = build_run(config)
    trainer = make_train(ppo, env, env.default_params, network)
    runner = jax.block_until_ready(trainer.init(jax.random.key(config.run.seed)))
    setup_s = time.perf_counter() - start

    compiled, lower_s, compile_s = lower_and_compile(trainer.train_chunk, runner)
    memory = memory_mb(compiled)
    compile_rss = peak_rss_mb(rss_reset)  # building the env, init and compiling (the compiler's own memory)
    rss_reset = rss_reset and reset_peak_rss()
    print(f"  train_chunk: lowered in {lower_s:.1f} s, compiled in {compile_s:.1f} s; "
          f"XLA memory {memory} MiB", flush=True)
    start = time.perf_counter()
    runner, _ = jax.block_until_ready(compiled(runner))
    first_run_s = time.perf_counter() - start
    chunk_s = []
    for _ in tqdm(range(args.chunks), desc="  chunks", leave=False, disable=None):
        start = time.perf_counter()
        runner, _ = jax.block_until_ready(compiled(runner))
        chunk_s.append(time.perf_counter() - start)
    run_rss = peak_rss_mb(rss_reset)
    device_peak = device_peak_mb(jax.devices()[0])
    steps_per_chunk = ppo.rollout_size * ppo.updates_per_chunk
    update_ms = 1e3 * float(np.mean(chunk_s)) / ppo.updates_per_chunk
    print(f"  chunks: first run {first_run_s:.2f} s, then {', '.join(f'{s:.2f}' for s in chunk_s)} s "
          f"({steps_per_chunk} env steps each)", flush=True)

    if getattr(args, "pieces", True):
        piece_s, piece_compile_s = time_pieces(env, network, trainer, ppo, runner, args.repeats)
    else:  # --no-pieces: the whole chunk only (no split; four programs fewer to compile)
        piece_s, piece_compile_s = dict.fromkeys(PIECES, float("nan")), dict.fromkeys(PIECES, float("nan"))
    piece_ms = {name: 1e3 * s for name, s in piece_s.items()}
    total_ms = sum(piece_ms.values())

    row = {
        "map": f"{size}x{size}", "obs": obs, "settings": settings_text(config), "device": device,
        "n_envs": ppo.num_envs, "n_steps": ppo.n_steps, "batch_size": ppo.batch_size,
        "update_epochs": ppo.update_epochs, "minibatches": ppo.minibatches,
        "network_width": config.network.width, "num_bots": config.env.num_bots,
        "ticks_per_step": config.env.ticks_per_step, "updates_per_chunk": ppo.updates_per_chunk,
        "views": env.observer.config.view_sizes if hasattr(env.observer, "config") else None,
        "env_steps_per_s": round(len(chunk_s) * steps_per_chunk / sum(chunk_s), 2),
        "ms_per_update": round(update_ms, 1),
        "chunk_s": [round(s, 3) for s in chunk_s], "first_run_s": round(first_run_s, 2),
        "setup_s": round(setup_s, 1), "lower_s": round(lower_s, 1), "compile_s": round(compile_s, 1),
        "first_compile_s": round(lower_s + compile_s, 1),
        **{f"{name}_ms": round(ms, 1) for name, ms in piece_ms.items()},
        "rest_ms": round(update_ms - total_ms, 1),
        "split": (" / ".join(f"{piece_ms[name] / total_ms:.0%}" for name in PIECES)
                  if np.isfinite(total_ms) else "not timed (--no-pieces)"),
        "split_pct": {name: round(100 * piece_ms[name] / total_ms, 1) for name in PIECES
                      if np.isfinite(total_ms)},
        "piece_compile_s": {name: round(s, 1) for name, s in piece_compile_s.items()},
        "xla_memory_mb": memory, "xla_peak_mb": memory.get("peak", ""),
        "run_rss_mb": round(run_rss, 1), "setup_compile_rss_mb": round(compile_rss, 1),
        "rss_peak_is": ("per stage (VmHWM reset before setup and before the first run)" if rss_reset
                        else "process peak so far (ru_maxrss)"),
        "device_peak_mb": round(device_peak, 1) if device_peak is not None else None,
    }
    row["peak_mb"] = row["run_rss_mb"] if device == "cpu" else row["device_peak_mb"]
    if args.compile_train_config:
        row.update(compile_train_config(size, obs, device, args, env, network, ppo))
    print({k: v for k, v in row.items() if k not in ("chunk_s", "piece_compile_s")}, flush=True)
    return row


def bench_devices(size: int, obs: str, device: str, args, counts: list[int]) -> list[dict]:
    """Weak scaling over `counts` devices: each keeps the case's envs and minibatch (rows in `counts` order,
    `scaling_efficiency` relative to the first count, normally 1)."""
    base = case_config(size, obs, device, args)
    platform = "gpu" if device == "cuda" else "cpu"
    rows = []
    for count in counts:
        ppo = base.ppo
        config = base.replace(n_envs=ppo.num_envs * count, batch_size=ppo.batch_size * count)
        print(f"{config.run.map} {obs}-scale on {count} device(s): {settings_text(config)}", flush=True)
        env, network, ppo, _ = build_run(config)
        trainer = make_parallel_train(ppo, env, env.default_params, network, device_mesh(count, platform))
        runner = jax.block_until_ready(trainer.init(jax.random.key(config.run.seed)))
        compiled, lower_s, compile_s = lower_and_compile(trainer.train_chunk, runner)
        start = time.perf_counter()
        runner, _ = jax.block_until_ready(compiled(runner))
        first_run_s = time.perf_counter() - start
        chunk_s = []
        for _ in range(args.chunks):
            start = time.perf_counter()
            runner, _ = jax.block_until_ready(compiled(runner))
            chunk_s.append(time.perf_counter() - start)
        speed = args.chunks * ppo.rollout_size * ppo.updates_per_chunk / sum(chunk_s)
        rows.append({"map": f"{size}x{size}", "obs": obs, "devices": count, "device": device,
                     "settings": settings_text(config), "n_envs": ppo.num_envs, "batch_size": ppo.batch_size,
                     "env_steps_per_s": round(speed, 2),
                     "per_device_env_steps_per_s": round(speed / count, 2),
                     "chunk_s": [round(s, 3) for s in chunk_s], "first_run_s": round(first_run_s, 2),
                     "first_compile_s": round(lower_s + compile_s, 1)})
        print(f"  {count} device(s): {speed:.2f} env steps/s (compiled in {lower_s + compile_s:.1f} s)",
              flush=True)
    one = rows[0]["env_steps_per_s"] / rows[0]["devices"]
    for row in rows:
        row["scaling_efficiency"] = f"{row['env_steps_per_s'] / (row['devices'] * one):.0%}"
    return rows


def compile_train_config(size: int, obs: str, device: str, args, env, network, ppo) -> dict:
    """Lower and compile (no run) the chunk of the `train` settings: the compile-time aim's config."""
    config = train_defaults(size, obs, device, args)
    train_ppo = dataclasses.replace(ppo, num_envs=config.ppo.num_envs, n_steps=config.ppo.n_steps,
                                    batch_size=config.ppo.batch_size, update_epochs=config.ppo.update_epochs)
    trainer = make_train(train_ppo, env, env.default_params, network)
    shapes = jax.eval_shape(trainer.init, jax.random.key(0))
    compiled, lower_s, compile_s = lower_and_compile(trainer.train_chunk, shapes)
    memory = memory_mb(compiled)
    print(f"  train settings ({settings_text(config)}): lowered in {lower_s:.1f} s, compiled in "
          f"{compile_s:.1f} s; XLA memory {memory} MiB", flush=True)
    return {"train_settings": settings_text(config), "train_first_compile_s": round(lower_s + compile_s, 1),
            "train_lower_s": round(lower_s, 1), "train_compile_s": round(compile_s, 1),
            "train_xla_memory_mb": memory}


# ------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="map sizes (square)")
    parser.add_argument("--obs", nargs="+", default=["single", "multi"], choices=["single", "multi"])
    parser.add_argument("--family", default="continents", choices=list(GENERATORS),
                        help="built-in map generator (maps are <family>_<size>)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--settings", choices=["quick", "train"], default=None,
                        help="quick (CPU default) or the train CLI's resolved defaults (GPU default)")
    parser.add_argument("--n-envs", type=int, default=None)
    parser.add_argument("--n-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--update-epochs", type=int, default=None)
    parser.add_argument("--network-width", type=float, default=None)
    parser.add_argument("--num-bots", type=int, default=None, help="tribes (default: the train CLI's, 10)")
    parser.add_argument("--updates-per-chunk", type=int, default=None)
    parser.add_argument("--chunks", type=int, default=2, help="timed chunks after the first run")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls of each piece (median)")
    parser.add_argument("--pieces", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the pieces of an update for the split (--no-pieces: the chunk only)")
    parser.add_argument("--compile-train-config", action="store_true",
                        help="also compile (not run) the chunk of the train CLI's default settings")
    parser.add_argument("--compile-cache", action="store_true",
                        help="allow JAX's persistent compilation cache (compile times may be cache hits)")
    parser.add_argument("--devices", nargs="+", default=None, metavar="N",
                        help="weak-scaling sweep of the data-parallel trainer over these device counts (or "
                             "all): n devices run n x the envs and minibatch; writes <name>_devices")
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--name", default="bench_train", help="results file name (without extension)")
    return parser


def main(argv: list[str] | None = None) -> list[dict]:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("n_envs", "n_steps", "batch_size", "update_epochs", "num_bots", "updates_per_chunk",
                 "chunks", "repeats"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "num_bots" else 1):
            parser.error(f"--{name.replace('_', '-')} must be at least {0 if name == 'num_bots' else 1}")
    try:
        device = detect_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    if device == "cpu":
        jax.config.update("jax_default_device", jax.devices("cpu")[0])
    if args.settings is None:
        args.settings = "quick" if device == "cpu" else "train"
    cache_before = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", bool(args.compile_cache))
    load_before = os.getloadavg()[0]
    if args.devices:
        try:
            counts = [device_count(n, "gpu" if device == "cuda" else "cpu") for n in args.devices]
        except ValueError as error:
            parser.error(str(error))
        try:
            return devices_sweep(args, device, counts, load_before)
        finally:
            jax.config.update("jax_enable_compilation_cache", cache_before)
    # Smallest first: on a GPU the peak memory is the process's peak so far.
    cases = [(size, obs) for size in sorted(args.sizes) for obs in ("single", "multi") if obs in args.obs]
    rows = []
    try:
        for size, obs in tqdm(cases, desc="bench_train", disable=None):
            try:
                rows.append(bench_case(size, obs, device, args))
            except ValueError as error:  # settings that do not fit together, a map without room for bots
                parser.error(f"{args.family}_{size} {obs}: {error}")
    finally:
        jax.config.update("jax_enable_compilation_cache", cache_before)
    speeds = {(r["map"], r["obs"]): r["env_steps_per_s"] for r in rows}
    for row in rows:
        single = speeds.get((row["map"], "single"))
        if row["obs"] == "multi" and single:
            row["vs_single"] = f"{row['env_steps_per_s'] / single:.2f}x"

    dev = jax.devices()[0]
    columns = ["map", "obs", "settings", "env_steps_per_s", "vs_single", "ms_per_update", "simulation_ms",
               "observation_ms", "forward_ms", "update_ms", "rest_ms", "split", "first_compile_s",
               "xla_peak_mb", "peak_mb"]
    if args.compile_train_config:
        columns += ["train_settings", "train_first_compile_s"]
    title = (f"Training speed ({dev.platform}: {dev.device_kind}; JAX {jax.__version__}; {args.settings} "
             f"settings; split = simulation / observation / forward / update as % of the pieces' sum; "
             f"peak_mb = {'peak RSS while training' if device == 'cpu' else 'device peak bytes in use'}; "
             f"aim: first chunk "
             f"of the default 1024x1024 multi-scale run compiled in <= {COMPILE_AIM_S:.0f} s on CPU; "
             f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f})")
    write_results(args.name, rows, columns, title, args.out_dir)
    return rows


def devices_sweep(args, device: str, counts: list[int], load_before: float) -> list[dict]:
    rows = []
    for size in sorted(args.sizes):
        for obs in [o for o in ("single", "multi") if o in args.obs]:
            try:
                rows += bench_devices(size, obs, device, args, counts)
            except ValueError as error:  # rollout sizes that do not split, a map without room for bots
                raise SystemExit(f"error: {args.family}_{size} {obs}: {error}") from None
    dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    note = ("; CPU devices share the same cores (forced with XLA_FLAGS): these figures check the code path, "
            "not speed" if device == "cpu" else "")
    columns = ["map", "obs", "devices", "n_envs", "batch_size", "env_steps_per_s",
               "per_device_env_steps_per_s", "scaling_efficiency", "first_compile_s", "settings"]
    title = (f"Data-parallel training, weak scaling ({dev.platform}: {dev.device_kind}; "
             f"JAX {jax.__version__}; "
             f"{args.settings} settings per device; efficiency = env steps/s on n devices / (n x on 1)"
             f"{note}; load average {load_before:.1f} -> {os.getloadavg()[0]:.1f})")
    write_results(f"{args.name}_devices", rows, columns, title, args.out_dir)
    return rows


if __name__ == "__main__":
    main()
