"""The `GameMap` value: static terrain of one map, as NumPy arrays.

A map is immutable data: the simulation receives its arrays as arguments (never as closed-over constants),
so one compiled tick function serves every map of the same shape.

Tile encoding follows OpenFront's terrain byte (`../shared/reference/openfront-rules.md` §1): each tile is
land or water, has a magnitude 0..31 (elevation for land, distance from land for water), a shoreline flag
(land touching water or water touching land, 4-neighbours, the map edge does not count) and, for water, an
ocean flag (the largest 4-connected water body; every other water body is a lake).
"""

from __future__ import annotations

import dataclasses
import enum
from functools import cached_property

import numpy as np
from scipy import ndimage

MIN_SIDE = 16
MAX_SIDE = 16384
MAX_MAGNITUDE = 31
# Land magnitude thresholds for the terrain classes (engine: below 10 plains, below 20 highland).
HIGHLAND_FROM = 10
MOUNTAIN_FROM = 20

_FOUR_NEIGHBOURS = ndimage.generate_binary_structure(2, 1)


class MapError(ValueError):
    """Bad map input: the message says what was wrong and which forms are accepted."""


class Terrain(enum.IntEnum):
    """Terrain class per tile, as stored in `GameMap.terrain` (uint8)."""

    PLAINS = 0
    HIGHLAND = 1
    MOUNTAIN = 2
    WATER = 3


@dataclasses.dataclass(frozen=True)
class Nation:
    """A nation's spawn point, in this map's tile coordinates (x = column, y = row)."""

    name: str
    x: int
    y: int


def check_map_size(width: int, height: int, what: str = "map") -> None:
    """Raise `MapError` unless both sides lie in [MIN_SIDE, MAX_SIDE]."""
    for side_name, side in (("width", width), ("height", height)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise MapError(
                f"{what} {side_name} {side} is out of range: map sides must be between {MIN_SIDE} and "
                f"{MAX_SIDE} tiles (got {width}x{height})"
            )


@dataclasses.dataclass(frozen=True, eq=False)
class GameMap:
    """Static terrain of one map. Arrays are read-only; shapes are (height, width), row-major like OpenFront.

    Fields:
        name: display name (for OpenFront maps, the manifest's name; otherwise the spec it came from).
        land: bool[H, W], True for land tiles.
        magnitude: uint8[H, W], 0..31. Land: elevation (terrain class from it); water: distance to land.
        shoreline: bool[H, W], land with a water 4-neighbour or water with a land 4-neighbour.
        ocean: bool[H, W], True on tiles of the ocean (largest 4-connected water body); False on land.
        nations: nation spawn points in this map's coordinates (empty when the map has none).
        source: the spec or path the map was loaded from, for messages and run configs.
    """

    name: str
    land: np.ndarray
    magnitude: np.ndarray
    shoreline: np.ndarray
    ocean: np.ndarray
    nations: tuple[Nation, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        shape = np.shape(self.land)
        if len(shape) != 2 or min(shape) < 1:
            raise MapError(f"map {self.name!r}: land mask must be a non-empty 2-D array, got shape {shape}")
        for field_name, dtype in (("land", np.bool_), ("magnitude", np.uint8), ("shoreline", np.bool_),
                                  ("ocean", np.bool_)):
            array = np.array(getattr(self, field_name), dtype=dtype, copy=True)
            if array.shape != shape:
                raise MapError(f"map {self.name!r}: {field_name} has shape {array.shape}, land has {shape}")
            array.flags.writeable = False
            object.__setattr__(self, field_name, array)
        object.__setattr__(self, "nations", tuple(self.nations))
        if not self.land.any():
            raise MapError(f"map {self.name!r} ({self.width}x{self.height}) has no land tiles: "
                           "a territory game needs at least one land tile")

    @classmethod
    def from_terrain(cls, name: str, land: np.ndarray, magnitude: np.ndarray,
                     nations: tuple[Nation, ...] | list[Nation] = (), source: str = "") -> GameMap:
        """Build a map from a land mask and land magnitudes, deriving shoreline, ocean and water depth.

        Args:
            land: bool[H, W].
            magnitude: integer[H, W]; only land tiles are read (clipped to 0..30); water magnitudes are
                recomputed as OpenFront's generator does: floor(taxicab distance to land / 2), at most 31.
        """
        land = np.asarray(land, dtype=bool)
        if not land.any():
            raise MapError(f"map {name!r} ({land.shape[1]}x{land.shape[0]}) has no land tiles: "
                           "a territory game needs at least one land tile")
        land_magnitude = np.clip(np.asarray(magnitude), 0, 30).astype(np.uint8)
        depth = ndimage.distance_transform_cdt(~land, metric="taxicab")
        water_magnitude = np.minimum(depth // 2, MAX_MAGNITUDE).astype(np.uint8)
        return cls(
            name=name,
            land=land,
            magnitude=np.where(land, land_magnitude, water_magnitude),
            shoreline=compute_shoreline(land),
            ocean=compute_ocean(land),
            nations=tuple(nations),
            source=source,
        )

    @property
    def height(self) -> int:
        return int(self.land.shape[0])

    @property
    def width(self) -> int:
        return int(self.land.shape[1])

    @cached_property
    def num_land_tiles(self) -> int:
        return int(np.count_nonzero(self.land))

    @cached_property
    def terrain(self) -> np.ndarray:
        """uint8[H, W] of `Terrain` values: plains / highland / mountain by land magnitude, or water."""
        terrain = np.full(self.land.shape, Terrain.PLAINS, dtype=np.uint8)
        terrain[self.magnitude >= HIGHLAND_FROM] = Terrain.HIGHLAND
        terrain[self.magnitude >= MOUNTAIN_FROM] = Terrain.MOUNTAIN
        terrain[~self.land] = Terrain.WATER
        terrain.flags.writeable = False
        return terrain

    @property
    def lake(self) -> np.ndarray:
        """bool[H, W], water tiles that are not ocean."""
        return ~self.land & ~self.ocean

    def terrain_counts(self) -> dict[str, int]:
        """Tiles per terrain class, plus ocean and lake tiles."""
        counts = np.bincount(self.terrain.ravel(), minlength=len(Terrain))
        result = {t.name.lower(): int(counts[t]) for t in Terrain if t != Terrain.WATER}
        ocean = int(np.count_nonzero(self.ocean))
        result["ocean"] = ocean
        result["lake"] = int(counts[Terrain.WATER]) - ocean
        return result

    def summary(self) -> str:
        """One paragraph describing the map, for CLIs and logs."""
        counts = self.terrain_counts()
        land = self.num_land_tiles
        terrain = ", ".join(f"{k} {v / land:.0%}" for k, v in counts.items() if k in ("plains", "highland",
                                                                                      "mountain"))
        water = self.width * self.height - land
        lines = [
            f"{self.name}: {self.width}x{self.height} tiles, {land:,} land ({land / self.land.size:.1%})",
            f"  land terrain: {terrain}",
            f"  water: {water:,} tiles (ocean {counts['ocean']:,}, lakes {counts['lake']:,})",
            f"  nations: {len(self.nations)}"
            + (": " + ", ".join(n.name for n in self.nations[:8]) + (", ..." if len(self.nations) > 8
                                                                     else "") if self.nations else ""),
        ]
        return "\n".join(lines)


def compute_shoreline(land: np.ndarray) -> np.ndarray:
    """bool[H, W]: tiles with a 4-neighbour of the other kind (land/water). The map edge does not count."""
    land = np.asarray(land, dtype=bool)
    differs = np.zeros_like(land)
    differs[1:, :] |= land[1:, :] != land[:-1, :]
    differs[:-1, :] |= land[:-1, :] != land[1:, :]
    differs[:, 1:] |= land[:, 1:] != land[:, :-1]
    differs[:, :-1] |= land[:, :-1] != land[:, 1:]
    return differs


def compute_ocean(land: np.ndarray) -> np.ndarray:
    """bool[H, W]: the largest 4-connected water body (the lowest label wins a tie), False elsewhere."""
    labels, count = ndimage.label(~np.asarray(land, dtype=bool), structure=_FOUR_NEIGHBOURS)
    if count == 0:
        return np.zeros(labels.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def pack_tiles(game_map: GameMap) -> np.ndarray:
    """uint8[H, W] in OpenFront's byte layout: bit 7 land, 6 shoreline, 5 ocean, bits 0-4 magnitude."""
    packed = (game_map.magnitude & 0x1F).astype(np.uint8)
    packed |= game_map.land.astype(np.uint8) << 7
    packed |= game_map.shoreline.astype(np.uint8) << 6
    packed |= (game_map.ocean & ~game_map.land).astype(np.uint8) << 5
    return packed


def unpack_tiles(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `pack_tiles`: (land, magnitude, shoreline, ocean) from uint8[H, W]."""
    packed = np.asarray(packed, dtype=np.uint8)
    land = (packed & 0x80) != 0
    shoreline = (packed & 0x40) != 0
    ocean = (packed & 0x20) != 0
    magnitude = packed & 0x1F
    return land, magnitude, shoreline, ocean
