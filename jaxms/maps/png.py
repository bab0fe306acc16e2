"""Terrain images in OpenFront's map-generator convention.

The generator reads the blue channel of a PNG: a pixel is water when its alpha is below 20 or its blue is
exactly 106; otherwise it is land with magnitude 0 below blue 140, ceil((blue - 140) / 2) from 140 to 200,
and 30 above. Like the generator, reading crops each side down to a multiple of 4 (so the 4x and 16x
downscales align) and removes islands under 30 tiles and lakes under 200 tiles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

from jaxms.maps.types import GameMap, MapError, check_map_size

WATER_BLUE = 106
MIN_ISLAND_TILES = 30
MIN_LAKE_TILES = 200

_FOUR_NEIGHBOURS = ndimage.generate_binary_structure(2, 1)


def remove_small_bodies(land: np.ndarray, min_island: int, min_lake: int) -> np.ndarray:
    """bool[H, W]: `land` with islands under `min_island` tiles sunk and lakes under `min_lake` filled.

    Only water bodies that do not touch the map edge count as lakes (edge water may continue off-map).
    """
    land = np.asarray(land, dtype=bool).copy()
    if min_island > 1:
        labels, _ = ndimage.label(land, structure=_FOUR_NEIGHBOURS)
        sizes = np.bincount(labels.ravel())
        small = sizes < min_island
        small[0] = False
        land[small[labels]] = False
    if min_lake > 1:
        labels, _ = ndimage.label(~land, structure=_FOUR_NEIGHBOURS)
        sizes = np.bincount(labels.ravel())
        small = sizes < min_lake
        small[0] = False
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        small[edge] = False
        land[small[labels]] = True
    return land


def read_terrain_png(path: str | Path, openfront_cleanup: bool = True) -> GameMap:
    """Read a terrain PNG (OpenFront generator convention) into a map.

    Args:
        openfront_cleanup: crop sides to multiples of 4 and remove small islands and lakes, as the
            generator does. Off, every pixel is kept as it is.
    """
    path = Path(path)
    if not path.is_file():
        raise MapError(f"terrain image {path} does not exist (expected a PNG file in OpenFront's "
                       "map-generator convention)")
    try:
        with Image.open(path) as image:
            rgba = np.asarray(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError) as error:
        raise MapError(f"cannot read {path} as an image: {error}") from error
    if openfront_cleanup:
        height, width = (rgba.shape[0] // 4) * 4, (rgba.shape[1] // 4) * 4
        rgba = rgba[:height, :width]
    check_map_size(rgba.shape[1], rgba.shape[0], what=f"terrain image {path.name}")
    blue = rgba[..., 2].astype(np.int32)
    land = (rgba[..., 3] >= 20) & (blue != WATER_BLUE)
    magnitude = np.where(blue < 140, 0, np.where(blue > 200, 30, (blue - 140 + 1) // 2))
    if openfront_cleanup:
        land = remove_small_bodies(land, MIN_ISLAND_TILES, MIN_LAKE_TILES)
    if not land.any():
        raise MapError(f"terrain image {path} has no land pixels: water is alpha < 20 or blue == "
                       f"{WATER_BLUE}; land is any other pixel")
    return GameMap.from_terrain(name=path.stem, land=land, magnitude=magnitude, source=str(path))


def write_terrain_png(game_map: GameMap, path: str | Path) -> Path:
    """Write `game_map` as a terrain PNG that `read_terrain_png` reads back to the same land and magnitude.

    Land of magnitude m gets blue 140 + 2m (so 0..30 survive the round trip); water gets blue 106.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    magnitude = np.minimum(game_map.magnitude.astype(np.int32), 30)
    blue = np.where(game_map.land, 140 + 2 * magnitude, WATER_BLUE).astype(np.uint8)
    rgb = np.stack([np.zeros_like(blue), np.where(game_map.land, 120, 60).astype(np.uint8), blue], axis=-1)
    Image.fromarray(rgb, mode="RGB").save(path)
    return path
