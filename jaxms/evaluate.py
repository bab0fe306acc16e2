"""Evaluate a trained agent against the tribes, next to baseline policies in the same seat.

    python -m jaxms.evaluate runs/NAME_TIMESTAMP [--games 50] [--map SPEC] [--baselines random,wait,tribe]
                                                 [--gif game.gif]

Plays N games (one episode each, all games batched with vmap) and reports per policy: win rate, mean final
land share, mean final rank and mean survival (steps survived), each with a 95% confidence interval
(Wilson for the win rate, normal for the means). Baselines in the agent's seat: uniform random over legal
actions, always WAIT, and the tribe AI itself (the seat played by the tribe rules). Writes JSON and prints
a table. `--gif FILE` also records one game of the agent (`jaxms.render`): the map with territories,
attacks and the agent's windows, the views it saw and a caption per step, as a GIF (or MP4).

This module is the command line only: policies and games are `jaxms.play`'s, the run is rebuilt by
`jaxms.run.load_run`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jaxms.play import BASELINES, POLICY_KINDS, Policy, evaluate_policies, format_table, network_policy


def main(argv: list[str] | None = None) -> int:
    from jaxms.config import MAX_SEED

    parser = argparse.ArgumentParser(prog="python -m jaxms.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a run folder (runs/NAME_TIMESTAMP: its best/, else final/, "
                                           "else newest checkpoint), one of those folders, or a step in one")
    parser.add_argument("--games", type=int, default=50, help="games per policy (default 50)")
    parser.add_argument("--map", default=None, help="map spec or pool of one shape to play on, e.g. held-out "
                                                    "maps continents_256_s1000-1049 (default: the run's map)")
    parser.add_argument("--baselines", default=",".join(BASELINES),
                        help=f"comma-separated baselines from {', '.join(BASELINES)}, or 'none'")
    parser.add_argument("--policy", choices=POLICY_KINDS, default="sample",
                        help="sample from the agent's policy (default) or take its most likely action")
    parser.add_argument("--seed", type=int, default=12345, help=f"random seed, 0..{MAX_SEED} (default 12345)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (default: "
                                                                 "<run>/evaluation.json)")
    parser.add_argument("--gif", type=Path, default=None, metavar="FILE",
                        help="also record one game of the agent (its --policy, --seed) as an animated GIF, "
                             "or an MP4 with a .mp4 name (needs imageio-ffmpeg)")
    parser.add_argument("--gif-steps", type=int, default=100,
                        help="steps of the recorded game at most (default 100; it stops where the game ends)")
    parser.add_argument("--gif-size", type=int, default=512,
                        help="pixels on the map's longer side in the recording (default 512)")
    args = parser.parse_args(argv)
    if args.games < 1:
        parser.error(f"--games must be >= 1, got {args.games}")
    if not 0 <= args.seed <= MAX_SEED:
        parser.error(f"--seed must be an integer in 0..{MAX_SEED}, got {args.seed}")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip() and args.baselines != "none"]
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        parser.error(f"unknown baselines {unknown}: accepted are {', '.join(BASELINES)} or none")
    if args.out is not None:  # checked before minutes of playing, not after
        problem = writable_file(args.out)
        if problem:
            parser.error(f"--out {args.out}: {problem}")
    if args.gif is not None:
        from jaxms.render.episode import video_problem

        problem = video_problem(args.gif)
        if problem:
            parser.error(f"--gif {args.gif}: {problem}")
    for flag, value, low in (("--gif-steps", args.gif_steps, 1), ("--gif-size", args.gif_size, 16)):
        if value < low:
            parser.error(f"{flag} must be an integer >= {low}, got {value}")

    from jaxms.run import build_run, load_game_maps, load_run

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        config, run_dir, network, trained = load_run(args.checkpoint, map_override=args.map, report=say)
        maps = load_game_maps(config)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out or Path(run_dir) / "evaluation.json"
    problem = writable_file(out)
    if problem:
        print(f"error: {out}: {problem} (give --out FILE)", file=sys.stderr)
        return 2
    if args.gif is not None:
        record_game(args, config, network, trained, maps, say)
    policies: dict[str, Policy | str] = {"agent": network_policy(network, trained, args.policy == "greedy")}
    policies.update({name: BASELINES[name] for name in baselines})

    env = build_run(config, maps=maps).env
    results = evaluate_policies(env, env.default_params, policies, args.games, args.seed, report=say)
    print(f"{config.run.map}, {config.env.num_bots} tribes, {args.games} games per policy "
          f"({args.policy} actions)")
    print(format_table(results))
    try:
        out.write_text(json.dumps({"map": config.run.map, "num_bots": config.env.num_bots,
                                   "games": args.games, "policy": args.policy, "results": results},
                                  indent=2) + "\n")
    except OSError as error:
        print(f"error: could not write {out}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


def record_game(args, config, network, trained, maps, say) -> None:
    """Record one game of the agent (`--gif`) and write it; says where and how it went."""
    import time

    import jax

    from jaxms.play import network_actor
    from jaxms.render import record_episode, save_episode
    from jaxms.run import build_run

    start = time.monotonic()
    env = build_run(config, maps=maps).env
    say(f"recording one game of the agent ({args.policy} actions, at most {args.gif_steps} steps)")
    episode = record_episode(env, env.default_params, network_actor(network, args.policy == "greedy"),
                             jax.random.key(args.seed), args.gif_steps, policy_params=trained)
    save_episode(episode, args.gif, size=args.gif_size)
    outcome = ("won" if episode.won else "lost") if episode.ended else "still running"
    say(f"wrote {args.gif}: {episode.num_steps} steps ({outcome}, land share "
        f"{episode.land_shares[-1][1]:.3f}) in {time.monotonic() - start:.0f} s")


def writable_file(path: Path) -> str | None:
    """None if a file can be written at `path`, else what is wrong (in words)."""
    import os

    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return "is a folder; give a file name (e.g. evaluation.json)"
    if not folder.exists():
        return f"the folder {folder} does not exist; create it first or write elsewhere"
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "not writable; give a writable path"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
