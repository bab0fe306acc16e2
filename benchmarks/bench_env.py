"""Simulation speed and memory: game ticks, the phases of a tick and the seams of an env step.

Every case starts from a busy position: the envs (built-in `continents_<size>` maps, the agent and N tribes)
are first played for `--warmup-steps` env steps with uniformly random legal actions, so attacks run and
borders exist, as in training. Every timed quantity is the median of `--repeats` blocked calls after a
compile, reported as wall time (`time.perf_counter`) and CPU time (`time.process_time`: all threads of the
process, so it can exceed the wall time where XLA runs in parallel); figures are per tick, per phase
application or per seam call. Sections (`--sections`, all by default):

- grid: for each map size in `--sizes` and n_envs in `--n-envs` (`--num-bots` tribes), game ticks alone
  (scripted bots, no observation) vmapped over the envs, and env steps (an action, `ticks_per_step`
  ticks, the multi-scale observation, auto-reset): ms per tick (batch and per env), ns per tile per tick,
  env steps/s, a batch's cost per env relative to one env of the same size, state bytes per env, XLA's
  peak memory estimate of the step and compile time.
- ticks: one env at each size in `--tick-sizes` with each tribe count in `--tribes`: ms per tick of a run
  of `--tick-count` ticks handing the conquest's buffers on as the env's step does (`run_ticks`), both
  vmapped over a batch of one (as training runs it: a `cond` on a batched flag computes both branches)
  and as the plain function ("plain"); the activity (tiles held by players, tiles changing hands per tick,
  live attacks) so cases can be compared; state MB per env; compile time. Then the ratio
  tick(largest size) / tick(smallest size) per tribe count (issue 12: <= 1.5 for 4096 vs 1024).
- phases: at each size in `--phase-sizes` and each tribe count, the phases of a tick (`TICK_PHASES`, in
  `jaxms.game.loop.tick`'s order), each jitted alone, run `--phase-repeats` times in a scan from its own
  input: the warmed position carried through the earlier phases, so each phase sees what it sees in a tick
  (the tick counter and key advance between applications, as in ticks). Also the whole tick and the scan's
  own cost ("(loop)": no phase) the same way, and a check that the phases in order equal `tick`.
- boats: one env on `islands_<--boat-size>` with `--num-bots` tribes after the warm-up: the tick (scripted
  bots, vmapped over a batch of one) from that position with no boat at sea, and from the same position
  with `--boats-per-player` boats at sea for every player (launched from and landing on shore tiles, their
  arrival beyond the timed ticks, so every tick carries them): a boat's per-tick cost is O(boats).
- seams: one env at `--seam-size` with `--num-bots` tribes: `env.act`, `env.simulate` (`ticks_per_step`
  ticks), `env.observe`, `env.outcome` and the whole `env.step` (auto-reset included), each jitted alone
  (vmapped over a batch of one, as training runs them, or plain with `--plain-seams`) with the map's
  arrays as an argument (`env.map_arrays(params)`), and a jitted call that does nothing ("(dispatch)").
- course: one env at `--course-size` with `--num-bots` tribes, played from its reset with uniformly random
  legal actions (as training's first updates play it); at each of `--course-steps` (env steps since the
  reset) the env step (auto-reset included) and `env.simulate` (ms per tick) are timed from the position
  reached, with its activity: players' tiles, the blocks on the border list (what a tick's first round
  reads), live attacks, tiles changing hands per tick over the timed step. The other sections time the
  position after `--warmup-steps`; a tick's cost follows the length of the players' borders, which grows
  as they expand, so this shows what ticks cost later in a game (an episode lasts thousands of ticks).

Issue 12's targets (2-core CPU): a tick at 1024x1024, 10 tribes, 1 env <= 1.0 ms; at 2048x2048 with 50
tribes <= 4 ms; tick(4096) / tick(1024) <= 1.5; an env step at 1024x1024, 1 env <= 15 ms; a batch of 8
envs' cost per env <= 1.0x one env's; state per env at 4096x4096 <= 40 MB. The full run takes ~10-15
minutes on 2 cores; select parts with --sections and the size lists.

    python -m benchmarks.bench_env [--sections grid ticks phases seams] [--sizes 128 256 512 1024 2048]
        [--n-envs 1 8 32] [--tick-sizes 1024 2048 4096] [--tribes 10 50] [--phase-sizes 1024 4096]
        [--seam-size 1024] [--warmup-steps 20] [--repeats 3] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from benchmarks.common import cpu_and_wall_times, write_results
from jaxms import load_map
from jaxms.env import make_env
from jaxms.env.actions import WAIT_ACTION
from jaxms.game.boats import BOATS_PER_PLAYER, step_boats
from jaxms.game.bots import scripted_bots
from jaxms.game.grid import board_layout
from jaxms.game.loop import (
    _retreats,
    check_win,
    conquer,
    conquest_scratch,
    grow,
    launch_orders,
    tick,
    tick_carrying,
)
from jaxms.game.structures import capture_structures

TARGET_TICK_MS_1024 = 1.0  # issue 12: one tick, 1024x1024, 10 tribes, 1 env
TARGET_TICK_RATIO = 1.5  # issue 12: tick(4096) / tick(1024)
TARGET_STEP_MS_1024 = 15.0  # issue 12: env step at 1024x1024, 1 env
SECTIONS = ("grid", "ticks", "phases", "seams", "boats", "course")

# The phases of a tick, in `jaxms.game.loop.tick`'s order: (name, fn(state, arrays, rules, bots, conquest_key,
# bots_key) -> state). The keys are those `tick` splits from `state.key`; the tick counter and the key
# advance outside (as at the end of `tick`). When `tick` changes, change this table: the phases section
# checks that the phases in order give what `tick` gives.
Phase = Callable[..., object]
TICK_PHASES: tuple[tuple[str, Phase], ...] = (
    ("win check", lambda s, a, r, b, ck, bk: jax.lax.cond(
        s.tick % r.win_check_interval == 0, lambda s: check_win(s, a, r), lambda s: s, s)),
    ("death + growth", lambda s, a, r, b, ck, bk: grow(s.replace(alive=s.alive & (s.tiles > 0)), r)),
    ("bots", lambda s, a, r, b, ck, bk: b(s, a, bk, r)),
    ("retreats", lambda s, a, r, b, ck, bk: _retreats(s, r)),
    ("conquest", lambda s, a, r, b, ck, bk: conquer(s, a, r, ck)),
    ("structure capture", lambda s, a, r, b, ck, bk: capture_structures(s)),
    ("launches", lambda s, a, r, b, ck, bk: launch_orders(s)),
    ("boats", lambda s, a, r, b, ck, bk: _launch_and_count(step_boats(s, a, r))),
)


def _launch_and_count(state):
    return state.replace(incoming=state.attacks[1:, :].sum(axis=0))


# ------------------------------------------------------------------------------------------------------
# Helpers (random_policy_rollout is also used by other benchmarks)
# ------------------------------------------------------------------------------------------------------

def tree_bytes(tree) -> int:
    return sum(x.nbytes if not jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else 8
               for x in jax.tree.leaves(tree))


def random_policy_rollout(env, params, num_steps: int):
    """A jittable scan of `num_steps` env steps with uniformly random legal actions, vmapped over envs."""

    def one_step(carry, _):
        obs, state, key = carry
        key, action_key, step_key = jax.random.split(key, 3)
        logits = jnp.where(obs["action_mask"], 0.0, -1e9)
        actions = jax.random.categorical(action_key, logits)
        step_keys = jax.random.split(step_key, actions.shape[0])
        obs, state, reward, _done, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            step_keys, state, actions, params)
        return (obs, state, key), reward.mean()

    def rollout(obs, state, key):
        (obs, state, key), rewards = jax.lax.scan(one_step, (obs, state, key), None, length=num_steps)
        return obs, state, key, rewards

    return rollout


def warmed_up(env, params, num_steps: int):
    """(obs, state) of one env (a batch of 1) after its reset and `num_steps` random legal steps: a game
    under way, for timing ticks on a realistic position."""
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(0), 1),
                                                                  params)
    warm = jax.jit(random_policy_rollout(env, params, num_steps))
    obs, state, _, _ = jax.block_until_ready(warm(obs, state, jax.random.key(1)))
    return obs, state


def game_ticks(env, num_ticks: int, batched: bool = True):
    """A jittable scan of `num_ticks` game ticks (scripted bots) over a batch of games (or one game when not
    `batched`); the map's arrays are an argument (`env.map_arrays(params)`), as in the env's step, and so are
    the conquest's buffers made once a call and handed from tick to tick (`run_ticks`). Returns the games and
    the tiles per player after each tick (int32[num_ticks, (N,) P + 1])."""

    def one(carry, arrays):
        return tick_carrying(*carry, arrays, env.rules, scripted_bots)

    def scratch(game):
        return conquest_scratch(game, env.rules)

    step = jax.vmap(one, in_axes=(0, None)) if batched else one

    def run(games, arrays):
        def body(carry, _):
            carry = step(carry, arrays)
            return carry, carry[0].tiles

        carry = (games, jax.vmap(scratch)(games) if batched else scratch(games))
        (games, _), tiles = jax.lax.scan(body, carry, None, length=num_ticks)
        return games, tiles

    return run


def compiled_with(fn, *args) -> tuple[object, float, int | None]:
    """(compiled `jax.jit(fn)` for `args`, seconds lowering + compiling, XLA's peak memory estimate)."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - start
    try:
        analysis = compiled.memory_analysis()
        peak = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
                + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)
    except (AttributeError, NotImplementedError, TypeError):
        peak = None
    return compiled, seconds, peak


def timed(fn, *args, repeats: int = 3) -> tuple[float, float, object]:
    """(median wall seconds, median CPU seconds, last result) per call; the first call is not counted."""
    walls, cpus, result = cpu_and_wall_times(fn, *args, repeats=repeats)
    return float(np.median(walls)), float(np.median(cpus)), result


def ms(seconds: float, per: int = 1) -> float:
    return round(1e3 * seconds / per, 3)


def unbatch(tree):
    return jax.tree.map(lambda leaf: leaf[0], tree)


class Warmed:
    """Envs after the busy warm-up, made once per (size, tribes, n_envs) and kept for the sections."""

    def __init__(self, args):
        self.args = args
        self.cases: dict[tuple[int, int, int], tuple] = {}
        self.maps: dict[int, object] = {}

    def get(self, size: int, tribes: int, n_envs: int):
        """(env, params, obs, state, key) after `--warmup-steps` random legal steps; batched over n_envs."""
        key = (size, tribes, n_envs)
        if key not in self.cases:
            args = self.args
            if size not in self.maps:
                self.maps = {size: load_map(f"continents_{size}")}  # keep one map: 4096 is 16M tiles
            env = make_env(self.maps[size], num_bots=tribes, ticks_per_step=args.ticks_per_step,
                           max_steps=10**6, reset_pool_size=2)
            params = env.default_params
            keys = jax.random.split(jax.random.key(0), n_envs)
            obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
            warm = jax.jit(random_policy_rollout(env, params, args.warmup_steps))
            obs, state, rng, _ = jax.block_until_ready(warm(obs, state, jax.random.key(1)))
            if len(self.cases) >= 2:  # keep memory bounded (a 4096 case holds ~100 MB of positions)
                self.cases.pop(next(iter(self.cases)))
            self.cases[key] = (env, params, obs, state, rng)
        return self.cases[key]


# ------------------------------------------------------------------------------------------------------
# Sections
# ------------------------------------------------------------------------------------------------------

def bench_grid_case(warmed: Warmed, size: int, n_envs: int, args) -> dict:
    """Ticks and env steps of n_envs vmapped envs at one size (the original bench_env table)."""
    env, params, obs, state, key = warmed.get(size, args.num_bots, n_envs)
    # Scale the tick count so one timed call stays within the budget.
    tick_count = max(2, min(args.ticks, int(args.ticks * 128 * 128 * 8 / (size * size * n_envs))))
    arrays = env.map_arrays(params)
    run_ticks, tick_compile, _ = compiled_with(game_ticks(env, tick_count), state.game, arrays)
    tick_wall, tick_cpu, _ = timed(run_ticks, state.game, arrays, repeats=args.repeats)

    # Env steps (action + ticks_per_step ticks + observation + auto-reset).
    step_count = max(1, tick_count // args.ticks_per_step)
    rollout_fn = random_policy_rollout(env, params, step_count)
    rollout, step_compile, peak = compiled_with(rollout_fn, obs, state, key)
    step_wall, step_cpu, _ = timed(rollout, obs, state, key, repeats=args.repeats)
    return {
        "map": f"{size}x{size}", "n_envs": n_envs,
        "tick_ms": ms(tick_wall, tick_count), "tick_cpu_ms": ms(tick_cpu, tick_count),
        "tick_ms_per_env": ms(tick_wall, tick_count * n_envs),
        "ns_per_tile_tick": round(1e9 * tick_wall / (tick_count * n_envs * size * size), 2),
        "ticks_per_s": round(n_envs * tick_count / tick_wall, 1),
        "step_ms": ms(step_wall, step_count), "step_cpu_ms": ms(step_cpu, step_count),
        "env_steps_per_s": round(n_envs * step_count / step_wall, 2),
        "state_mb_per_env": round(tree_bytes(state) / n_envs / 2**20, 2),
        "peak_mb": round(peak / 2**20, 1) if peak else "",
        "compile_s": round(tick_compile + step_compile, 1),
    }


def activity(tiles_before: np.ndarray, tiles_trace: np.ndarray) -> float:
    """Tiles changing hands per tick (at least): the gains of every slot (unowned included) per tick."""
    tiles = np.concatenate([tiles_before[None], tiles_trace]).astype(np.int64)
    return float(np.clip(np.diff(tiles, axis=0), 0, None).sum() / tiles_trace.shape[0])


def bench_tick_case(warmed: Warmed, size: int, tribes: int, args) -> dict:
    """One env's ticks at one size and tribe count: vmapped over a batch of one, and plain."""
    env, params, _obs, state, _key = warmed.get(size, tribes, 1)
    arrays = env.map_arrays(params)
    games = state.game
    row = {"map": f"{size}x{size}", "tribes": tribes, "ticks": args.tick_count}
    tiles = np.asarray(games.tiles)
    row["player_tiles"] = int(tiles[0, 1:].sum())
    row["land_share_held"] = round(row["player_tiles"] / max(int(arrays.num_land_tiles), 1), 3)
    row["live_attacks"] = int((np.asarray(games.attacks[0]) > 0).sum())
    compile_s = 0.0
    for label, batched, game in (("", True, games), ("_plain", False, unbatch(games))):
        if not batched and args.skip_plain:
            continue
        run, seconds, _ = compiled_with(game_ticks(env, args.tick_count, batched), game, arrays)
        wall, cpu, (_, trace) = timed(run, game, arrays, repeats=args.repeats)
        compile_s += seconds
        row[f"tick_ms{label}"] = ms(wall, args.tick_count)
        row[f"tick_cpu_ms{label}"] = ms(cpu, args.tick_count)
        if batched:
            row["tiles_taken_per_tick"] = round(activity(tiles[0], np.asarray(trace)[:, 0]), 1)
    row["state_mb_per_env"] = round(tree_bytes(state) / 2**20, 2)
    row["game_mb_per_env"] = round(tree_bytes(games) / 2**20, 2)
    row["compile_s"] = round(compile_s, 1)
    return row


def tick_ratios(rows: list[dict]) -> list[dict]:
    """tick(largest size) / tick(smallest size) per tribe count, for every timing column."""
    out = []
    for tribes in sorted({r["tribes"] for r in rows}):
        mine = sorted((r for r in rows if r["tribes"] == tribes and "tick_ms" in r),
                      key=lambda r: int(r["map"].split("x")[0]))
        if len(mine) < 2:
            continue
        small, large = mine[0], mine[-1]
        ratio = {"tribes": tribes, "ratio": f"{large['map']} / {small['map']}"}
        for column in ("tick_ms", "tick_cpu_ms", "tick_ms_plain", "tick_cpu_ms_plain"):
            if column in small and column in large and small[column] > 0:
                ratio[column] = round(large[column] / small[column], 2)
        ratio["tiles_taken_ratio"] = round(large["tiles_taken_per_tick"]
                                           / max(small["tiles_taken_per_tick"], 1e-9), 2)
        out.append(ratio)
    return out


def repeated(fn: Phase, env, num: int, batched: bool, advance: bool = True):
    """A jittable scan applying one phase `num` times to the carried games (the tick counter and the key
    advance between applications, as in `tick`, unless `advance` is off: the whole tick does that itself)."""
    rules = env.rules

    def one(game, arrays):
        key, conquest_key, bots_key = jax.random.split(game.key, 3)
        game = fn(game, arrays, rules, scripted_bots, conquest_key, bots_key)
        return game.replace(tick=game.tick + 1, key=key) if advance else game

    step = jax.vmap(one, in_axes=(0, None)) if batched else one

    def run(games, arrays):
        return jax.lax.scan(lambda g, _: (step(g, arrays), None), games, None, length=num)[0]

    return run


def _data(x: jax.Array) -> jax.Array:
    return jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x


def phase_inputs(env, batched: bool):
    """A jittable `(games, arrays) -> (inputs, matches)`: the games each phase of TICK_PHASES starts from in
    one tick (the earlier phases applied), and whether the phases in order give what `loop.tick` gives."""
    rules = env.rules

    def one(game, arrays):
        key, conquest_key, bots_key = jax.random.split(game.key, 3)
        inputs, position = [], game
        for _name, fn in TICK_PHASES:
            inputs.append(position)
            position = fn(position, arrays, rules, scripted_bots, conquest_key, bots_key)
        position = position.replace(tick=position.tick + 1, key=key)
        ticked = tick(game, arrays, rules, scripted_bots)
        same = [jnp.all(_data(x) == _data(y))
                for x, y in zip(jax.tree.leaves(position), jax.tree.leaves(ticked), strict=True)]
        return inputs, jnp.all(jnp.stack(same))

    return jax.vmap(one, in_axes=(0, None)) if batched else one


def bench_phase_case(warmed: Warmed, size: int, tribes: int, args) -> list[dict]:
    """The phases of a tick at one size and tribe count, each from the position the earlier ones leave."""
    env, params, _obs, state, _key = warmed.get(size, tribes, 1)
    arrays = env.map_arrays(params)
    batched = not args.plain_phases
    game = state.game if batched else unbatch(state.game)
    inputs, matches = jax.jit(phase_inputs(env, batched))(game, arrays)
    matches = bool(jnp.all(matches))
    if not matches:
        print(f"  WARNING: the phases of TICK_PHASES in order differ from loop.tick at {size}x{size}: "
              "update TICK_PHASES in benchmarks/bench_env.py", flush=True)

    cases = [(name, fn, inp, True) for (name, fn), inp in zip(TICK_PHASES, inputs, strict=True)]
    cases += [("(loop)", lambda s, *_: s, game, True),
              ("whole tick", lambda s, a, r, b, ck, bk: tick(s, a, r, b), game, False)]
    rows, results = [], {}
    for name, fn, inp, advance in cases:
        harness = repeated(fn, env, args.phase_repeats, batched, advance)
        run, compile_s, _ = compiled_with(harness, inp, arrays)
        wall, cpu, _ = timed(run, inp, arrays, repeats=args.repeats)
        results[name] = (wall / args.phase_repeats, cpu / args.phase_repeats)
        rows.append({"map": f"{size}x{size}", "tribes": tribes, "phase": name,
                     "ms": ms(wall, args.phase_repeats), "cpu_ms": ms(cpu, args.phase_repeats),
                     "compile_s": round(compile_s, 1)})
        print(f"    {name}: {rows[-1]['ms']} ms ({rows[-1]['cpu_ms']} ms CPU) per application", flush=True)
    total_wall = sum(results[name][0] for name, _ in TICK_PHASES)
    total_cpu = sum(results[name][1] for name, _ in TICK_PHASES)
    for row in rows:
        if row["phase"] in dict(TICK_PHASES):
            row["share"] = f"{results[row['phase']][0] / max(total_wall, 1e-12):.0%}"
    rows.append({"map": f"{size}x{size}", "tribes": tribes, "phase": "sum of phases", "ms": ms(total_wall),
                 "cpu_ms": ms(total_cpu), "share": "100%",
                 "matches_tick": matches})
    return rows


def with_boats_at_sea(games, arrays, per_player: int):
    """`games` (batched) with `per_player` boats at sea for every player: each from one shore tile to another,
    arriving long after the timed ticks."""
    shore = np.flatnonzero(np.asarray(arrays.shore).ravel())
    rng = np.random.default_rng(0)
    shape = games.boat_troops.shape  # [N, P + 1, 3]
    used = np.zeros(shape, bool)
    used[:, 1:, :per_player] = True
    ends = rng.choice(shore, size=(2, *shape))
    return games.replace(
        boat_troops=jnp.where(used, 1_000.0, 0.0).astype(jnp.float32),
        boat_target=jnp.zeros(shape, jnp.int32), boat_src=jnp.asarray(ends[0], jnp.int32),
        boat_dst=jnp.asarray(ends[1], jnp.int32),
        boat_launch=jnp.broadcast_to(games.tick[:, None, None], shape).astype(jnp.int32),
        boat_arrive=jnp.broadcast_to(games.tick[:, None, None] + 10**6, shape).astype(jnp.int32))


def bench_boat_case(args) -> list[dict]:
    """The tick on an islands map with and without boats at sea (same position otherwise)."""
    size = args.boat_size
    env = make_env(load_map(f"islands_{size}"), num_bots=args.num_bots, ticks_per_step=args.ticks_per_step,
                   max_steps=10**6, reset_pool_size=2)
    params = env.default_params
    _, state = warmed_up(env, params, args.warmup_steps)
    arrays = env.map_arrays(params)
    empty = state.game.replace(boat_troops=jnp.zeros_like(state.game.boat_troops))
    loaded = with_boats_at_sea(state.game, arrays, args.boats_per_player)
    run, compile_s, _ = compiled_with(game_ticks(env, args.tick_count), empty, arrays)
    rows = []
    for label, games in (("no boats at sea", empty), (f"{args.boats_per_player} boats per player", loaded)):
        wall, cpu, (after, _) = timed(run, games, arrays, repeats=args.repeats)
        rows.append({"map": f"islands_{size}", "tribes": args.num_bots, "case": label,
                     "boats_at_sea": int((np.asarray(games.boat_troops) > 0).sum()),
                     "boats_at_sea_after": int((np.asarray(after.boat_troops) > 0).sum()),
                     "tick_ms": ms(wall, args.tick_count), "tick_cpu_ms": ms(cpu, args.tick_count),
                     "compile_s": round(compile_s, 1)})
        print(f"  {rows[-1]}", flush=True)
    return rows


def bench_seams(warmed: Warmed, args) -> list[dict]:
    """The seams of one env step (`env.act`, `simulate`, `observe`, `outcome`) and the whole `env.step`."""
    size, tribes = args.seam_size, args.num_bots
    env, params, obs, state, key = warmed.get(size, tribes, 1)
    arrays = env.map_arrays(params)
    batched = not args.plain_seams
    action_key, step_key = jax.random.split(key)
    action = jax.random.categorical(action_key, jnp.where(obs["action_mask"], 0.0, -1e9)).astype(jnp.int32)
    step_keys = jax.random.split(step_key, 1)
    if not batched:
        state, action, step_keys = unbatch(state), action[0], step_keys[0]
    vmap = jax.vmap if batched else (lambda fn, in_axes=None: fn)
    act = vmap(env.act)
    simulate = vmap(env.simulate, in_axes=(0, None))
    observe = vmap(env.observe, in_axes=(0, None, 0, 0, None))
    outcome = vmap(env.outcome, in_axes=(0, 0, None, 0, None))
    step = vmap(env.step, in_axes=(0, 0, 0, None))
    steps = state.steps + 1
    # (name, fn, its arguments from the outputs so far): each seam's input is what the earlier ones give.
    cases = [
        ("(dispatch)", lambda s: s.steps + 1, lambda out: (state,)),
        ("act", act, lambda out: (state, action)),
        ("simulate", simulate, lambda out: (out["act"][0], arrays)),
        ("observe", observe, lambda out: (out["simulate"], arrays, state.memory, steps, params)),
        ("outcome", outcome, lambda out: (out["act"][0], out["simulate"], arrays, steps, params)),
        ("step (auto-reset included)", step, lambda out: (step_keys, state, action, params)),
    ]
    rows, out = [], {}
    where = f"{size}x{size}"
    for name, fn, make_args in cases:
        fn_args = make_args(out)
        run, compile_s, _ = compiled_with(fn, *fn_args)
        wall, cpu, out[name] = timed(run, *fn_args, repeats=args.repeats)
        rows.append({"map": where, "tribes": tribes, "seam": name, "ms": ms(wall), "cpu_ms": ms(cpu),
                     "compile_s": round(compile_s, 1)})
        print(f"    {name}: {rows[-1]['ms']} ms ({rows[-1]['cpu_ms']} ms CPU)", flush=True)
    seams = [r for r in rows if r["seam"] in ("act", "simulate", "observe", "outcome")]
    rows.append({"map": where, "tribes": tribes, "seam": "sum of seams",
                 "ms": round(sum(r["ms"] for r in seams), 3),
                 "cpu_ms": round(sum(r["cpu_ms"] for r in seams), 3)})
    simulate_row = next(r for r in rows if r["seam"] == "simulate")
    simulate_row["per_tick_ms"] = round(simulate_row["ms"] / env.ticks_per_step, 3)
    return rows


def bench_course(args) -> list[dict]:
    """One env's step and tick at points of a game played from its reset (see the module docstring)."""
    size, tribes = args.course_size, args.num_bots
    env = make_env(load_map(f"continents_{size}"), num_bots=tribes, ticks_per_step=args.ticks_per_step,
                   max_steps=10**6, reset_pool_size=2)
    params = env.default_params
    arrays = env.map_arrays(params)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(0), 1),
                                                                   params)
    key = jax.random.key(1)
    advance, _, _ = compiled_with(random_policy_rollout(env, params, 1), obs, state, key)
    simulate, simulate_compile, _ = compiled_with(jax.vmap(env.simulate, in_axes=(0, None)), state.game,
                                                  arrays)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    action = jnp.full(1, WAIT_ACTION, jnp.int32)  # the timed step orders nothing: the same work each call
    step_keys = jax.random.split(jax.random.key(2), 1)
    step_fn, step_compile, _ = compiled_with(step, step_keys, state, action, params)
    print(f"  compiled: simulate {simulate_compile:.1f} s, step {step_compile:.1f} s", flush=True)
    rows, played = [], 0
    for target in sorted(set(args.course_steps)):
        while played < target:
            obs, state, key, _ = advance(obs, state, key)
            played += 1
        game = unbatch(state.game)
        tick_wall, tick_cpu, after_step = timed(simulate, state.game, arrays, repeats=args.repeats)
        step_wall, step_cpu, _ = timed(step_fn, step_keys, state, action, params, repeats=args.repeats)
        tiles = np.asarray(game.tiles)
        # The border list's count (a map read whole has no lists).
        whole = board_layout(size, size)[2]
        border_blocks = "" if whole else int(np.asarray(game.block_counts)[int(game.tick) % 2])
        rows.append({
            "map": f"{size}x{size}", "tribes": tribes, "env_steps": target, "game_tick": int(game.tick),
            "episode_steps": int(unbatch(state.steps)), "player_tiles": int(tiles[1:].sum()),
            "land_share_held": round(int(tiles[1:].sum()) / max(int(arrays.num_land_tiles), 1), 3),
            "agent_tiles": int(tiles[1]),
            "border_blocks": border_blocks,
            "live_attacks": int((np.asarray(game.attacks) >= 1.0).sum()),
            "tiles_changing_per_tick": round(activity(tiles, np.asarray(after_step.tiles))
                                             / args.ticks_per_step, 1),
            "tick_ms": ms(tick_wall, args.ticks_per_step), "tick_cpu_ms": ms(tick_cpu, args.ticks_per_step),
            "step_ms": ms(step_wall), "step_cpu_ms": ms(step_cpu)})
        print(f"  {rows[-1]}", flush=True)
    return rows


# ------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS,
                        help="what to measure (default: all)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024, 2048],
                        help="grid: map sizes")
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 8, 32], help="grid: envs per batch")
    parser.add_argument("--num-bots", type=int, default=10, help="grid and seams: tribes")
    parser.add_argument("--ticks", type=int, default=200,
                        help="grid: ticks per timed call at 128x128, 8 envs")
    parser.add_argument("--max-tiles", type=float, default=2 * 2048 * 2048,
                        help="grid: skip cases with more tiles than this over all envs (what does not fit)")
    parser.add_argument("--tick-sizes", type=int, nargs="+", default=[1024, 2048, 4096],
                        help="ticks: map sizes (1 env)")
    parser.add_argument("--tribes", type=int, nargs="+", default=[10, 50], help="ticks and phases: tribes")
    parser.add_argument("--tick-count", type=int, default=20, help="ticks: ticks per timed call")
    parser.add_argument("--skip-plain", action="store_true",
                        help="ticks: time only the vmapped tick (batch of one), not the plain function")
    parser.add_argument("--phase-sizes", type=int, nargs="+", default=[1024, 4096], help="phases: map sizes")
    parser.add_argument("--phase-repeats", type=int, default=20,
                        help="phases: applications of a phase per timed call (ticks advance between them)")
    parser.add_argument("--plain-phases", action="store_true",
                        help="phases: time the plain functions instead of a vmapped batch of one")
    parser.add_argument("--seam-size", type=int, default=1024, help="seams: map size (1 env)")
    parser.add_argument("--boat-size", type=int, default=1024, help="boats: islands map size (1 env)")
    parser.add_argument("--boats-per-player", type=int, default=BOATS_PER_PLAYER,
                        help="boats: boats at sea per player in the loaded case")
    parser.add_argument("--plain-seams", action="store_true",
                        help="seams: time the plain functions instead of a vmapped batch of one")
    parser.add_argument("--course-size", type=int, default=1024, help="course: map size (1 env)")
    parser.add_argument("--course-steps", type=int, nargs="+", default=[20, 50, 100, 200, 400],
                        help="course: env steps since the reset at which to time the step and the tick")
    parser.add_argument("--ticks-per-step", type=int, default=10)
    parser.add_argument("--warmup-steps", type=int, default=20, help="random legal env steps before timing")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls (median)")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: benchmarks/results")
    parser.add_argument("--name", default="bench_env", help="results file name (without extension)")
    return parser


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("ticks", "tick_count", "phase_repeats", "ticks_per_step", "warmup_steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    warmed = Warmed(args)
    sections = set(args.sections)
    work = []
    if "grid" in sections:
        work += [("grid", s, n) for s in args.sizes for n in args.n_envs if s * s * n <= args.max_tiles]
    if "ticks" in sections:
        work += [("ticks", s, t) for t in args.tribes for s in args.tick_sizes]
    if "phases" in sections:
        work += [("phases", s, t) for t in args.tribes for s in args.phase_sizes]
    if "seams" in sections:
        work += [("seams", args.seam_size, args.num_bots)]
    if "boats" in sections:
        work += [("boats", args.boat_size, args.num_bots)]
    if "course" in sections:
        if min(args.course_steps) < 0:
            parser.error("--course-steps must be at least 0")
        work += [("course", args.course_size, args.num_bots)]
    # Cases sharing a warmed position, (size, tribes, n_envs), run one after another (few are kept).
    warm_key = {"grid": lambda s, n: (s, args.num_bots, n), "ticks": lambda s, t: (s, t, 1),
                "phases": lambda s, t: (s, t, 1), "seams": lambda s, t: (s, t, 1),
                "boats": lambda s, t: (s, t, -1), "course": lambda s, t: (s, t, -2)}
    work.sort(key=lambda w: (warm_key[w[0]](w[1], w[2]), SECTIONS.index(w[0])))
    results: dict[str, list[dict]] = {name: [] for name in SECTIONS}
    for section, size, extra in tqdm(work, desc="bench_env", disable=None):
        print(f"{section}: {size}x{size}, {'n_envs' if section == 'grid' else 'tribes'} {extra}", flush=True)
        try:
            if section == "grid":
                results["grid"].append(bench_grid_case(warmed, size, extra, args))
            elif section == "ticks":
                results["ticks"].append(bench_tick_case(warmed, size, extra, args))
            elif section == "phases":
                results["phases"] += bench_phase_case(warmed, size, extra, args)
            elif section == "boats":
                results["boats"] += bench_boat_case(args)
            elif section == "course":
                results["course"] += bench_course(args)
            else:
                results["seams"] += bench_seams(warmed, args)
        except ValueError as error:  # a map without room for every spawn
            print(f"  skipped: {error}", flush=True)
            continue
        if section in ("grid", "ticks"):
            print(f"  {results[section][-1]}", flush=True)

    grid = results["grid"]
    single = {r["map"]: r["tick_ms"] for r in grid if r["n_envs"] == 1}
    for row in grid:  # cost per env in a batch relative to one env of the same size (target <= 1.0)
        if row["map"] in single and single[row["map"]] > 0:
            row["batch_cost_vs_single"] = round(row["tick_ms_per_env"] / single[row["map"]], 2)
    ratios = tick_ratios(results["ticks"])
    for ratio in ratios:
        print(f"tick ratio {ratio['ratio']} with {ratio['tribes']} tribes: {ratio}", flush=True)

    device = jax.devices()[0]
    grid_columns = ["map", "n_envs", "tick_ms", "tick_cpu_ms", "tick_ms_per_env", "ns_per_tile_tick",
                    "ticks_per_s", "step_ms", "step_cpu_ms", "env_steps_per_s", "batch_cost_vs_single",
                    "state_mb_per_env", "peak_mb", "compile_s"]
    tick_columns = ["map", "tribes", "tick_ms", "tick_cpu_ms", "tick_ms_plain", "tick_cpu_ms_plain",
                    "tiles_taken_per_tick", "player_tiles", "land_share_held", "live_attacks",
                    "state_mb_per_env", "game_mb_per_env", "compile_s"]
    ratio_columns = ["tribes", "ratio", "tick_ms", "tick_cpu_ms", "tick_ms_plain", "tick_cpu_ms_plain",
                     "tiles_taken_ratio"]
    mode = lambda plain: "plain functions" if plain else "vmapped over a batch of one"  # noqa: E731
    sections_out = {
        "ticks": (f"One env's tick (ms per tick over {args.tick_count} ticks; plain: not vmapped; "
                  f"target at 1024x1024, 10 tribes: <= {TARGET_TICK_MS_1024} ms)",
                  results["ticks"], tick_columns),
        "ratios": (f"Tick at the largest / smallest size, same tribes (target <= {TARGET_TICK_RATIO})",
                   ratios, ratio_columns),
        "phases": (f"The phases of a tick (ms per application, {args.phase_repeats} applications per call, "
                   f"{mode(args.plain_phases)}; (loop): the scan alone)",
                   results["phases"], ["map", "tribes", "phase", "ms", "cpu_ms", "share", "matches_tick",
                                       "compile_s"]),
        "seams": (f"The seams of an env step ({args.ticks_per_step} ticks, 1 env, {mode(args.plain_seams)}; "
                  f"target for the step at 1024x1024: <= {TARGET_STEP_MS_1024} ms)",
                  results["seams"], ["map", "tribes", "seam", "ms", "cpu_ms", "per_tick_ms", "compile_s"]),
        "boats": (f"The tick with and without boats at sea (ms per tick over {args.tick_count} ticks, 1 env, "
                  "vmapped over a batch of one; same position otherwise)", results["boats"],
                  ["map", "tribes", "case", "boats_at_sea", "boats_at_sea_after", "tick_ms", "tick_cpu_ms",
                   "compile_s"]),
        "course": (f"Along a game: one env played from its reset with random legal actions, its step "
                   f"(auto-reset included) and tick (env.simulate / {args.ticks_per_step}) timed at points "
                   "of the game (vmapped over a batch of one)", results["course"],
                   ["map", "tribes", "env_steps", "game_tick", "episode_steps", "player_tiles",
                    "land_share_held", "agent_tiles", "border_blocks", "live_attacks",
                    "tiles_changing_per_tick", "tick_ms", "tick_cpu_ms", "step_ms", "step_cpu_ms"]),
    }
    sections_out = {key: value for key, value in sections_out.items() if value[1]}
    title = (f"Simulation speed ({device.platform}: {device.device_kind}; grid: {args.num_bots} tribes, "
             f"{args.ticks_per_step} ticks per env step, {args.warmup_steps} warm-up steps; ms are wall "
             f"time, cpu_ms process CPU time (all threads); load average {load_before:.1f} -> "
             f"{os.getloadavg()[0]:.1f}; {time.perf_counter() - start:.0f} s in all)")
    write_results(args.name, grid, grid_columns, title, args.out_dir, sections=sections_out)
    return {"grid": grid, "ratios": ratios, **{k: v for k, v in results.items() if k != "grid"}}


if __name__ == "__main__":
    main()
