"""Episode rendering speed: record a game, draw its frames, write them as GIF (and MP4).

One game on continents_<size> (default 1024x1024) against `--num-bots` tribes, `--steps` env steps of
uniformly random legal actions (the agent attacks often, so there are live fronts to draw), recorded with
`jaxms.render.record_episode` (one jitted scan, fetched once), then drawn on the host
(`episode_frames`: caption, the map at `--size` pixels with the windows, the three views) and encoded as
an animated GIF (Pillow) and, where imageio-ffmpeg is installed, an MP4. Reported: seconds for each stage
(recording split into compile and run), per frame, and the file sizes. Issue 16's aim: a 1024x1024
episode of 100 steps renders in under 30 s on the 2-core CPU (drawing and encoding; the recording is the
game itself, reported beside it).

    python -m benchmarks.bench_render [--size 1024] [--steps 100] [--num-bots 10] [--picture 512]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import jax

from benchmarks.common import write_results
from jaxms import load_map
from jaxms.env import make_env
from jaxms.play import random_policy
from jaxms.render import episode_frames, record_episode, save_episode

AIM_S = 30.0  # drawing + GIF of a 1024x1024 episode of 100 steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024, help="map side (continents_SIZE)")
    parser.add_argument("--steps", type=int, default=100, help="env steps recorded")
    parser.add_argument("--num-bots", type=int, default=10)
    parser.add_argument("--picture", type=int, default=512, help="pixels on the map's side in a frame")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=None, help="default: benchmarks/results")
    parser.add_argument("--name", default="bench_render", help="results file name (without extension)")
    parser.add_argument("--keep", type=Path, default=None, help="also keep the GIF here")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    load = os.getloadavg()[0]
    env = make_env(load_map(f"continents_{args.size}"), num_bots=args.num_bots, reset_pool_size=2,
                   max_steps=10 * args.steps)
    params = env.default_params
    key = jax.random.key(args.seed)
    start = time.perf_counter()
    record_episode(env, params, random_policy, key, args.steps)  # compile and a first run
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    episode = record_episode(env, params, random_policy, key, args.steps)
    record_s = time.perf_counter() - start
    start = time.perf_counter()
    frames = episode_frames(episode, args.picture)
    draw_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        gif = Path(folder) / "episode.gif"
        start = time.perf_counter()
        save_episode(frames, gif)
        gif_s = time.perf_counter() - start
        gif_mb = gif.stat().st_size / 2**20
        if args.keep is not None:
            args.keep.write_bytes(gif.read_bytes())
        mp4_s = mp4_mb = None
        if importlib.util.find_spec("imageio_ffmpeg") is not None:
            mp4 = Path(folder) / "episode.mp4"
            start = time.perf_counter()
            save_episode(frames, mp4)
            mp4_s, mp4_mb = time.perf_counter() - start, mp4.stat().st_size / 2**20
    count = len(frames)
    row = {"map": f"{args.size}x{args.size}", "tribes": args.num_bots, "steps": episode.num_steps,
           "frames": count, "frame_px": "x".join(map(str, frames[0].size)),
           "record_compile_and_first_s": round(first_s, 1), "record_s": round(record_s, 2),
           "draw_s": round(draw_s, 2), "draw_ms_per_frame": round(1e3 * draw_s / count, 1),
           "gif_s": round(gif_s, 2), "gif_mb": round(gif_mb, 2),
           "render_s": round(draw_s + gif_s, 2), "aim_s": AIM_S, "met": draw_s + gif_s < AIM_S,
           "mp4_s": None if mp4_s is None else round(mp4_s, 2),
           "mp4_mb": None if mp4_mb is None else round(mp4_mb, 2),
           "agent_land_share": round(float(episode.land_shares[-1][1]), 3),
           "load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1)}
    columns = ["map", "tribes", "steps", "frames", "frame_px", "record_compile_and_first_s", "record_s",
               "draw_s", "draw_ms_per_frame", "gif_s", "render_s", "met", "gif_mb", "mp4_s", "mp4_mb",
               "load_before", "load_after"]
    write_results(args.name, [row], columns, f"Episode rendering: record, draw, encode (aim: draw + GIF of "
                  f"a 1024x1024 episode of 100 steps < {AIM_S:.0f} s)", args.out_dir)
    return row


if __name__ == "__main__":
    main()
