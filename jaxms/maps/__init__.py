"""Map sources for jaxms: OpenFront map folders, terrain PNGs, built-in procedural maps, crops and
downsampling, all resolved by `load_map(spec)`. NumPy only: reading a map needs no JAX.

    >>> from jaxms.maps import load_map
    >>> game_map = load_map("continents_256")
    >>> game_map.land.shape, game_map.land.dtype
    ((256, 256), dtype('bool'))
"""

from jaxms.maps.openfront import read_openfront_folder, save_openfront_folder
from jaxms.maps.png import read_terrain_png, write_terrain_png
from jaxms.maps.procedural import GENERATORS, generate_map
from jaxms.maps.render import render_map, save_map_png
from jaxms.maps.spec import MAPS_DIR_ENV, builtin_names, find_maps, load_map, load_maps, maps_dirs, pool_specs
from jaxms.maps.transform import crop_map, downsample_map
from jaxms.maps.types import (
    MAX_SIDE,
    MIN_SIDE,
    GameMap,
    MapError,
    Nation,
    Terrain,
    pack_tiles,
    unpack_tiles,
)

__all__ = [
    "GENERATORS",
    "MAPS_DIR_ENV",
    "MAX_SIDE",
    "MIN_SIDE",
    "GameMap",
    "MapError",
    "Nation",
    "Terrain",
    "builtin_names",
    "crop_map",
    "downsample_map",
    "find_maps",
    "generate_map",
    "load_map",
    "load_maps",
    "maps_dirs",
    "pack_tiles",
    "pool_specs",
    "read_openfront_folder",
    "read_terrain_png",
    "render_map",
    "save_map_png",
    "save_openfront_folder",
    "unpack_tiles",
    "write_terrain_png",
]
