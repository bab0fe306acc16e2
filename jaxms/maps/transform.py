"""Windows and downsampling of maps.

`crop_map` cuts a window (the earlier system's `australia_1024x1024` is `australia:915,290,1024,1024`).
`downsample_map` shrinks a map to a target size the way OpenFront makes its `map4x`/`map16x` files: a
block of tiles becomes water if any tile in it is water, and a land block keeps the magnitude of its
bottom-right tile (checked against OpenFront's own files in the tests). Non-integer factors use blocks of
unequal size (boundaries at floor(i * size / target)), so every source tile belongs to exactly one block.
"""

from __future__ import annotations

import numpy as np

from jaxms.maps.types import GameMap, MapError, Nation, check_map_size


def crop_map(game_map: GameMap, x: int, y: int, width: int, height: int) -> GameMap:
    """The window [x, x + width) x [y, y + height) of `game_map`; nations inside it are kept and shifted.

    Shoreline, ocean and water depth are recomputed for the window (it is a map of its own: a land tile
    whose only water neighbour lies outside the window is not shoreline in it).
    """
    label = f"crop {x},{y},{width},{height}"
    fits = 0 <= x and 0 <= y and x + width <= game_map.width and y + height <= game_map.height
    if not fits or width < 1 or height < 1:
        raise MapError(
            f"{label} lies outside map {game_map.name!r}: the window must fit in 0 <= x, x + width <= "
            f"{game_map.width} and 0 <= y, y + height <= {game_map.height} (form: X,Y,WIDTH,HEIGHT)"
        )
    check_map_size(width, height, what=label)
    rows, cols = slice(y, y + height), slice(x, x + width)
    land = game_map.land[rows, cols]
    if not land.any():
        raise MapError(f"{label} of map {game_map.name!r} contains no land: choose a window with land tiles")
    nations = tuple(Nation(n.name, n.x - x, n.y - y) for n in game_map.nations
                    if x <= n.x < x + width and y <= n.y < y + height)
    return GameMap.from_terrain(
        name=f"{game_map.name}:{x},{y},{width},{height}",
        land=land,
        magnitude=game_map.magnitude[rows, cols],
        nations=nations,
        source=f"{game_map.source}:{x},{y},{width},{height}",
    )


def _block_starts(size: int, target: int) -> np.ndarray:
    """int[target]: first source index of each of `target` blocks covering range(size)."""
    return (np.arange(target, dtype=np.int64) * size) // target


def downsample_map(game_map: GameMap, width: int, height: int, allow_small: bool = False) -> GameMap:
    """`game_map` shrunk to `width` x `height`: water wins a block, land keeps its last tile's magnitude.

    Args:
        allow_small: skip the minimum-side check (used for OpenFront's 16x files of small maps).
    """
    label = f"downsample to {width}x{height}"
    if width > game_map.width or height > game_map.height:
        raise MapError(f"cannot {label}: map {game_map.name!r} is only {game_map.width}x{game_map.height} "
                       "and only downsampling is supported (target sides must not exceed the map's)")
    if not allow_small:
        check_map_size(width, height, what=label)
    row_starts = _block_starts(game_map.height, height)
    col_starts = _block_starts(game_map.width, width)
    # A block is land only if all its tiles are land: min-reduce over each block along both axes.
    land = np.minimum.reduceat(np.minimum.reduceat(game_map.land, row_starts, axis=0), col_starts, axis=1)
    row_last = np.append(row_starts[1:], game_map.height) - 1
    col_last = np.append(col_starts[1:], game_map.width) - 1
    magnitude = game_map.magnitude[np.ix_(row_last, col_last)]
    nations = tuple(Nation(n.name, n.x * width // game_map.width, n.y * height // game_map.height)
                    for n in game_map.nations)
    if not land.any():
        raise MapError(f"{label} leaves map {game_map.name!r} with no land (water wins each block): "
                       "choose a larger target size")
    return GameMap.from_terrain(
        name=f"{game_map.name}~{width}x{height}",
        land=land,
        magnitude=magnitude,
        nations=nations,
        source=f"{game_map.source}~{width}x{height}",
    )
