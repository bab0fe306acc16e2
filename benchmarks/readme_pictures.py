"""The README's pictures from a real run: its learning curve, and one game of its agent as a GIF and a frame.

    python -m benchmarks.readme_pictures RUN [--out docs] [--steps 40] [--size 256] [--frame 20] [--seed 0]
        [--prefix islands_]

RUN is a run folder of `python -m jaxms.train` (e.g. `make train`'s, `runs/LATEST`). Writes into `--out`:
- `learning_curve.png`: the run's `progress.csv` (mean return, win rate and land share of the last 100
  episodes against env steps; `benchmarks.learning.plot_curves`);
- `episode.gif`: one game of the run's agent (sampled actions, `--steps` steps at most) drawn by
  `jaxms.render` at `--size` pixels on the map's side;
- `episode_frame.png`: frame `--frame` of it (the last one if the game ends sooner);
- `pictures.json`: which run, checkpoint, settings and game the pictures show.
Every name is preceded by `--prefix` (default none), so pictures of several runs can sit side by side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax

from benchmarks.common import machine_description
from benchmarks.learning import plot_curves
from jaxms.play import network_actor
from jaxms.render import episode_frame, episode_frames, record_episode, save_episode
from jaxms.run import build_run, load_run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme_pictures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder of python -m jaxms.train")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    parser.add_argument("--steps", type=int, default=40, help="steps of the recorded game at most")
    parser.add_argument("--size", type=int, default=256, help="pixels on the map's side in the GIF")
    parser.add_argument("--frame", type=int, default=20,
                        help="the frame saved as a PNG (-1: the first with the most boats at sea)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix", default="", help="put before every file name written")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if not (args.run / "progress.csv").is_file():
        raise SystemExit(f"error: {args.run}: no progress.csv (give a run folder of python -m jaxms.train)")
    args.out.mkdir(parents=True, exist_ok=True)
    config, run_dir, network, params = load_run(args.run, report=print)
    plot_curves(run_dir / "progress.csv", args.out / f"{args.prefix}learning_curve.png",
                f"{config.run.map}, {config.env.num_bots} tribes, {config.env.obs.mode}-scale "
                f"(width {config.network.width:g}, {config.ppo.num_envs} envs x {config.ppo.n_steps} steps)")
    env = build_run(config).env
    episode = record_episode(env, env.default_params, network_actor(network), jax.random.key(args.seed),
                             args.steps, policy_params=params)
    frames = episode_frames(episode, args.size)
    save_episode(frames, args.out / f"{args.prefix}episode.gif", fps=4)
    frame = min(args.frame, episode.num_steps)
    if args.frame < 0:
        at_sea = [int((episode.boats[t][:, 3] > 0).sum()) for t in range(episode.num_steps + 1)]
        frame = int(max(range(len(at_sea)), key=lambda t: (at_sea[t], -t)))
    episode_frame(episode, frame, size=2 * args.size).save(args.out / f"{args.prefix}episode_frame.png")
    summary = {"run": str(run_dir), "map": config.run.map, "num_bots": config.env.num_bots,
               "obs": config.env.obs.mode, "network_width": config.network.width,
               "total_timesteps": config.ppo.total_timesteps, "seed": args.seed, "steps": episode.num_steps,
               "ended": episode.ended, "won": episode.won,
               "final_land_share": round(float(episode.land_shares[-1][1]), 3), "frame": frame,
               "gif_kb": round((args.out / f"{args.prefix}episode.gif").stat().st_size / 1024, 1),
               "machine": machine_description()}
    (args.out / f"{args.prefix}pictures.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
