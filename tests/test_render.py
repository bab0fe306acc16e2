"""Pictures of games: a game state (territories, borders, attack fronts, structures, windows), a recorded
episode, its frames, GIF and MP4 files, and the GIFs of `python -m jaxms.evaluate --gif` and of training.

The drawing tests use hand-made NumPy states (no JAX). One episode is recorded for the module on
continents_64 (3 tribes, the views sized for the map): the notebooks record on the same env, so JAX's
persistent cache serves one compile. The command-line test trains conftest.TINY_CLI's run (the programs of
test_reliability.py and test_train.py) with pictures every update.
"""

from __future__ import annotations

import json
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_CLI
from PIL import Image

from jaxms import load_map
from jaxms.maps.render import terrain_rgb
from jaxms.render import (
    GameFrame,
    GameRenderer,
    action_text,
    caption,
    episode_frame,
    episode_frames,
    player_colours,
    record_episode,
    render_game,
    save_episode,
    video_problem,
)
from jaxms.render.game import AGENT_BORDER, AGENT_FRONT, CITY, DEFENSE_POST

PLAINS = load_map("plains_32")  # all land


def frame_of(owner: np.ndarray, players: int = 3, attacks=(), structures=(), tick: int = 100) -> GameFrame:
    """A GameFrame of `owner` with live attacks [(attacker, target, troops)] and structures
    [(kind, owner, y, x, ready tick)]."""
    slots = players + 1
    live = np.zeros((slots, slots), np.float32)
    for attacker, target, troops in attacks:
        live[attacker, target] = troops
    count = max(len(structures), 1)
    kind = np.zeros(count, np.int8)
    who = np.zeros(count, np.uint8)
    pos = np.zeros((count, 2), np.int32)
    ready = np.zeros(count, np.int32)
    for i, (k, o, y, x, r) in enumerate(structures):
        kind[i], who[i], pos[i], ready[i] = k, o, (y, x), r
    tiles = np.bincount(owner.ravel(), minlength=slots).astype(np.int32)
    return GameFrame(owner=owner.astype(np.uint8), tiles=tiles, troops=np.full(slots, 1000, np.float32),
                     live_attacks=live, structure_kind=kind, structure_owner=who, structure_pos=pos,
                     structure_ready=ready, tick=tick)


def two_blocks(size: int = 32) -> np.ndarray:
    """The agent owns rows 8..15 x columns 8..15, player 2 the block to its right (columns 16..23)."""
    owner = np.zeros((size, size), np.uint8)
    owner[8:16, 8:16] = 1
    owner[8:16, 16:24] = 2
    return owner


def test_territories_borders_and_attack_fronts_are_coloured_per_player():
    renderer = GameRenderer(PLAINS, size=32)  # one pixel per tile
    frame = frame_of(two_blocks(), attacks=[(1, 0, 500.0), (2, 1, 300.0)])
    rgb, border, fronts = renderer.rgb(frame)
    colours = player_colours(4)
    terrain = renderer.terrain  # the map's colours, half greyed
    grey = terrain_rgb(PLAINS).astype(float).mean(axis=-1)
    assert np.abs(terrain.astype(float) - (0.5 * terrain_rgb(PLAINS) + 0.5 * grey[..., None])).max() <= 1
    # Inside a territory: its player's colour over the terrain; unowned land: the terrain itself.
    assert np.abs(rgb[11, 11].astype(int) - (0.75 * colours[1] + 0.25 * terrain[11, 11])).max() <= 2
    assert np.abs(rgb[11, 19].astype(int) - (0.75 * colours[2] + 0.25 * terrain[11, 19])).max() <= 2
    np.testing.assert_array_equal(rgb[0, 0], terrain[0, 0])
    # The agent's border: its tiles next to unowned or enemy land, and only those.
    expected = np.zeros_like(border)
    expected[8:16, 8:16] = True
    expected[9:15, 9:15] = False
    np.testing.assert_array_equal(border, expected)
    # Fronts: the agent's attack on unowned land is the unowned ring around it (not the tiles next to
    # player 2); player 2's attack on the agent is the agent's column 15, next to player 2.
    assert fronts[7, 10] == 1 and fronts[10, 7] == 1 and fronts[16, 12] == 1
    assert fronts[10, 24] == 0  # unowned, next to player 2 only: player 2 attacks the agent, not TN
    assert (fronts[8:16, 15] == 2).all() and (fronts[8:16, 14] == 0).all()
    assert fronts[10, 16] == 0  # player 2's own tile: nobody attacks player 2
    # No live attack, no front.
    assert not renderer.rgb(frame_of(two_blocks()))[2].any()
    # The picture: the agent's front white, its border yellow, player 2's front a light shade of its colour.
    pixels = np.asarray(renderer.draw(frame))
    assert tuple(pixels[7, 10]) == AGENT_FRONT and tuple(pixels[9, 8]) == AGENT_BORDER
    assert tuple(pixels[10, 15]) == tuple((colours[2].astype(int) + 255) // 2)


def test_a_large_map_is_shrunk_keeping_the_border_and_structures_are_drawn():
    big = load_map("plains_1024")
    owner = np.zeros((1024, 1024), np.uint8)
    owner[100:300, 200:400] = 1  # the agent
    owner[600:700, 600:700] = 3
    structures = [(CITY, 1, 200, 300, 0), (DEFENSE_POST, 3, 650, 650, 500)]  # the post: still being built
    image = render_game(big, frame_of(owner, structures=structures, tick=100), size=512,
                        windows=[("local", 200.0, 300.0, 256), ("tactical", 150.0, 250.0, 64)])
    assert image.size == (512, 512)
    pixels = np.asarray(image)
    # The one-tile border survives the 2x shrink as one crisp pixel on each side.
    assert tuple(pixels[50, 120]) == AGENT_BORDER and tuple(pixels[149, 120]) == AGENT_BORDER
    assert tuple(pixels[50 + 1, 120 + 10]) != AGENT_BORDER  # inside the territory: its colour
    # The city: filled with its owner's colour at (200, 300) -> pixel (150, 100); the post is hollow.
    np.testing.assert_array_equal(pixels[100, 150], player_colours(4)[1])
    assert tuple(pixels[325, 325]) != tuple(player_colours(4)[3])
    # The windows: local white from tile 172 to 428 (pixels 86..213), tactical yellow.
    assert tuple(pixels[36 + 20, 86]) == (255, 255, 255) and tuple(pixels[20 + 30, 109]) == AGENT_BORDER


def test_bad_sizes_and_video_paths_are_refused_saying_what_is_accepted(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="size must be an integer >= 16"):
        GameRenderer(PLAINS, size=8)
    assert "give a .gif or .mp4" in video_problem(tmp_path / "game.avi")
    assert "does not exist" in video_problem(tmp_path / "missing" / "game.gif")
    assert "is a folder" in video_problem(tmp_path)
    assert video_problem(tmp_path / "game.gif") is None
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # imageio-ffmpeg not installed
    assert "MP4 needs imageio-ffmpeg" in video_problem(tmp_path / "game.mp4")


def test_actions_in_words():
    assert action_text(44) == "WAIT" and action_text(40) == "WAIT"
    assert action_text(6, target=3) == "NE 30% -> player 3"
    assert action_text(0, target=0) == "N 15% -> unowned land"
    assert action_text(14, target=2, attacked=False) == "E 75% (nothing to attack)"


@pytest.fixture(scope="module")
def episode():
    """A random game on continents_64 against 3 tribes, with a time limit of 8 steps (recording up to 12)."""
    from jaxms.env import make_env
    from jaxms.play import random_policy

    env = make_env("continents_64", num_bots=3, reset_pool_size=4)
    params = env.default_params.replace(max_steps=jnp.int32(8))  # a number in the params: no recompile
    return record_episode(env, params, random_policy, jax.random.key(3), max_steps=12)


def test_a_recorded_episode_holds_every_step_until_the_game_ends(episode):
    assert episode.num_steps == 8 and episode.ended and not episode.won  # truncated at its time limit
    assert episode.owner.shape == (9, 64, 64) and episode.obs["global_map"].shape[0] == 9
    land = episode.game_map.land
    for t in range(9):  # tile counts agree with the owner grid, frame by frame
        counts = np.bincount(episode.owner[t][land], minlength=episode.tiles.shape[1])
        np.testing.assert_array_equal(counts, episode.tiles[t])
    # Every action was legal in the observation it was taken on; the agent's land changed.
    for t, action in enumerate(episode.actions):
        assert episode.obs["action_mask"][t][action]
    assert episode.tiles[-1][1] != episode.tiles[0][1] and (np.diff(episode.tick) == 10).all()
    assert episode.attacked.any() and (episode.live_attacks[1:, 1].sum(axis=1) > 0).any()


def test_frames_show_the_caption_the_map_the_windows_and_the_views(episode, tmp_path):
    t = int(np.argmax(episode.attacked)) + 1  # a frame after an attack was ordered
    first, second = caption(episode, t)
    assert first.startswith(f"step {t}/8") and "->" in first and "reward" in first
    assert second.startswith(f"land: you {episode.land_shares[t][1]:.3f}")
    assert caption(episode, 0)[0].startswith("start") and "game over" in caption(episode, 8)[0]
    image = episode_frame(episode, t, size=256)
    # Caption (34 px), the map (256 px, 4 px a tile), then the three views (85 px panels + 14 px titles),
    # padded to even sides (for MP4).
    assert image.size == (360, 34 + 256 + 85 + 14 + 1)
    pixels = np.asarray(image)
    owner = episode.owner[t]
    inside = [(y, x) for y, x in np.argwhere(owner == 1) if (owner[y - 1:y + 2, x - 1:x + 2] == 1).all()]
    y, x = inside[len(inside) // 2]
    green = pixels[34 + 4 * y + 2, 4 * x + 2].astype(int)
    assert green[1] > green[0] and green[1] > green[2]  # the agent's territory is green
    assert (pixels[34:290] == AGENT_BORDER).all(axis=-1).any()  # its border
    assert (pixels[290:] != pixels[290, 0]).any(axis=-1).mean() > 0.5  # the views are drawn
    frames = episode_frames(episode, size=128)
    assert len(frames) == 9 and all(f.size == frames[0].size for f in frames)

    path = save_episode(frames, tmp_path / "episode.gif", fps=5)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 9 and gif.info["duration"] == 200
        assert gif.info["loop"] == 0
    pytest.importorskip("imageio_ffmpeg")
    import imageio_ffmpeg

    mp4 = save_episode(frames, tmp_path / "episode.mp4", fps=5)
    assert imageio_ffmpeg.count_frames_and_secs(str(mp4))[0] == 9
    with pytest.raises(ValueError, match=r"missing.*does not exist"):
        save_episode(frames, tmp_path / "missing" / "e.gif")


def _event_images(run) -> dict[str, list[tuple[int, bytes]]]:
    """{tag: [(step, encoded image)]} of the image summaries in a run's TensorBoard events."""
    from tensorboardX.proto import event_pb2

    found: dict[str, list[tuple[int, bytes]]] = {}
    for path in sorted(run.glob("events.out.tfevents*")):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value if event.HasField("summary") else ():
                if value.HasField("image"):
                    found.setdefault(value.tag, []).append((event.step, value.image.encoded_image_string))
    return found


def test_training_logs_a_game_gif_and_evaluate_records_one(tmp_path, capsys):
    from jaxms.evaluate import main as evaluate_main
    from jaxms.train import main as train_main

    tiny = [flag for flag in TINY_CLI if flag not in ("--image-every", "0")]
    assert train_main([*tiny, "--image-every", "2", "--gif-steps", "4", "--total-timesteps", "32",
                       "--output-dir", str(tmp_path), "--name", "pictures"]) == 0
    (run,) = (p for p in tmp_path.iterdir() if p.is_dir())
    images = _event_images(run)
    assert [step for step, _ in images["views"]] == [32] and [s for s, _ in images["episode"]] == [32]
    gif = tmp_path / "logged.gif"
    gif.write_bytes(images["episode"][0][1])
    with Image.open(gif) as logged:  # 4 steps, or fewer if the 5-step game ended: a start frame and steps
        assert logged.format == "GIF" and 2 <= logged.n_frames <= 5
    capsys.readouterr()

    out = tmp_path / "game.gif"
    assert evaluate_main([str(run), "--games", "1", "--baselines", "none", "--gif", str(out),
                          "--gif-steps", "4", "--gif-size", "64"]) == 0
    err = capsys.readouterr().err
    assert f"wrote {out}:" in err
    with Image.open(out) as recorded:
        assert recorded.n_frames >= 2 and recorded.size[0] >= 64
    assert json.loads((run / "evaluation.json").read_text())["games"] == 1
