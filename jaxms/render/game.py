"""Pictures of a game state: territories, water, the agent's border, live attacks, structures and boats.

    from jaxms.render import GameFrame, render_game
    image = render_game(game_map, state.game)                 # a GameState of one env (JAX or NumPy arrays)
    image = GameRenderer(game_map, size=512).draw(GameFrame.from_state(state.game), windows=...)

NumPy + Pillow on host arrays: nothing here runs under jit (an episode is recorded on the device and fetched
once, `jaxms.render.record_episode`). Colours: the map's terrain (`jaxms.maps.render.terrain_rgb`, half
greyed) for water and unowned land; each player's territory tinted in its own colour over the terrain
(the agent green, other players from a fixed list of distinct hues), territory edges darker; the agent's
border (its tiles next to unowned or enemy land) yellow; the front of every live attack (the target's tiles
next to the attacker) in a light shade of the attacker's colour, the agent's own attack fronts white;
cities as filled squares and defense posts as filled diamonds in their owner's colour (hollow while under
construction).
Maps larger than `size` are shrunk with a box filter (colours stay area-true) and the agent's border and its
own attack fronts are drawn over the result at one pixel wherever any tile of the pixel's block has them,
so they stay visible at 1024x1024 and beyond; smaller maps are enlarged by a whole number of pixels per
tile. Where an enemy attacks the agent, that front is drawn over the agent's border.
"""

from __future__ import annotations

import colorsys
import dataclasses
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from jaxms.env.contract import AGENT
from jaxms.maps import GameMap
from jaxms.maps.render import terrain_rgb

AGENT_COLOUR = (40, 190, 110)  # as in the views (jaxms.render.views)
AGENT_BORDER = (255, 225, 40)
AGENT_FRONT = (255, 255, 255)
# Distinct hues for the other players, none of them green (the agent's); more players get golden-ratio hues.
_OTHER_COLOURS = ((215, 65, 55), (60, 110, 220), (235, 150, 30), (150, 70, 200), (40, 190, 215),
                  (220, 80, 170), (140, 95, 55), (250, 200, 200), (130, 130, 40), (25, 40, 120),
                  (0, 128, 128), (255, 120, 90), (170, 170, 255), (110, 20, 40), (200, 200, 90),
                  (90, 60, 140), (255, 90, 255), (70, 70, 70), (180, 120, 160), (120, 200, 255))
_TINT = 0.75  # share of the player's colour over the terrain on its tiles
_EDGE_SHADE = 0.6  # territory edges: the tint darkened to this
_TERRAIN_COLOUR = 0.5  # how much of the terrain's colour is kept (the rest is its grey)
CITY, DEFENSE_POST = 1, 2  # jaxms.game.structures kinds (imported here without JAX)


def player_colours(num_slots: int) -> np.ndarray:
    """uint8[num_slots, 3]: the colour of each owner id (slot 0, unowned land, is unused: black)."""
    colours = np.zeros((num_slots, 3), np.uint8)
    for slot in range(1, num_slots):
        if slot == AGENT:
            colours[slot] = AGENT_COLOUR
        elif slot - 2 < len(_OTHER_COLOURS):
            colours[slot] = _OTHER_COLOURS[slot - 2]
        else:
            hue = (0.618034 * slot) % 1.0
            hue = hue if not 0.22 < hue < 0.45 else hue + 0.25  # skip the agent's greens
            colours[slot] = np.round(255 * np.array(colorsys.hsv_to_rgb(hue % 1.0, 0.75, 0.9)))
    return colours


@dataclasses.dataclass(frozen=True)
class GameFrame:
    """What a picture of one game state needs, as NumPy arrays (P = players, S = structure slots)."""

    owner: np.ndarray  # uint8[H, W]
    tiles: np.ndarray  # int32[P + 1]
    troops: np.ndarray  # float32[P + 1]
    live_attacks: np.ndarray  # float32[P + 1, P + 1]: troops of running attacks (attacker row, target column)
    structure_kind: np.ndarray  # int8[S]: 0 empty, 1 city, 2 defense post
    structure_owner: np.ndarray  # uint8[S]
    structure_pos: np.ndarray  # int32[S, 2]: (y, x)
    structure_ready: np.ndarray  # int32[S]: tick its construction completes
    tick: int
    # Boats at sea: (y, x, owner) per boat, at its straight-line position between launch and landing.
    boats: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3), np.float32))

    @classmethod
    def from_state(cls, game) -> GameFrame:
        """From a `jaxms.game.GameState` of one game (device or host arrays)."""
        attacks = np.asarray(game.attacks)
        running = np.asarray(game.retreat_timer) == 0
        return cls(owner=np.asarray(game.owner), tiles=np.asarray(game.tiles),
                   troops=np.asarray(game.troops), live_attacks=np.where(running, attacks, 0.0),
                   structure_kind=np.asarray(game.structure_kind),
                   structure_owner=np.asarray(game.structure_owner),
                   structure_pos=np.asarray(game.structure_pos),
                   structure_ready=np.asarray(game.structure_ready), tick=int(game.tick),
                   boats=boats_at_sea(game))


def boats_at_sea(game) -> np.ndarray:
    """float32[B, 3]: (y, x, owner) of the boats at sea of a `GameState` (positions interpolated between
    launch and landing tiles, as the observation's boats channel places them)."""
    width = int(np.asarray(game.owner).shape[1])
    troops = np.asarray(game.boat_troops)
    launch, arrive = np.asarray(game.boat_launch), np.asarray(game.boat_arrive)
    done = np.clip((int(game.tick) - launch) / np.maximum(arrive - launch, 1), 0.0, 1.0)
    src, dst = np.asarray(game.boat_src), np.asarray(game.boat_dst)
    y = src // width + (dst // width - src // width) * done
    x = src % width + (dst % width - src % width) * done
    owner = np.broadcast_to(np.arange(troops.shape[0])[:, None], troops.shape)
    at_sea = troops > 0
    return np.stack([y[at_sea], x[at_sea], owner[at_sea]], axis=-1).astype(np.float32)


def _edges(owner: np.ndarray, land: np.ndarray) -> np.ndarray:
    """bool[H, W]: land tiles with a 4-neighbour on land owned by someone else (water never counts)."""
    edge = np.zeros(owner.shape, bool)
    for here, there in ((np.s_[1:], np.s_[:-1]), (np.s_[:-1], np.s_[1:])):
        edge[here] |= (owner[here] != owner[there]) & land[there]
        edge[:, here] |= (owner[:, here] != owner[:, there]) & land[:, there]
    return edge & land


def _fronts(owner: np.ndarray, land: np.ndarray, live: np.ndarray) -> np.ndarray:
    """uint8[H, W]: the attacker whose live attack has this tile on its front (0: none). A front tile is
    land of the target (unowned land for target 0) next to the attacker's territory."""
    slots = live.shape[0]
    table = (live > 0).ravel()  # [attacker * slots + target]
    target = owner.astype(np.int32)
    attacker = np.zeros(owner.shape, np.uint8)
    for here, there in ((np.s_[1:], np.s_[:-1]), (np.s_[:-1], np.s_[1:])):
        for view in (lambda a, s: a[s], lambda a, s: a[:, s]):
            neighbour = view(owner, there)
            hit = table[neighbour.astype(np.int32) * slots + view(target, here)] & (neighbour > 0)
            view(attacker, here)[hit] = neighbour[hit]
    return np.where(land, attacker, 0).astype(np.uint8)


def _pooled(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """bool[h, w]: pixels of a (w, h) image of `mask` where any tile of the pixel's box is set."""
    image = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)
    return np.asarray(image) > 0


class GameRenderer:
    """Draws game states of one map (the map's colours are computed once).

    Args:
        game_map: the map the games are played on.
        size: the longer side of the picture in pixels (a map larger than this is shrunk, a smaller one is
            enlarged by a whole number of pixels per tile).
    """

    def __init__(self, game_map: GameMap, size: int = 512):
        if not isinstance(size, int) or size < 16:
            raise ValueError(f"size must be an integer >= 16 pixels, got {size!r}")
        self.game_map = game_map
        # The terrain half greyed, so that territories (the agent's green above all) stand out on plains.
        terrain = terrain_rgb(game_map).astype(np.float32)
        grey = terrain.mean(axis=-1, keepdims=True)
        self.terrain = (_TERRAIN_COLOUR * terrain + (1 - _TERRAIN_COLOUR) * grey).astype(np.uint8)
        self.land = np.asarray(game_map.land)
        height, width = self.land.shape
        longest = max(height, width)
        self.pixels_per_tile = max(1, size // longest) if longest <= size else size / longest
        self.size = (max(1, round(width * self.pixels_per_tile)),
                     max(1, round(height * self.pixels_per_tile)))  # (width, height) in pixels

    def to_pixels(self, y: float, x: float) -> tuple[float, float]:
        """(px, py) in the picture of the tile coordinate (y, x) (continuous: tile t spans [t, t + 1))."""
        return x * self.pixels_per_tile, y * self.pixels_per_tile

    def rgb(self, frame: GameFrame, agent: int = AGENT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(uint8[H, W, 3] full-resolution colours, bool[H, W] the agent's border, uint8[H, W] the attacker
        whose live attack has the tile on its front, or 0)."""
        owner, land = frame.owner, self.land
        colours = player_colours(max(int(owner.max()) + 1, frame.tiles.shape[0])).astype(np.uint16)
        rgb = self.terrain.copy()
        owned = (owner > 0) & land
        edge = _edges(owner, land)
        tint = colours[owner[owned]]
        blend = tint * round(256 * _TINT) + rgb[owned].astype(np.uint16) * round(256 * (1 - _TINT))
        rgb[owned] = (blend >> 8).astype(np.uint8)
        shaded = owned & edge
        rgb[shaded] = (rgb[shaded] * _EDGE_SHADE).astype(np.uint8)
        fronts = _fronts(owner, land, frame.live_attacks)
        others = (fronts > 0) & (fronts != agent)
        rgb[others] = ((colours[fronts[others]] + 255) >> 1).astype(np.uint8)  # light shade of the attacker
        return rgb, owned & edge & (owner == agent), fronts

    def draw(self, frame: GameFrame, windows: Sequence[tuple[str, float, float, int]] = (),
             arrow: tuple[float, float, float, float] | None = None, agent: int = AGENT) -> Image.Image:
        """The picture of `frame`.

        Args:
            windows: (name, centre y, centre x, side in tiles) of windows to outline: "local" in white,
                "tactical" in yellow, others in light grey.
            arrow: (from y, from x, unit dy, unit dx) in tiles: the agent's action, an arrow a tenth of the
                picture long.
        """
        rgb, border, fronts = self.rgb(frame, agent)
        own_front = fronts == agent
        border &= fronts == 0  # where an enemy attacks the agent, its front shows instead
        if self.pixels_per_tile >= 1:  # enlarged (or as is): paint at full resolution, then scale up
            rgb[border] = AGENT_BORDER
            rgb[own_front] = AGENT_FRONT
            image = Image.fromarray(rgb)
            if image.size != self.size:
                image = image.resize(self.size, Image.Resampling.NEAREST)
        else:  # shrunk: then the border and the agent's fronts where any tile of a pixel has them
            pixels = np.array(Image.fromarray(rgb).resize(self.size, Image.Resampling.BOX))
            pixels[_pooled(border, self.size)] = AGENT_BORDER
            pixels[_pooled(own_front, self.size)] = AGENT_FRONT
            image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        self._structures(draw, frame)
        self._boats(draw, frame)
        for name, cy, cx, side in windows:
            colour = {"local": (255, 255, 255), "tactical": AGENT_BORDER}.get(name, (200, 200, 200))
            x0, y0 = self.to_pixels(cy - side / 2, cx - side / 2)
            x1, y1 = self.to_pixels(cy + side / 2, cx + side / 2)
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=colour, width=2)
        if arrow is not None:
            self._arrow(draw, *arrow)
        return image

    def _structures(self, draw: ImageDraw.ImageDraw, frame: GameFrame) -> None:
        colours = player_colours(max(int(frame.structure_owner.max(initial=0)) + 1, frame.tiles.shape[0]))
        radius = max(2.0, min(self.size) / 128)
        for kind, owner, (y, x), ready in zip(frame.structure_kind, frame.structure_owner,
                                              frame.structure_pos, frame.structure_ready, strict=True):
            if kind not in (CITY, DEFENSE_POST):
                continue
            px, py = self.to_pixels(y + 0.5, x + 0.5)
            colour = tuple(int(c) for c in colours[owner])
            fill = colour if ready <= frame.tick else None  # hollow while under construction
            if kind == CITY:
                draw.rectangle((px - radius, py - radius, px + radius, py + radius), fill=fill,
                               outline=(255, 255, 255))
            else:
                r = radius * 1.3
                draw.polygon([(px, py - r), (px + r, py), (px, py + r), (px - r, py)], fill=fill,
                             outline=(0, 0, 0))

    def _boats(self, draw: ImageDraw.ImageDraw, frame: GameFrame) -> None:
        """A boat at sea: a small hull in its owner's colour, outlined in white."""
        colours = player_colours(max(frame.tiles.shape[0], int(frame.boats[:, 2].max(initial=0)) + 1))
        radius = max(2.5, min(self.size) / 100)
        for y, x, owner in frame.boats:
            px, py = self.to_pixels(y + 0.5, x + 0.5)
            colour = tuple(int(c) for c in colours[int(owner)])
            draw.polygon([(px - 1.6 * radius, py - 0.4 * radius), (px + 1.6 * radius, py - 0.4 * radius),
                          (px + radius, py + 0.8 * radius), (px - radius, py + 0.8 * radius)], fill=colour,
                         outline=(255, 255, 255))

    def _arrow(self, draw: ImageDraw.ImageDraw, y: float, x: float, dy: float, dx: float) -> None:
        length = max(self.size) / 10
        x0, y0 = self.to_pixels(y, x)
        x1, y1 = x0 + dx * length, y0 + dy * length
        head = length / 3
        left = (x1 - head * (dx * 0.8 - dy * 0.5), y1 - head * (dy * 0.8 + dx * 0.5))
        right = (x1 - head * (dx * 0.8 + dy * 0.5), y1 - head * (dy * 0.8 - dx * 0.5))
        for colour, width in (((0, 0, 0), 5), ((255, 255, 255), 2)):
            draw.line((x0, y0, x1, y1), fill=colour, width=width)
            draw.line((left[0], left[1], x1, y1, right[0], right[1]), fill=colour, width=width)


def render_game(game_map: GameMap, game, size: int = 512, **kwargs) -> Image.Image:
    """The picture of one game state (`jaxms.game.GameState` of one game, or a `GameFrame`) on `game_map`;
    `kwargs` go to `GameRenderer.draw` (windows, arrow)."""
    frame = game if isinstance(game, GameFrame) else GameFrame.from_state(game)
    return GameRenderer(game_map, size).draw(frame, **kwargs)
