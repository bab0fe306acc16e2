"""Pictures for people: the agent's views, game states and whole episodes (PNG, GIF, MP4).

    from jaxms.render import render_observation, save_views           # the views of an observation
    from jaxms.render import render_game                              # a game state: territories, attacks
    from jaxms.render import record_episode, save_episode             # a game as an animated GIF / MP4

- `views`: the views of one observation side by side (global, local, tactical; or the single map).
- `game`: a game state at full resolution, shrunk or enlarged to a picture size (`GameRenderer`).
- `episode`: one game recorded in a jitted scan (`record_episode`), drawn frame by frame (caption, map with
  the windows, the views) and written as GIF (Pillow) or MP4 (imageio-ffmpeg, where installed).
Maps alone: `jaxms.maps.render_map`. Drawing is NumPy + Pillow on host arrays; only `record_episode` and
`render_state` run JAX (imported when called).
"""

from jaxms.render.episode import (
    VIDEO_SUFFIXES,
    Episode,
    action_text,
    caption,
    episode_frame,
    episode_frames,
    gif_bytes,
    record_episode,
    save_episode,
    video_problem,
)
from jaxms.render.game import GameFrame, GameRenderer, player_colours, render_game
from jaxms.render.views import render_observation, render_state, save_views, troops_rgb, view_rgb

__all__ = [
    "VIDEO_SUFFIXES",
    "Episode",
    "GameFrame",
    "GameRenderer",
    "action_text",
    "caption",
    "episode_frame",
    "episode_frames",
    "gif_bytes",
    "player_colours",
    "record_episode",
    "render_game",
    "render_observation",
    "render_state",
    "save_episode",
    "save_views",
    "troops_rgb",
    "video_problem",
    "view_rgb",
]
