"""Every GPU measurement in one script (`make bench-device`), in under 8 minutes on one GPU.

Cases (each compiled once, then timed on a number of calls fixed after one warm-up call; run with those
that have an aim first; a case that would start too late for the time budget `--budget-s` is reported as
skipped):
- env steps/s, multi-scale observation, uniformly random legal actions, `--num-bots` tribes: 1024x1024
  with 1, 64 and 512 envs, 128x128 with 4096 envs. A call is a scan of `--steps` vmapped env steps (auto-
  reset included); after the compile, one warm-up call (from freshly reset envs; its time sets how many
  calls fill `--seconds-per-case`, at most `--max-calls`), then the timed calls, each continuing from the
  last.
- whole training env steps/s (PPO rollout + update, as `python -m jaxms.train` assembles it: bench_train's
  `case_config`, `jaxms.run.build_run`, `jaxms.ppo.make_train`) at 1024x1024, multi- vs single-scale,
  64 envs x `--train-n-steps` steps, the train CLI's other settings for the device: the chunk compiled,
  run once (from fresh envs; its time sets how many chunks fill `--train-seconds`, at most `--chunks`),
  then the timed chunks.
- scaling over the machine's devices (when it has more than one): bench_train's weak-scaling sweep
  (`bench_devices`: 1, 2, 4, 8 ... devices, each with `--scale-envs` envs and the train CLI's other
  settings, at 1024x1024 multi-scale); rows in `<name>_devices.json/.md`, efficiency = env steps/s on n
  devices / (n x on 1). Aim (issue 17): >= 90% from 1 to 8 GPUs. With one device it is reported skipped.
The device's name (`jax.devices()[0].device_kind`) names the results: benchmarks/results/device/<name>.json
and .md. Aims on one H100/H200 (issue 12): >= 2,000 env steps/s at 1024x1024 with 64+ envs, >= 100,000 at
128x128, >= 250 whole-training env steps/s at 1024x1024 multi-scale.

`--smoke` runs the same code on the CPU at tiny sizes (every case on a 32x32 plains map with 2 envs and 2
tribes, 2 steps a call, 16x16 views, an eighth-width network, training single-scale only) and writes to a
temporary folder (or `--out-dir`): the test suite runs it so the script never rots. Its figures mean nothing.

    python -m benchmarks.device_suite [--smoke] [--out-dir DIR] [--budget-s 450] [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

import jax

from benchmarks import bench_train
from benchmarks.bench_env import random_policy_rollout
from benchmarks.common import RESULTS_DIR, write_results
from jaxms import load_map
from jaxms.env import make_env
from jaxms.env.contract import ObsConfig

# (map size, n_envs) of the env-step cases and (map size, obs, n_envs) of the training cases.
ENV_CASES = ((1024, 1), (1024, 64), (1024, 512), (128, 4096))
TRAIN_CASES = ((1024, "multi", 64), (1024, "single", 64))
# The order they run in (those with an aim first, so a slow device still measures them within the budget);
# the results list them in the order above. A case starts only if this much of the budget is left.
PRIORITY = (("env", 1024, 64), ("env", 128, 4096), ("train", 1024, "multi", 64),
            ("train", 1024, "single", 64), ("env", 1024, 1), ("env", 1024, 512))
RESERVE_S = {"env": 30.0, "train": 120.0}
AIMS = {("env", 1024): 2_000.0, ("env", 128): 100_000.0, ("train", 1024, "multi"): 250.0}
# --smoke: every case on one tiny shape (one compile serves all the env-step cases), tiny views and network,
# on plains: a map without water compiles the boat phases out (the smoke checks the code runs, not its speed).
SMOKE_SIZE, SMOKE_N_ENVS, SMOKE_BOTS, SMOKE_FAMILY = 32, 2, 2, "plains"
SMOKE_OBS = {"global_size": 16, "local_view_size": 16, "local_size": 16, "tactical_size": 8, "frame_stack": 2}
SMOKE_NETWORK = {"network_width": 0.125, "heads": 1}


def device_name() -> str:
    """The device's kind as a file name ("NVIDIA H200" -> "NVIDIA_H200")."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", jax.devices()[0].device_kind).strip("_") or "device"


def log(start: float, message: str) -> None:
    print(f"[{time.perf_counter() - start:6.1f} s] {message}", flush=True)


def env_case(size: int, n_envs: int, args, start: float, rollouts: dict) -> dict:
    """Env steps/s of `n_envs` vmapped envs on continents_<size> with random legal actions."""
    run_size, run_envs = (SMOKE_SIZE, SMOKE_N_ENVS) if args.smoke else (size, n_envs)
    key = (run_size, run_envs)
    if key not in rollouts:  # --smoke maps every case onto one shape: one compile serves them
        obs_config = ObsConfig(mode="multi", **(SMOKE_OBS if args.smoke else {}))
        family = SMOKE_FAMILY if args.smoke else "continents"
        env = make_env(load_map(f"{family}_{run_size}"), num_bots=args.num_bots, obs=obs_config,
                       **({"reset_pool_size": 2} if args.smoke else {}))
        params = env.default_params
        reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
        compile_start = time.perf_counter()
        obs, state = jax.block_until_ready(reset(jax.random.split(jax.random.key(0), run_envs), params))
        reset_s = time.perf_counter() - compile_start
        rollout, lower_s, compile_s = bench_train.lower_and_compile(
            jax.jit(random_policy_rollout(env, params, args.steps)), obs, state, jax.random.key(1))
        log(start, f"  reset in {reset_s:.1f} s (compile included); step scan compiled in "
                   f"{lower_s + compile_s:.1f} s")
        rollouts[key] = (rollout, obs, state, round(lower_s + compile_s, 1))
    rollout, obs, state, compile_s = rollouts[key]
    carry = (obs, state, jax.random.key(1))
    warm_start = time.perf_counter()
    obs, state, rng, _ = jax.block_until_ready(rollout(*carry))
    warm_s = time.perf_counter() - warm_start
    calls = max(1, min(args.max_calls, int(args.seconds_per_case / max(warm_s, 1e-6))))
    log(start, f"  warm-up call {warm_s:.2f} s; timing {calls} calls of {args.steps} steps x {run_envs} envs")
    timed_start = time.perf_counter()
    for _ in range(calls):
        obs, state, rng, _ = jax.block_until_ready(rollout(obs, state, rng))
    seconds = time.perf_counter() - timed_start
    steps_per_s = calls * args.steps * run_envs / seconds
    row = {"case": "env steps", "map": f"{run_size}x{run_size}", "obs": "multi", "n_envs": run_envs,
           "env_steps_per_s": round(steps_per_s, 1),
           "ms_per_step": round(1e3 * seconds / (calls * args.steps), 2),
           "timed_env_steps": calls * args.steps * run_envs, "timed_s": round(seconds, 2),
           "compile_s": compile_s}
    aim = AIMS.get(("env", size))
    if aim and (size != 1024 or n_envs >= 64):
        row["aim"] = f">= {aim:,.0f}"
    return row


def train_settings(args) -> list[str]:
    if args.smoke:
        return ["--settings", "quick", "--n-envs", str(SMOKE_N_ENVS), "--n-steps", "4", "--batch-size", "8",
                "--update-epochs", "1", "--num-bots", str(args.num_bots), "--family", SMOKE_FAMILY]
    return ["--settings", "train", "--n-steps", str(args.train_n_steps), "--num-bots", str(args.num_bots)]


def train_case(size: int, obs: str, n_envs: int, args, device: str, start: float) -> dict:
    """Whole-training env steps/s (rollout + update) of the train CLI's run at `size` with `n_envs`."""
    run_size = SMOKE_SIZE if args.smoke else size
    flags = train_settings(args) + ([] if args.smoke else ["--n-envs", str(n_envs)])
    config = bench_train.case_config(run_size, obs, device, bench_train.build_parser().parse_args(flags))
    if args.smoke:
        config = config.replace(**SMOKE_OBS, **SMOKE_NETWORK, reset_pool_size=2)
    env, network, ppo, _ = bench_train.build_run(config)
    trainer = bench_train.make_train(ppo, env, env.default_params, network)
    runner = jax.block_until_ready(trainer.init(jax.random.key(config.run.seed)))
    compiled, lower_s, compile_s = bench_train.lower_and_compile(trainer.train_chunk, runner)
    log(start, f"  {bench_train.settings_text(config)}: chunk compiled in {lower_s + compile_s:.1f} s")
    first = time.perf_counter()
    runner, _ = jax.block_until_ready(compiled(runner))
    first_s = time.perf_counter() - first
    steps_per_chunk = ppo.rollout_size * ppo.updates_per_chunk
    chunks = max(1, min(args.chunks, int(args.train_seconds / max(first_s, 1e-6))))
    timed_start = time.perf_counter()
    for _ in range(chunks):
        runner, _ = jax.block_until_ready(compiled(runner))
    seconds = time.perf_counter() - timed_start
    log(start, f"  first chunk {first_s:.2f} s; {chunks} chunks of {steps_per_chunk} env steps in "
               f"{seconds:.2f} s")
    row = {"case": "training", "map": f"{run_size}x{run_size}", "obs": obs, "n_envs": ppo.num_envs,
           "settings": bench_train.settings_text(config),
           "env_steps_per_s": round(chunks * steps_per_chunk / seconds, 1),
           "timed_env_steps": chunks * steps_per_chunk, "timed_s": round(seconds, 2),
           "first_run_s": round(first_s, 2), "compile_s": round(lower_s + compile_s, 1)}
    aim = AIMS.get(("train", size, obs))
    if aim:
        row["aim"] = f">= {aim:,.0f}"
    return row


def scale_case(args, device: str, start: float, out_dir: Path) -> list[dict]:
    """bench_train's weak-scaling sweep over 1, 2, 4, ... of this machine's devices (written apart)."""
    platform = "cpu" if device == "cpu" else "gpu"
    available = len(jax.devices(platform))
    counts = [n for n in (1, 2, 4, 8, 16, 32) if n <= available]
    if len(counts) < 2 or time.perf_counter() - start + (0.0 if args.smoke else RESERVE_S["train"]) > \
            args.budget_s:
        why = "one device" if len(counts) < 2 else f"time budget {args.budget_s:.0f} s"
        log(start, f"scaling over devices: skipped ({why})")
        return []
    size, obs = (SMOKE_SIZE, "single") if args.smoke else (1024, "multi")
    log(start, f"scaling over {counts} devices, {size}x{size} {obs}-scale")
    flags = [*train_settings(args), "--n-envs", str(SMOKE_N_ENVS if args.smoke else args.scale_envs),
             "--sizes", str(size), "--obs", obs, "--devices", *map(str, counts),
             "--name", args.name or ("smoke" if args.smoke else device_name()),
             "--out-dir", str(out_dir), "--chunks", str(args.chunks)]
    if args.smoke:
        flags += ["--network-width", "0.125"]
    rows = bench_train.main(flags + (["--device", "cpu"] if device == "cpu" else []))
    log(start, f"  {[(r['devices'], r['env_steps_per_s'], r['scaling_efficiency']) for r in rows]}")
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="run on the CPU at tiny sizes, into a temporary folder (a test of the script)")
    parser.add_argument("--steps", type=int, default=None, help="env steps per call (default 20; smoke 2)")
    parser.add_argument("--seconds-per-case", type=float, default=None,
                        help="timed calls fill about this long (default 10; smoke 0)")
    parser.add_argument("--max-calls", type=int, default=10, help="at most this many timed calls per case")
    parser.add_argument("--num-bots", type=int, default=None, help="tribes (default 10; smoke 2)")
    parser.add_argument("--train-n-steps", type=int, default=64, help="rollout steps per env in training")
    parser.add_argument("--chunks", type=int, default=None,
                        help="at most this many timed training chunks (default 3; smoke 1)")
    parser.add_argument("--train-seconds", type=float, default=None,
                        help="timed training chunks fill about this long (default 30; smoke 0)")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="start a case only while this many seconds minus its reserve (env 30 s, "
                             "training 120 s) have not passed (the aim: the whole run under 8 minutes)")
    parser.add_argument("--only", nargs="+", choices=["env", "train", "scale"], default=None,
                        help="which kinds of case to run (default all; smoke: env and train, as the scaling "
                             "sweep needs several devices: force CPU ones with XLA_FLAGS="
                             "--xla_force_host_platform_device_count=N and give --only scale)")
    parser.add_argument("--scale-envs", type=int, default=16, help="envs per device in the scaling sweep")
    parser.add_argument("--train-obs", nargs="+", choices=["multi", "single"], default=None,
                        help="observation modes of the training cases (default both; smoke: single only, as "
                             "multi-scale runs the same code with a larger network)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="default: benchmarks/results/device (smoke: a new temporary folder)")
    parser.add_argument("--name", default=None, help="results file name (default: the device's name)")
    return parser


def main(argv: list[str] | None = None) -> tuple[list[dict], Path]:
    parser = build_parser()
    args = parser.parse_args(argv)
    defaults = {"steps": (20, 2), "seconds_per_case": (10.0, 0.0), "chunks": (3, 1),
                "train_seconds": (30.0, 0.0),
                "num_bots": (10, SMOKE_BOTS), "train_obs": (["multi", "single"], ["single"]),
                "only": (["env", "train", "scale"], ["env", "train"])}
    for name, (full, smoke) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, smoke if args.smoke else full)
    for name in ("steps", "max_calls", "chunks", "train_n_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.smoke:
        out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="device_suite_smoke_"))
        device = "cpu"
        where = jax.default_device(jax.devices("cpu")[0])
    else:
        out_dir = args.out_dir or RESULTS_DIR / "device"
        device = bench_train.detect_device("auto")
        where = jax.default_device(jax.devices()[0])
    start = time.perf_counter()
    dev = jax.devices(device if device == "cpu" else None)[0]
    log(start, f"device suite on {dev.platform}: {dev.device_kind}{' (smoke)' if args.smoke else ''}; "
               f"JAX {jax.__version__}")
    listed = ([("env", size, n) for size, n in ENV_CASES] if "env" in args.only else []) + \
             ([("train", size, obs, n) for size, obs, n in TRAIN_CASES
               if obs in args.train_obs] if "train" in args.only else [])
    cases = sorted(listed, key=lambda case: PRIORITY.index(case) if case in PRIORITY else len(PRIORITY))
    done, rollouts = {}, {}
    with where:
        for index, case in enumerate(cases):
            kind, size = case[0], case[1]
            label = (f"env steps {size}x{size}, {case[2]} envs" if kind == "env"
                     else f"training {size}x{size} {case[2]}-scale, {case[3]} envs")
            reserve = 0.0 if args.smoke else RESERVE_S[kind]
            if time.perf_counter() - start + reserve > args.budget_s:
                log(start, f"[{index + 1}/{len(cases)}] {label}: skipped (time budget {args.budget_s:.0f} s)")
                done[case] = {"case": "env steps" if kind == "env" else "training", "map": f"{size}x{size}",
                              "n_envs": case[-1], "obs": "multi" if kind == "env" else case[2],
                              "skipped": f"time budget {args.budget_s:.0f} s"}
                continue
            log(start, f"[{index + 1}/{len(cases)}] {label}")
            if kind == "env":
                done[case] = env_case(size, case[2], args, start, rollouts)
            else:
                if not args.smoke:  # the env cases' states and programs: free their memory
                    rollouts.clear()
                done[case] = train_case(size, case[2], case[3], args, device, start)
            if args.smoke:  # which case of the full suite a tiny row stands for
                done[case]["full_case"] = f"{size}x{size}, {case[-1]} envs"
            log(start, f"  {done[case]}")
        if "scale" in args.only:
            scale_case(args, device, start, out_dir)  # its rows: <name>_devices.json / .md
    rows = [done[case] for case in listed]
    speeds = {(r["map"], r["obs"]): r.get("env_steps_per_s") for r in rows if r["case"] == "training"}
    for row in rows:
        single = speeds.get((row["map"], "single"))
        if row["case"] == "training" and row["obs"] == "multi" and single and row.get("env_steps_per_s"):
            row["vs_single"] = f"{row['env_steps_per_s'] / single:.2f}x"
        row["device"] = dev.device_kind
    total_s = time.perf_counter() - start
    columns = ["case", "map", "obs", "n_envs", "settings", "env_steps_per_s", "aim", "vs_single",
               "ms_per_step", "timed_env_steps", "timed_s", "first_run_s", "compile_s", "skipped"]
    if args.smoke:
        columns.insert(1, "full_case")
    smoke = "; SMOKE: tiny sizes on the CPU, the figures mean nothing" if args.smoke else ""
    title = (f"Device suite ({dev.platform}: {dev.device_kind}{smoke}; "
             f"JAX {jax.__version__}; {args.num_bots} tribes; {total_s:.0f} s in all; "
             f"load average {os.getloadavg()[0]:.1f})")
    name = args.name or ("smoke" if args.smoke else device_name())
    if not rows:  # only the scaling sweep ran: bench_train wrote its table
        return rows, out_dir / f"{name}_devices.json"
    json_path, _ = write_results(name, rows, columns, title, out_dir)
    log(start, f"wrote {json_path} and .md")
    return rows, json_path


if __name__ == "__main__":
    main()
