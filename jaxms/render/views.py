"""Pictures of what the agent sees: the views of an observation side by side, as one PNG.

    from jaxms.render import save_views, render_state
    save_views(obs, observer.config, "views.png", map_shape=(1024, 1024))   # an observation (one env)
    render_state(observer, state.game, env.arrays, "views.png")              # or a game state

Each view (global, local, tactical; or the single map) is drawn from its newest frame: water blue, unowned
land sand to grey by terrain, the agent green, enemies red, the agent's border yellow, structures as white
(own) or black (enemy) cells, off-map padding dark. With `map_shape`, the global view also outlines where the
local (white) and tactical (yellow) windows are, read from the window-position features. `troops=True` adds
a second row with the troop channels (agent blue, enemies red; brightness = scaled density).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from jaxms.env.contract import FEATURE_NAMES, NUM_ACTIONS, NUM_FEATURES, ObsConfig

_BACKGROUND = np.array([35, 35, 40], np.float32)
_WATER = np.array([45, 95, 170], np.float32)
_LAND_LOW = np.array([205, 190, 140], np.float32)
_LAND_HIGH = np.array([150, 145, 135], np.float32)
_OWN = np.array([40, 190, 110], np.float32)
_ENEMY = np.array([215, 65, 55], np.float32)
_BORDER = np.array([255, 225, 40], np.float32)
_TITLE_HEIGHT = 14


def _channel(view: np.ndarray, config: ObsConfig, name: str) -> np.ndarray:
    """float32[S, S] in 0..1 of channel `name` of a view, its newest frame for stacked channels."""
    names = config.channel_names
    key = f"{name}@t" if f"{name}@t" in names else name
    return view[..., names.index(key)].astype(np.float32) / 255.0


def view_rgb(view: np.ndarray, config: ObsConfig) -> np.ndarray:
    """uint8[S, S, 3]: one view (uint8[S, S, C]) coloured as described in the module docstring."""
    get = lambda name: _channel(view, config, name)[..., None]  # noqa: E731
    terrain = get("terrain")
    land = _LAND_LOW * (1.0 - terrain) + _LAND_HIGH * terrain
    own, enemy, unowned, water = get("own"), get("enemy"), get("unowned"), get("water")
    covered = np.clip(own + enemy + unowned + water, 0.0, 1.0)
    rgb = own * _OWN + enemy * _ENEMY + unowned * land + water * _WATER + (1.0 - covered) * _BACKGROUND
    border = np.clip(4.0 * get("border"), 0.0, 1.0)  # a thin line covers little of a pooled cell
    rgb = rgb * (1.0 - border) + _BORDER * border
    rgb = np.where(get("own_structures") > 0, 255.0, rgb)
    rgb = np.where(get("enemy_structures") > 0, 0.0, rgb)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def troops_rgb(view: np.ndarray, config: ObsConfig) -> np.ndarray:
    """uint8[S, S, 3]: the troop channels of a view (agent in blue, enemies in red)."""
    own, enemy = _channel(view, config, "own_troops"), _channel(view, config, "enemy_troops")
    rgb = np.stack([enemy, 0.25 * (own + enemy), own], axis=-1) * 255.0
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _window_boxes(features: np.ndarray, config: ObsConfig, map_shape: tuple[int, int]
                  ) -> list[tuple[str, float, float, float, float]]:
    """(name, y0, x0, y1, x1) in global-view cells of the local and tactical windows (newest frame)."""
    newest = features[-NUM_FEATURES:]
    height, width = map_shape
    scale = max(1.0, max(height, width) / config.global_size)
    offset_y = int((config.global_size - height / scale) // 2)
    offset_x = int((config.global_size - width / scale) // 2)
    boxes = []
    for name, size in (("local", config.local_view_size), ("tactical", config.tactical_size)):
        cy = newest[FEATURE_NAMES.index(f"{name}_y")] * height
        cx = newest[FEATURE_NAMES.index(f"{name}_x")] * width
        boxes.append((name, (cy - size / 2) / scale + offset_y, (cx - size / 2) / scale + offset_x,
                      (cy + size / 2) / scale + offset_y, (cx + size / 2) / scale + offset_x))
    return boxes


def render_observation(obs: Mapping[str, np.ndarray], config: ObsConfig,
                       map_shape: tuple[int, int] | None = None, panel_size: int = 256, troops: bool = False,
                       index: int | None = None) -> Image.Image:
    """An RGB image of the views of one observation, side by side, each scaled to `panel_size` pixels.

    Args:
        obs: an observation dict (numpy or jax arrays); with a leading env axis, pass `index`.
        config: the observer's `ObsConfig` (channel layout, window sizes).
        map_shape: (height, width) of the map, to outline the windows on the global view.
        troops: add a second row with the troop channels.
    """
    obs = {name: np.asarray(value) for name, value in obs.items()}
    if index is not None:
        obs = {name: value[index] for name, value in obs.items()}
    names = list(config.view_sizes)
    rows = [[view_rgb(obs[n], config) for n in names]]
    if troops:
        rows.append([troops_rgb(obs[n], config) for n in names])
    image = Image.new("RGB", (panel_size * len(names), (panel_size + _TITLE_HEIGHT) * len(rows)), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    for r, row in enumerate(rows):
        top = r * (panel_size + _TITLE_HEIGHT)
        for c, (name, rgb) in enumerate(zip(names, row, strict=True)):
            panel = Image.fromarray(rgb, mode="RGB").resize((panel_size, panel_size),
                                                            Image.Resampling.NEAREST)
            image.paste(panel, (c * panel_size, top + _TITLE_HEIGHT))
            label = f"{name} {rgb.shape[0]}x{rgb.shape[1]}" + (" troops" if r else "")
            draw.text((c * panel_size + 3, top + 1), label, fill=(230, 230, 230))
    if map_shape is not None and config.mode == "multi":
        pixels = panel_size / config.global_size
        for name, y0, x0, y1, x1 in _window_boxes(obs["features"], config, map_shape):
            colour = (255, 255, 255) if name == "local" else (255, 225, 40)
            for r in range(len(rows)):
                top = r * (panel_size + _TITLE_HEIGHT) + _TITLE_HEIGHT
                draw.rectangle((x0 * pixels, top + y0 * pixels, x1 * pixels - 1, top + y1 * pixels - 1),
                               outline=colour)
    return image


def save_views(obs: Mapping[str, np.ndarray], config: ObsConfig, path: str | Path, **kwargs) -> Path:
    """Save `render_observation(obs, config, **kwargs)` as a PNG at `path` (folders created); returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    render_observation(obs, config, **kwargs).save(path)
    return path


def render_state(observer, game, arrays, path: str | Path | None = None, **kwargs) -> Image.Image:
    """The views an `Observer` builds from a game state (first frame of an episode), as an image; saved as a
    PNG when `path` is given. `arrays` are the map's `MapArrays` (`env.arrays`)."""
    import jax
    import jax.numpy as jnp

    obs, _ = jax.jit(observer.init)(game, arrays, jnp.ones(NUM_ACTIONS, bool))
    kwargs.setdefault("map_shape", tuple(arrays.shape))
    image = render_observation(jax.device_get(obs), observer.config, **kwargs)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    return image
