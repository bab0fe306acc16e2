"""Rendering maps to images (for people: the CLI, notebooks, README figures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from jaxms.maps.types import GameMap, Terrain

# Colours in the spirit of OpenFront's terrain palette; shading by magnitude within each class.
_OCEAN_SHALLOW = np.array([70, 110, 170], dtype=np.float32)
_OCEAN_DEEP = np.array([25, 45, 95], dtype=np.float32)
_LAKE = np.array([95, 150, 205], dtype=np.float32)
_TERRAIN_LOW = {Terrain.PLAINS: (150, 200, 110), Terrain.HIGHLAND: (200, 185, 125),
                Terrain.MOUNTAIN: (150, 140, 130)}
_TERRAIN_HIGH = {Terrain.PLAINS: (110, 170, 80), Terrain.HIGHLAND: (165, 140, 95),
                 Terrain.MOUNTAIN: (235, 235, 235)}
_SHORE = np.array([215, 205, 150], dtype=np.float32)


def terrain_rgb(game_map: GameMap) -> np.ndarray:
    """uint8[H, W, 3]: the map's terrain coloured at full resolution (one pixel per tile)."""
    magnitude = game_map.magnitude.astype(np.float32)
    rgb = np.zeros((*game_map.land.shape, 3), dtype=np.float32)
    depth = np.clip(magnitude / 6.0, 0.0, 1.0)[..., None]
    rgb[:] = _OCEAN_SHALLOW * (1.0 - depth) + _OCEAN_DEEP * depth
    rgb[game_map.lake] = _LAKE
    terrain = game_map.terrain
    for terrain_class, lower in ((Terrain.PLAINS, 0.0), (Terrain.HIGHLAND, 10.0), (Terrain.MOUNTAIN, 20.0)):
        mask = terrain == terrain_class
        t = np.clip((magnitude[mask] - lower) / 10.0, 0.0, 1.0)[:, None]
        low = np.array(_TERRAIN_LOW[terrain_class], dtype=np.float32)
        high = np.array(_TERRAIN_HIGH[terrain_class], dtype=np.float32)
        rgb[mask] = low * (1.0 - t) + high * t
    beach = game_map.shoreline & game_map.land & (terrain == Terrain.PLAINS)
    rgb[beach] = 0.5 * rgb[beach] + 0.5 * _SHORE
    return rgb.astype(np.uint8)


def render_map(game_map: GameMap, max_size: int | None = 2048, show_nations: bool = True) -> Image.Image:
    """An RGB image of the map, shrunk (box filter) so its longer side is at most `max_size` pixels.

    Nations are drawn as red dots with white rims when `show_nations` is set.
    """
    image = Image.fromarray(terrain_rgb(game_map), mode="RGB")
    scale = 1.0
    if max_size is not None and max(image.size) > max_size:
        scale = max_size / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BOX)
    if show_nations and game_map.nations:
        draw = ImageDraw.Draw(image)
        radius = max(2, round(min(image.size) / 150))
        for nation in game_map.nations:
            cx, cy = (nation.x + 0.5) * scale, (nation.y + 0.5) * scale
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(200, 30, 30),
                         outline=(255, 255, 255))
    return image


def save_map_png(game_map: GameMap, path: str | Path, max_size: int | None = 2048,
                 show_nations: bool = True) -> Path:
    """Render `game_map` (see `render_map`) and save it as a PNG at `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    render_map(game_map, max_size=max_size, show_nations=show_nations).save(path)
    return path
