"""Map layer speed: built-in generation per size, and loading the real OpenFront maps when present.

Targets (issue 2): a 1024x1024 built-in map in under 2 s, 4096x4096 in under 30 s, on our 2-core CPU.

    python -m benchmarks.bench_maps [--sizes 256 1024 4096] [--repeats 3] [--out-dir benchmarks/results]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from benchmarks.common import write_results
from jaxms.maps import GENERATORS, generate_map, load_map

SHARED_MAPS = Path(__file__).resolve().parents[2] / "shared" / "maps" / "openfront"
TARGET_SECONDS = {1024: 2.0, 4096: 30.0}


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args()

    rows = []
    cases = [(kind, size) for kind in GENERATORS for size in args.sizes]
    for kind, size in tqdm(cases, desc="generate", disable=None):
        seconds = best_time(lambda kind=kind, size=size: generate_map(kind, size, seed=1), args.repeats)
        target = TARGET_SECONDS.get(size)
        rows.append({"what": f"generate {kind}_{size}", "tiles": size * size, "seconds": round(seconds, 3),
                     "target_s": target or "", "ok": "" if target is None else ("yes" if seconds < target
                                                                               else "NO")})
    if SHARED_MAPS.is_dir():
        for spec in ("australia", "australia@4x", "australia:915,290,1024,1024", "pangaea@16x"):
            seconds = best_time(lambda spec=spec: load_map(spec, maps_dir=SHARED_MAPS), args.repeats)
            game_map = load_map(spec, maps_dir=SHARED_MAPS)
            rows.append({"what": f"load {spec}", "tiles": game_map.width * game_map.height,
                         "seconds": round(seconds, 3), "target_s": "", "ok": ""})
    write_results("bench_maps", rows, ["what", "tiles", "seconds", "target_s", "ok"],
                  "Map generation and loading (best of repeats)", args.out_dir)


if __name__ == "__main__":
    main()
