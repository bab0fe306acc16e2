"""Episodes: recorded on the device in one jitted scan, fetched once, drawn on the host as GIF or MP4.

    from jaxms.render import record_episode, save_episode
    from jaxms.play import random_policy
    episode = record_episode(env, env.default_params, random_policy, jax.random.key(0), max_steps=100)
    save_episode(episode, "episode.gif")          # or .mp4 (needs imageio-ffmpeg: pip install jaxms[video])

A frame (`episode_frame`) is a caption (step, tick, the action taken and what it attacked, land shares),
the map (`jaxms.render.game`: territories, the agent's border, live attacks, structures, an arrow for the
agent's action, and the local and tactical windows outlined) and under it the views the agent saw then
(`jaxms.render.views`). Frame t shows the game after t steps and the observation the agent acts on next;
its caption names the action of step t (the one that led to it).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from jaxms.env.contract import (
    AGENT,
    DIRECTION_NAMES,
    FEATURE_NAMES,
    INTENSITIES,
    NUM_FEATURES,
    WAIT,
    ObsConfig,
)
from jaxms.maps import GameMap
from jaxms.render.game import GameFrame, GameRenderer
from jaxms.render.views import render_observation

VIDEO_SUFFIXES = (".gif", ".mp4")
_CAPTION_HEIGHT = 34
# Unit vectors (dy, dx) of the eight directions (as jaxms.env.actions, which imports JAX).
_DIAGONAL = float(np.sqrt(0.5))
_DIRECTIONS = ((-1, 0), (-_DIAGONAL, _DIAGONAL), (0, 1), (_DIAGONAL, _DIAGONAL), (1, 0),
               (_DIAGONAL, -_DIAGONAL), (0, -1), (-_DIAGONAL, -_DIAGONAL))


@dataclasses.dataclass(frozen=True)
class Episode:
    """One recorded game on the host. T = steps played, so T + 1 frames (frame 0: the start).

    Per frame (leading axis T + 1): the game (`owner` ... `tick`) and the observation the agent saw
    (`obs`). Per step (leading axis T): the action taken, what it did and the reward.
    """

    game_map: GameMap
    obs_config: ObsConfig | None  # the observation's layout (None: an observer without views)
    owner: np.ndarray  # uint8[T + 1, H, W]
    tiles: np.ndarray  # int32[T + 1, P + 1]
    troops: np.ndarray  # float32[T + 1, P + 1]
    live_attacks: np.ndarray  # float32[T + 1, P + 1, P + 1]
    structure_kind: np.ndarray  # int8[T + 1, S]
    structure_owner: np.ndarray  # uint8[T + 1, S]
    structure_pos: np.ndarray  # int32[T + 1, S, 2]
    structure_ready: np.ndarray  # int32[T + 1, S]
    tick: np.ndarray  # int32[T + 1]
    obs: dict  # the observation's entries, each [T + 1, ...]
    actions: np.ndarray  # int32[T]: action of step t (0..44)
    attacked: np.ndarray  # bool[T]: it ordered an attack
    targets: np.ndarray  # int32[T, 8]: whom each direction attacked at step t (0: unowned land)
    centres: np.ndarray  # float32[T, 2]: (y, x) the directions of step t were measured from
    rewards: np.ndarray  # float32[T]
    won: bool  # the agent won by the last step
    ended: bool  # the game ended (won, lost, or its time limit) within the steps recorded
    boats: np.ndarray | None = None  # float32[T + 1, 3 (P + 1), 4]: (y, x, owner, at sea) per boat slot

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def land_shares(self) -> np.ndarray:
        """float32[T + 1, P + 1]: each player's share of the land per frame (slot 0: unowned land)."""
        return self.tiles.astype(np.float32) / max(int(self.game_map.num_land_tiles), 1)

    def frame(self, t: int) -> GameFrame:
        """The game at frame `t` (0..T), for `jaxms.render.game`."""
        return GameFrame(owner=self.owner[t], tiles=self.tiles[t], troops=self.troops[t],
                         live_attacks=self.live_attacks[t], structure_kind=self.structure_kind[t],
                         structure_owner=self.structure_owner[t], structure_pos=self.structure_pos[t],
                         structure_ready=self.structure_ready[t], tick=int(self.tick[t]),
                         **({} if self.boats is None else
                            {"boats": self.boats[t][self.boats[t][:, 3] > 0, :3]}))

    def observation(self, t: int) -> dict:
        """The observation the agent saw at frame `t` (one env)."""
        return {name: value[t] for name, value in self.obs.items()}


def record_episode(env, params, policy: Callable, key, max_steps: int | None = None, policy_params=None
                   ) -> Episode:
    """Play one game with `policy` in the agent's seat and record every step, in one jitted scan.

    Args:
        env: a `jaxms.env.TerritoryEnv` (an autopilot env records the tribe rules in the seat).
        params: its `EnvParams` (the game starts from `env.reset`; an argument of the compiled recorder).
        policy: `(key, batched obs) -> int32[N]` actions (`jaxms.play`: `random_policy`, `wait_policy`,
            `network_policy`), called on a batch of one env; with `policy_params`,
            `(policy_params, key, batched obs) -> int32[N]` (`jaxms.play.network_actor(network)` with the
            network's parameters): the parameters are then an argument, so one compiled recorder serves
            every set of them (training records a game every `--image-every` updates).
        max_steps: steps to record at most (default: the env's `params.max_steps`); the game may end sooner
            (won, lost, or its time limit), and the frames stop there.
    Returns the `Episode` on the host (one transfer after the scan).
    """
    import jax

    max_steps = int(params.max_steps) if max_steps is None else max_steps
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    if policy_params is None:  # a plain policy, or a `network_policy` split into its actor and parameters
        from jaxms.play import as_actor

        policy, policy_params = as_actor(policy)
    run = _recorder(env, policy, max_steps)
    first, steps = jax.device_get(run(params, policy_params, key))
    played = int(np.asarray(steps["played"]).sum())  # steps up to and including the game's end

    def frames(name):
        return np.concatenate([np.asarray(first[name])[None], np.asarray(steps[name])[:played]])

    return Episode(
        game_map=env.game_maps[int(first["map_index"])], obs_config=getattr(env.observer, "config", None),
        **{name: frames(name) for name in ("owner", "tiles", "troops", "live_attacks", "structure_kind",
                                           "structure_owner", "structure_pos", "structure_ready", "tick",
                                           "boats")},
        obs={name: np.concatenate([np.asarray(value)[None], np.asarray(steps["obs"][name])[:played]])
             for name, value in first["obs"].items()},
        actions=np.asarray(steps["action"])[:played], attacked=np.asarray(steps["attacked"])[:played],
        targets=np.asarray(steps["targets"])[:played], centres=np.asarray(steps["centre"])[:played],
        rewards=np.asarray(steps["reward"])[:played],
        won=bool(np.asarray(steps["won"])[played - 1]), ended=bool(np.asarray(steps["ended"])[played - 1]))


def _boat_slots(game):
    """float32[3 (P + 1), 4]: (y, x, owner, at sea) of every boat slot of one game (inside jit)."""
    import jax.numpy as jnp

    from jaxms.env.observe import boat_positions

    y, x, at_sea = boat_positions(game, game.owner.shape[1])
    owner = jnp.broadcast_to(jnp.arange(at_sea.shape[0])[:, None], at_sea.shape)
    return jnp.stack([y, x, owner.astype(jnp.float32), at_sea.astype(jnp.float32)], axis=-1).reshape(-1, 4)


@functools.lru_cache(maxsize=16)
def _recorder(env, policy: Callable, max_steps: int):
    """The jitted `run(env params, policy params, key) -> (first frame, per-step records [max_steps])` of an
    actor `policy(policy params, key, obs)`, made once per (env, policy, length). Steps after the game's
    end repeat its last state (`played` False)."""
    import jax
    import jax.numpy as jnp

    step = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))

    def snapshot(obs, state):
        game = jax.tree.map(lambda leaf: leaf[0], state.game)
        return {"owner": game.owner, "tiles": game.tiles, "troops": game.troops,
                "live_attacks": jnp.where(game.retreat_timer == 0, game.attacks, 0.0),
                "structure_kind": game.structure_kind, "structure_owner": game.structure_owner,
                "structure_pos": game.structure_pos, "structure_ready": game.structure_ready,
                "tick": game.tick, "map_index": state.map_index[0], "boats": _boat_slots(game),
                "obs": jax.tree.map(lambda leaf: leaf[0], obs)}

    @jax.jit
    def run(params, policy_params, key):
        reset_key, play_key = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_key[None], params)

        def body(carry, _):
            obs, state, key, over = carry
            key, act_key, step_key = jax.random.split(key, 3)
            action = policy(policy_params, act_key, obs)
            new_obs, new_state, reward, terminated, truncated, info = step(step_key[None], state, action,
                                                                          params)
            ended = (terminated | truncated)[0]
            record = {**snapshot(new_obs, new_state), "action": action[0], "attacked": info["attacked"][0],
                      "targets": state.targets[0], "centre": state.centre[0], "reward": reward[0],
                      "won": info["won"][0], "ended": ended, "played": ~over}
            # After the end, the game stays as it ended (no auto-reset: step_env).
            keep = lambda new, old: jnp.where(over, old, new)  # noqa: E731
            return (jax.tree.map(keep, new_obs, obs), jax.tree.map(keep, new_state, state), key,
                    over | ended), record

        _, steps = jax.lax.scan(body, (obs, state, play_key, jnp.bool_(False)), None, length=max_steps)
        return snapshot(obs, state), steps

    return run


# ---------------------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------------------


def action_text(action: int, target: int | None = None, attacked: bool | None = None) -> str:
    """An action in words: "NE 30% -> player 3", "N 15% -> unowned land", "WAIT"."""
    direction, intensity = divmod(int(action), len(INTENSITIES))
    if direction == WAIT:
        return "WAIT"
    text = f"{DIRECTION_NAMES[direction]} {round(100 * INTENSITIES[intensity])}%"
    if attacked is False:
        return text + " (nothing to attack)"
    if target is not None:
        text += " -> " + ("unowned land" if target == 0 else f"player {target}")
    return text


def _windows(episode: Episode, t: int) -> list[tuple[str, float, float, int]]:
    """(name, centre y, centre x, side) of the local and tactical windows the agent saw at frame t."""
    config = episode.obs_config
    if config is None or config.mode != "multi":
        return []
    features = episode.obs["features"][t][-NUM_FEATURES:]  # the newest frame's
    height, width = episode.game_map.height, episode.game_map.width
    return [(name, features[FEATURE_NAMES.index(f"{name}_y")] * height,
             features[FEATURE_NAMES.index(f"{name}_x")] * width, side)
            for name, side in (("local", config.local_view_size), ("tactical", config.tactical_size))]


def caption(episode: Episode, t: int, others: int = 3) -> tuple[str, str]:
    """Two lines for frame t: step, tick and the action of step t; the land shares (agent, then the
    `others` largest players)."""
    if t == 0:
        first = f"start   tick {int(episode.tick[0])}   {episode.num_steps} steps recorded"
    else:
        action = int(episode.actions[t - 1])
        direction = action // len(INTENSITIES)
        moved = direction != WAIT
        target = int(episode.targets[t - 1][direction]) if moved else None
        said = action_text(action, target, bool(episode.attacked[t - 1]) if moved else None)
        first = (f"step {t}/{episode.num_steps}   tick {int(episode.tick[t])}   action {said}   reward "
                 f"{float(episode.rewards[t - 1]):+.3f}")
        if t == episode.num_steps and episode.ended:
            first += "   WON" if episode.won else "   game over"
    shares = episode.land_shares[t]
    rivals = [p for p in np.argsort(-shares[1:]) + 1 if p != AGENT and shares[p] > 0][:others]
    second = f"land: you {shares[AGENT]:.3f}" + "".join(f"   p{p} {shares[p]:.3f}" for p in rivals)
    return first, second + f"   unowned {shares[0]:.3f}"


def episode_frame(episode: Episode, t: int, size: int = 512, renderer: GameRenderer | None = None
                  ) -> Image.Image:
    """Frame t (0..T) of `episode` as an RGB image: caption, map (`size` pixels on its longer side), views.

    Pass a `GameRenderer` of the episode's map when drawing many frames (its colours are made once)."""
    renderer = renderer or GameRenderer(episode.game_map, size)
    arrow = None
    if t > 0:
        direction = int(episode.actions[t - 1]) // len(INTENSITIES)
        if direction != WAIT and episode.attacked[t - 1]:
            arrow = (*map(float, episode.centres[t - 1]), *_DIRECTIONS[direction])
    picture = renderer.draw(episode.frame(t), windows=_windows(episode, t), arrow=arrow)
    views = None
    if episode.obs_config is not None:
        panels = len(episode.obs_config.view_sizes)
        views = render_observation(episode.observation(t), episode.obs_config,
                                   map_shape=(episode.game_map.height, episode.game_map.width),
                                   panel_size=max(32, picture.width // max(panels, 3)))
    width = max(picture.width, views.width if views else 0, 360)
    height = _CAPTION_HEIGHT + picture.height + (views.height if views else 0)
    width, height = width + width % 2, height + height % 2  # even sides: what MP4 encoders need
    image = Image.new("RGB", (width, height), (20, 20, 24))
    image.paste(picture, (0, _CAPTION_HEIGHT))
    if views is not None:
        image.paste(views, (0, _CAPTION_HEIGHT + picture.height))
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(caption(episode, t)):
        draw.text((4, 3 + 15 * row), line, fill=(235, 235, 235))
    return image


def episode_frames(episode: Episode, size: int = 512) -> list[Image.Image]:
    """Every frame of `episode` (T + 1 images), see `episode_frame`."""
    renderer = GameRenderer(episode.game_map, size)
    return [episode_frame(episode, t, size, renderer) for t in range(episode.num_steps + 1)]


# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------


def video_problem(path: str | Path) -> str | None:
    """None if an episode can be written to `path` (by its suffix), else what is wrong, in words: an
    unknown suffix, MP4 without imageio-ffmpeg, a missing or unwritable folder. Checked before any work."""
    import os

    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        return "is a folder; give a file name (e.g. episode.gif)"
    if suffix not in VIDEO_SUFFIXES:
        return f"unknown file type {suffix or '(none)'!r}: give a .gif or .mp4 file"
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        return "MP4 needs imageio-ffmpeg, which is not installed (pip install imageio-ffmpeg, or pip " \
               "install -e '.[video]'); or write a .gif"
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return f"the folder {folder} does not exist; create it first or write elsewhere"
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "not writable; give a writable path"
    return None


def gif_bytes(frames: list[Image.Image], fps: float = 4.0, hold_last_s: float = 2.0) -> bytes:
    """An animated GIF of `frames` (looping; the last frame held `hold_last_s` seconds)."""
    import io

    if not frames:
        raise ValueError("no frames to write")
    duration = [round(1000 / fps)] * len(frames)
    duration[-1] = max(duration[-1], round(1000 * hold_last_s))
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0)
    return buffer.getvalue()


def save_episode(episode: Episode | list[Image.Image], path: str | Path, fps: float = 4.0, size: int = 512
                 ) -> Path:
    """Write `episode` (or frames already drawn) as an animated GIF or an MP4 (by `path`'s suffix); returns
    the path. Raises ValueError saying what is wrong (`video_problem`) before drawing anything."""
    path = Path(path)
    problem = video_problem(path)
    if problem:
        raise ValueError(f"{path}: {problem}")
    if not (isinstance(fps, int | float) and 0 < fps <= 60):
        raise ValueError(f"fps must be a number in (0, 60], got {fps!r}")
    frames = episode if isinstance(episode, list) else episode_frames(episode, size)
    if path.suffix.lower() == ".gif":
        path.write_bytes(gif_bytes(frames, fps))
        return path
    import imageio_ffmpeg

    width, height = frames[0].size
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, macro_block_size=2,
                                         ffmpeg_log_level="error")
    writer.send(None)  # start ffmpeg
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(np.asarray(frame.convert("RGB"))))
    finally:
        writer.close()
    return path
