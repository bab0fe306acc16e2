"""Boat travel times: the coarse water distance (game/boats.py) against an exact tile BFS.

For each map, `--landings` random landing tiles (shore tiles on a water body), one exact BFS from each
over that body's water tiles (4-connected moves, the landing tile as the start; the distance of a shore
tile is 1 + its nearest water neighbour's), and `--launches` random launch shore tiles of the same body per
landing: the relative error |estimate - exact| / exact of the estimate the game uses for a boat's travel.
Prints a table (mean, 90th percentile and max of the relative error, the share within 10%) and writes JSON.

    python -m benchmarks.bench_boats [--maps islands_256 islands_512 continents_512 australia@4x]
        [--maps-dir ../shared/maps/openfront] [--landings 12] [--launches 40] [--min-distance 0]
"""

from __future__ import annotations

import argparse
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import write_results
from jaxms import load_map
from jaxms.game import boats
from jaxms.game.state import block_size, map_arrays


def exact_distances(land: np.ndarray, water_body: np.ndarray, dst: int) -> np.ndarray:
    """int64[H * W]: moves from landing tile `dst` through water of its body (-1 where unreached); shore
    tiles of the body get 1 + their nearest reached water neighbour."""
    height, width = land.shape
    body = water_body.ravel()[dst]
    water = (~land.ravel()) & (water_body.ravel() == body)
    distance = np.full(height * width, -1, dtype=np.int64)
    distance[dst] = 0
    queue = deque([dst])
    while queue:
        tile = queue.popleft()
        y, x = divmod(tile, width)
        step = distance[tile] + 1
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < height and 0 <= nx < width:
                n = ny * width + nx
                if water[n] and distance[n] < 0:
                    distance[n] = step
                    queue.append(n)
    # Shore land tiles: one more move than their nearest reached water neighbour.
    far = np.iinfo(np.int64).max
    grid = np.where(distance.reshape(height, width) >= 0, distance.reshape(height, width), far)
    padded = np.pad(np.where(land, far, grid), 1, constant_values=far)
    nearest = np.minimum.reduce([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
    shore = land & (nearest < far)
    out = distance.reshape(height, width).copy()
    out[shore] = nearest[shore] + 1
    out[dst // width, dst % width] = 0
    return out.ravel()


def measure(spec: str, landings: int, launches: int, min_distance: int, seed: int = 0,
            maps_dir: str | None = None) -> dict:
    """Relative errors (fractions) of the estimated water distance against the exact one on map `spec`."""
    game_map = load_map(spec, maps_dir=maps_dir)
    arrays = map_arrays(game_map)
    land = np.asarray(arrays.land)
    body = np.asarray(arrays.water_body)
    shore = np.asarray(arrays.shore) & (body > 0)
    rng = np.random.default_rng(seed)
    estimate_fn = jax.jit(lambda a, d: boats.water_distances(a, d)[0])
    shore_tiles = np.flatnonzero(shore)
    errors, exact_all = [], []
    for dst in rng.choice(shore_tiles, size=min(landings, len(shore_tiles)), replace=False):
        exact = exact_distances(land, body, int(dst))
        same_body = body.ravel()[shore_tiles] == body.ravel()[dst]
        same = shore_tiles[same_body & (exact[shore_tiles] > min_distance)]
        if len(same) == 0:
            continue
        estimate = np.asarray(estimate_fn(arrays, jnp.int32(dst))).ravel()
        for src in rng.choice(same, size=min(launches, len(same)), replace=False):
            errors.append(abs(int(estimate[src]) - int(exact[src])) / exact[src])
            exact_all.append(int(exact[src]))
    errors = np.asarray(errors)
    return {"map": spec, "size": f"{game_map.width}x{game_map.height}",
            "block": block_size((game_map.height, game_map.width)), "pairs": len(errors),
            "mean_exact_distance": float(np.mean(exact_all)) if exact_all else 0.0,
            "mean_error": float(errors.mean()) if len(errors) else 0.0,
            "p90_error": float(np.percentile(errors, 90)) if len(errors) else 0.0,
            "max_error": float(errors.max()) if len(errors) else 0.0,
            "within_10pct": float((errors <= 0.10).mean()) if len(errors) else 0.0}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_boats", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", nargs="+", default=["islands_256", "islands_512", "continents_512",
                                                      "australia@4x"])
    parser.add_argument("--maps-dir", default="../shared/maps/openfront")
    parser.add_argument("--landings", type=int, default=12)
    parser.add_argument("--launches", type=int, default=40)
    parser.add_argument("--min-distance", type=int, default=0, help="only pairs farther apart than this")
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args(argv)
    rows = []
    for spec in args.maps:
        print(f"measuring {spec} ...", flush=True)
        rows.append(measure(spec, args.landings, args.launches, args.min_distance, maps_dir=args.maps_dir))
    for row in rows:
        for name in ("mean_error", "p90_error", "max_error", "within_10pct"):
            row[name] = round(100 * row[name], 1)
        row["mean_exact_distance"] = round(row["mean_exact_distance"], 1)
    columns = ["map", "size", "block", "pairs", "mean_exact_distance", "mean_error", "p90_error", "max_error",
               "within_10pct"]
    write_results("bench_boats", rows, columns,
                  "Boat travel: estimated vs exact water distance (errors in %)", args.out_dir)
    return rows


if __name__ == "__main__":
    main()
