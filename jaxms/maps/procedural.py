"""Built-in procedural maps, deterministic from a seed, so a fresh machine can train with no data files.

Generators (spec form `KIND_SIZE[_sSEED]`, SIZE = N or WxH):
- `plains`: all land, plains only. The simplest arena: no water, no terrain costs.
- `continents`: a few large land masses separated by ocean, with lakes and plains / highland / mountain.
- `islands`: an archipelago of many small and medium islands.

Elevation is fractal value noise (octaves of bilinearly upsampled random grids); land is the top quantile
of elevation, so the land share is fixed per generator whatever the seed. Tiny islands and lakes are removed
as OpenFront's generator does, with thresholds scaled to the map's area.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxms.maps.png import remove_small_bodies
from jaxms.maps.types import GameMap, MapError, check_map_size


@dataclasses.dataclass(frozen=True)
class Generator:
    name: str
    description: str
    land_share: float  # fraction of tiles that are land
    terrain_shares: tuple[float, float]  # fraction of land that is plains, and plains + highland
    base_cells: float  # noise cells across the longer side at the coarsest octave (bigger: smaller bodies)
    edge_falloff: float  # how strongly elevation drops towards the map edge (keeps continents inside)
    lake_share: float  # fraction of land tiles turned into lakes


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        Generator("plains", "all land, plains only (no water, uniform terrain)", 1.0, (1.0, 1.0), 0.0, 0.0,
                  0.0),
        Generator("continents", "several land masses in an ocean, lakes, plains/highland/mountain",
                  0.45, (0.55, 0.85), 3.0, 3.0, 0.02),
        Generator("islands", "an archipelago of many islands in an ocean, varied terrain", 0.30,
                  (0.6, 0.9), 12.0, 1.5, 0.0),
    )
}


def _upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32[height, width]: `grid` (gh, gw) stretched over the map with smoothstep interpolation."""

    def axis_weights(cells: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        position = (np.arange(size, dtype=np.float32) + 0.5) * (cells - 1) / size
        index = np.minimum(position.astype(np.int64), cells - 2)
        t = position - index
        return index, (t * t * (3.0 - 2.0 * t)).astype(np.float32)

    rows, row_t = axis_weights(grid.shape[0], height)
    cols, col_t = axis_weights(grid.shape[1], width)
    along_rows = grid[rows] * (1.0 - row_t[:, None]) + grid[rows + 1] * row_t[:, None]  # (height, gw)
    return along_rows[:, cols] * (1.0 - col_t[None, :]) + along_rows[:, cols + 1] * col_t[None, :]


def fractal_noise(rng: np.random.Generator, height: int, width: int, base_cells: float,
                  octaves: int, persistence: float = 0.5) -> np.ndarray:
    """float32[height, width] fractal value noise, roughly in [0, 1); feature size halves per octave."""
    total = np.zeros((height, width), dtype=np.float32)
    amplitude, norm = 1.0, 0.0
    longest = max(height, width)
    for octave in range(octaves):
        cells = base_cells * 2**octave
        if cells > longest / 2:  # finer than two tiles per cell adds only aliasing
            break
        grid_h = max(2, int(np.ceil(cells * height / longest)) + 2)
        grid_w = max(2, int(np.ceil(cells * width / longest)) + 2)
        grid = rng.random((grid_h, grid_w), dtype=np.float32)
        total += amplitude * _upsample(grid, height, width)
        norm += amplitude
        amplitude *= persistence
    return total / max(norm, 1e-6)


def _edge_distance(height: int, width: int) -> np.ndarray:
    """float32[height, width]: distance to the nearest map edge, 0 at the edge and 1 at the centre."""
    ys = 1.0 - np.abs(np.linspace(-1.0, 1.0, height, dtype=np.float32))
    xs = 1.0 - np.abs(np.linspace(-1.0, 1.0, width, dtype=np.float32))
    return np.minimum(ys[:, None], xs[None, :])


def generate_map(kind: str, width: int, height: int | None = None, seed: int = 0) -> GameMap:
    """A built-in map: `kind` in GENERATORS, `width` x `height` tiles (square when height is None).

    The same (kind, size, seed) always gives the same map, on any machine.
    """
    height = width if height is None else height
    if kind not in GENERATORS:
        raise MapError(f"unknown map generator {kind!r}: built-in generators are {', '.join(GENERATORS)}")
    check_map_size(width, height, what=f"{kind} map")
    if seed < 0:
        raise MapError(f"map seed must be a non-negative integer, got {seed}")
    generator = GENERATORS[kind]
    name = f"{kind}_{width}" if width == height else f"{kind}_{width}x{height}"
    name += f"_s{seed}" if seed else ""
    if kind == "plains":
        land = np.ones((height, width), dtype=bool)
        return GameMap.from_terrain(name, land, np.zeros_like(land, dtype=np.uint8), source=name)

    rng = np.random.default_rng([seed, width, height, list(GENERATORS).index(kind)])
    area_scale = width * height / 1_000_000  # thresholds below are OpenFront's, for a 1000x1000 map
    elevation = fractal_noise(rng, height, width, generator.base_cells, octaves=9, persistence=0.55)
    elevation -= generator.edge_falloff * np.maximum(0.0, 0.2 - _edge_distance(height, width))
    sea_level = np.quantile(elevation[:: max(1, height // 256), :: max(1, width // 256)],
                            1.0 - generator.land_share)
    land = elevation > sea_level

    if generator.lake_share > 0:
        # Lakes: small basins of a second, finer noise, only well inside land.
        basins = fractal_noise(rng, height, width, generator.base_cells * 8, octaves=4)
        inland = elevation > sea_level + 0.03
        lake_level = np.quantile(basins[inland], 1.0 - generator.lake_share) if inland.any() else np.inf
        land &= ~(inland & (basins > lake_level))

    land = remove_small_bodies(land, min_island=int(np.clip(30 * area_scale, 2, 30)),
                               min_lake=int(np.clip(200 * area_scale, 4, 200)))
    if not land.any():
        raise MapError(f"{name}: the generator produced no land at this size; try a larger map")

    # Terrain: height above sea level shaped by a ridge noise (mountains form chains, not rings). The
    # score's quantiles over land map to magnitudes, so each class gets its designed share of the land.
    ridges = 1.0 - np.abs(2.0 * fractal_noise(rng, height, width, generator.base_cells * 2, octaves=6) - 1.0)
    score = (elevation - sea_level) * (0.3 + ridges**2)
    plains_share, hills_share = generator.terrain_shares
    land_scores = score[land]
    sample = land_scores[:: max(1, land_scores.size // 65536)]
    knots = np.quantile(sample, [0.0, plains_share, hills_share, 1.0])
    magnitude = np.interp(score, knots + np.arange(4) * 1e-9, [0.0, 9.999, 19.999, 30.999])
    magnitude = np.clip(np.floor(magnitude), 0, 30).astype(np.uint8)
    return GameMap.from_terrain(name, land, magnitude, source=name)
