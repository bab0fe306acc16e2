"""Where a tick's time goes, op by op: XLA's own trace of a scan of ticks (jax.profiler), per compiled op.

    python -m benchmarks.profile_tick --map continents_1024 --tribes 10 --envs 1 --ticks 20

Warms a game up (everyone expanding, `--warmup` ticks), then traces one call of a jitted scan of `--ticks`
ticks (vmapped over `--envs` games) and reads the trace back (`jax.profiler.ProfileData`, no TensorBoard
needed). Prints, per tick: the ops XLA ran (thunks; on a CPU each costs its launch overhead however small
its work, which is what a small map's tick is made of) and the ops with the most self time (time not
spent in ops nested inside them: a while loop's own time excludes its body's ops). Op names are the
optimized HLO's (dump it with XLA_FLAGS=--xla_dump_to=DIR to find an op's source line). Saves the table to
benchmarks/results/profile_tick/<map>_<tribes>t_<envs>e.json. The trace adds overhead per op: compare
ops with each other, and take wall times from bench_env.py.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks.common import RESULTS_DIR, machine_description
from jaxms import game, load_map
from jaxms.game.bots import scripted_bots

RESULTS = RESULTS_DIR / "profile_tick"


def warmed_games(map_name: str, tribes: int, envs: int, warmup: int):
    """(games with a leading [envs] axis, map arrays): every player expanding, `warmup` ticks played."""
    arrays = game.map_arrays(load_map(map_name))

    def start(key):
        state = game.new_game(key, arrays, ["human"] + ["tribe"] * tribes)
        return game.launch_attack(state, 1, 0, 0.5 * state.troops[1])

    games = jax.vmap(start)(jax.random.split(jax.random.key(0), envs))
    run = jax.jit(jax.vmap(lambda g: game.run_ticks(g, arrays, warmup, bots=scripted_bots)))
    return jax.block_until_ready(run(games)), arrays


def self_times(events) -> tuple[dict[str, float], collections.Counter]:
    """(self time ns per op name, calls per op name) of one trace line's events (nested intervals)."""
    spans = sorted(((e.start_ns, e.start_ns + e.duration_ns, e.name) for e in events),
                   key=lambda span: (span[0], -span[1]))  # a parent before the children it contains
    own: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter = collections.Counter()
    stack: list[list] = []  # [end, name] of the open ops
    for start, end, name in spans:
        while stack and stack[-1][0] <= start:
            stack.pop()
        if stack:
            own[stack[-1][1]] -= end - start  # the parent's time in this child is not the parent's own
        own[name] += end - start
        calls[name] += 1
        stack.append([end, name])
    return own, calls


def op_sources(hlo_text: str) -> dict[str, str]:
    """{op name: `file.py:function` of the innermost Python frame that made it} from a compiled module's
    text (its metadata's stack frames; for a fusion, those of its root). Ops without a frame are left out."""
    tables: dict[str, dict[int, str]] = {"FileNames": {}, "FunctionNames": {}, "FileLocations": {},
                                         "StackFrames": {}}
    section = None
    sources = {}
    for line in hlo_text.splitlines():
        if line.strip() in tables:
            section = line.strip()
            continue
        if section and re.match(r"^\d+ ", line):
            number, rest = line.split(" ", 1)
            tables[section][int(number)] = rest
            continue
        section = None
        found = re.match(r"^\s*(?:ROOT )?%([\w.\-]+) = .*stack_frame_id=(\d+)", line)
        if found:
            sources[found.group(1)] = int(found.group(2))

    def field(text: str, key: str) -> int:
        return int(re.search(key + r"=(\d+)", text).group(1))

    def place(frame: int) -> str:
        location = tables["FileLocations"][field(tables["StackFrames"][frame], "file_location_id")]
        file_name = tables["FileNames"][field(location, "file_name_id")].strip('"')
        function = tables["FunctionNames"][field(location, "function_name_id")].strip('"')
        return f"{Path(file_name).name}:{function}"

    return {name: place(frame) for name, frame in sources.items() if frame in tables["StackFrames"]}


def profile(args) -> dict:
    games, arrays = warmed_games(args.map, args.tribes, args.envs, args.warmup)
    ticks = jax.jit(jax.vmap(lambda g: game.run_ticks(g, arrays, args.ticks, bots=scripted_bots)))
    games = jax.block_until_ready(ticks(games))  # compiled, and the games moved on
    sources = op_sources(ticks.lower(games).compile().as_text())
    start = time.perf_counter()
    games = jax.block_until_ready(ticks(games))
    wall_ms = 1e3 * (time.perf_counter() - start) / args.ticks
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            jax.block_until_ready(ticks(games))
        (trace,) = Path(folder).rglob("*.xplane.pb")
        data = jax.profiler.ProfileData.from_file(str(trace))
        own: dict[str, float] = collections.defaultdict(float)
        calls: collections.Counter = collections.Counter()
        for plane in data.planes:
            for line in plane.lines:
                # The XLA CPU runtime's worker threads; the executor's own spans are bookkeeping.
                if "XLAEigen" not in line.name:
                    continue
                # "end: <op>" spans mark an op's completion and ThreadpoolListener spans the pool's own
                # work: neither is an op of the program.
                ops = (e for e in line.events
                       if not e.name.startswith(("ThunkExecutor", "end: ", "ThreadpoolListener")))
                line_own, line_calls = self_times(ops)
                for name, ns in line_own.items():
                    own[name] += ns
                calls.update(line_calls)
    per_tick = {name: ns / 1e6 / args.ticks for name, ns in own.items()}
    kinds: dict[str, float] = collections.defaultdict(float)
    for name, value in per_tick.items():
        kinds[re.sub(r"(\.\d+)+$", "", name)] += value
    top = sorted(per_tick, key=per_tick.get, reverse=True)[: args.top]
    by_source_ms: dict[str, float] = collections.defaultdict(float)  # ops that came from one function
    by_source_calls: collections.Counter = collections.Counter()
    for name, value in per_tick.items():
        by_source_ms[sources.get(name, "(no source)")] += value
        by_source_calls[sources.get(name, "(no source)")] += calls[name] / args.ticks
    return {
        "map": args.map, "tribes": args.tribes, "envs": args.envs, "ticks": args.ticks, "warmup": args.warmup,
        "device": jax.devices()[0].device_kind, "machine": machine_description(),
        "wall_ms_per_tick_untraced": round(wall_ms, 3),
        "traced_ms_per_tick": round(sum(per_tick.values()), 3),
        "ops_per_tick": round(sum(calls.values()) / args.ticks, 1),
        "agent_tiles": int(np.asarray(games.tiles[:, 1]).mean()),
        "top_ops": [{"op": name, "self_ms_per_tick": round(per_tick[name], 4),
                     "calls_per_tick": round(calls[name] / args.ticks, 2)} for name in top],
        "by_kind_ms_per_tick": {kind: round(value, 4) for kind, value in
                                sorted(kinds.items(), key=lambda kv: -kv[1])[: args.top]},
        "by_source": [{"source": source, "calls_per_tick": round(by_source_calls[source], 1),
                       "self_ms_per_tick": round(by_source_ms[source], 4)}
                      for source in sorted(by_source_calls, key=by_source_calls.get,
                                           reverse=True)[: args.top]],
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_tick", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", default="continents_1024", help="map spec (jaxms.load_map)")
    parser.add_argument("--tribes", type=int, default=10)
    parser.add_argument("--envs", type=int, default=1, help="games vmapped together")
    parser.add_argument("--ticks", type=int, default=20, help="ticks in the traced call")
    parser.add_argument("--warmup", type=int, default=100, help="ticks played before (the game under way)")
    parser.add_argument("--top", type=int, default=25, help="ops listed")
    parser.add_argument("--no-save", action="store_true", help="print only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = profile(args)
    print(f"{result['map']}, {result['tribes']} tribes, {result['envs']} env(s), {result['device']}: "
          f"{result['wall_ms_per_tick_untraced']} ms a tick untraced; traced "
          f"{result['traced_ms_per_tick']} ms in {result['ops_per_tick']} ops a tick "
          f"(agent: {result['agent_tiles']} tiles)")
    print(f"{'self ms/tick':>12s} {'calls/tick':>10s}  op")
    for row in result["top_ops"]:
        print(f"{row['self_ms_per_tick']:12.4f} {row['calls_per_tick']:10.2f}  {row['op']}")
    print("by kind:", ", ".join(f"{k} {v:.3f}" for k, v in result["by_kind_ms_per_tick"].items()))
    print(f"{'calls/tick':>10s} {'self ms/tick':>12s}  where the ops come from (Python function)")
    for row in result["by_source"]:
        print(f"{row['calls_per_tick']:10.1f} {row['self_ms_per_tick']:12.4f}  {row['source']}")
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{args.map}_{args.tribes}t_{args.envs}e.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
