"""Round trips (OpenFront folder, terrain PNG, tile bytes), rendering, and transform invariants."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from jaxms.maps import (
    GameMap,
    Nation,
    crop_map,
    downsample_map,
    generate_map,
    load_map,
    pack_tiles,
    read_openfront_folder,
    read_terrain_png,
    render_map,
    save_map_png,
    save_openfront_folder,
    unpack_tiles,
    write_terrain_png,
)


def _assert_same_map(a: GameMap, b: GameMap) -> None:
    np.testing.assert_array_equal(a.land, b.land)
    np.testing.assert_array_equal(a.magnitude, b.magnitude)
    np.testing.assert_array_equal(a.shoreline, b.shoreline)
    np.testing.assert_array_equal(a.ocean, b.ocean)
    assert a.nations == b.nations


def test_openfront_folder_round_trip(tmp_path):
    original = generate_map("continents", 128, 96, seed=4)
    original = GameMap.from_terrain("with nations", original.land, original.magnitude,
                                    nations=(Nation("North", 10, 5), Nation("South", 100, 90)))
    folder = save_openfront_folder(original, tmp_path / "roundtrip")
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "map.bin", "map16x.bin", "map4x.bin"]
    _assert_same_map(read_openfront_folder(folder), original)
    # The smaller scales are our downsample of the full map, nations scaled like OpenFront's.
    quarter = load_map(f"{folder}@4x")
    _assert_same_map(quarter, downsample_map(original, 64, 48))
    assert quarter.nations == (Nation("North", 5, 2), Nation("South", 50, 45))


def test_round_trip_of_a_real_map_is_byte_identical(openfront_maps_dir, tmp_path):
    source = openfront_maps_dir / "pangaea"
    folder = save_openfront_folder(read_openfront_folder(source), tmp_path / "pangaea")
    assert (folder / "map.bin").read_bytes() == (source / "map.bin").read_bytes()


def test_terrain_png_round_trip(tmp_path):
    original = generate_map("islands", 128, seed=9)
    path = write_terrain_png(original, tmp_path / "islands.png")
    again = read_terrain_png(path, openfront_cleanup=False)
    np.testing.assert_array_equal(again.land, original.land)
    np.testing.assert_array_equal(again.magnitude[again.land], original.magnitude[original.land])


def test_terrain_png_follows_the_generator_convention(tmp_path):
    rgba = np.zeros((32, 34, 4), dtype=np.uint8)  # 34 columns: cropped to 32
    rgba[..., 3] = 255
    rgba[..., 2] = 120  # plains, magnitude 0
    rgba[:, 10:20, 2] = 150  # magnitude ceil(10 / 2) = 5
    rgba[:, 20:30, 2] = 181  # magnitude ceil(41 / 2) = 21 (mountain)
    rgba[:, 30:, 2] = 230  # above 200: magnitude 30
    rgba[0:4, 0:4, 3] = 10  # transparent: water (touches the edge, so it is not filled as a small lake)
    rgba[0:4, 4:8, 2] = 106  # blue 106: water
    path = tmp_path / "convention.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    game_map = load_map(str(path))
    assert (game_map.width, game_map.height) == (32, 32)
    assert not game_map.land[0:4, 0:8].any() and game_map.land[4:, :].all()
    assert game_map.magnitude[10, 5] == 0 and game_map.magnitude[10, 15] == 5
    assert game_map.magnitude[10, 25] == 21 and game_map.magnitude[10, 31] == 30


def test_png_cleanup_removes_small_islands_and_lakes(tmp_path):
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[..., 2] = 106  # all water
    rgba[8:40, 8:40, 2] = 120  # a big island ...
    rgba[20:24, 20:24, 2] = 106  # ... with a 16-tile lake (under 200: filled)
    rgba[50:52, 50:52, 2] = 120  # a 4-tile island (under 30: sunk)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "small.png")
    game_map = load_map(str(tmp_path / "small.png"))
    assert game_map.land[20:24, 20:24].all()
    assert not game_map.land[50:52, 50:52].any()
    assert game_map.num_land_tiles == 32 * 32


@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_tile_bytes_round_trip(packed):
    packed = packed & ~np.uint8(0x20) | np.where(packed & 0x80, 0, packed & 0x20).astype(np.uint8)
    land, magnitude, shoreline, ocean = unpack_tiles(packed)
    if not land.any():
        return
    game_map = GameMap("bytes", land, magnitude, shoreline, ocean)
    np.testing.assert_array_equal(pack_tiles(game_map), packed)


@given(st.integers(0, 2**16), st.integers(16, 80), st.integers(16, 80), st.data())
def test_downsample_water_wins_every_block(seed, width, height, data):
    game_map = generate_map("islands", 96, 96, seed=seed % 50)
    target_w = data.draw(st.integers(16, width)) if width <= 96 else 16
    target_h = data.draw(st.integers(16, height)) if height <= 96 else 16
    small = downsample_map(game_map, target_w, target_h)
    rows = (np.arange(target_h + 1) * 96) // target_h
    cols = (np.arange(target_w + 1) * 96) // target_w
    for i in range(target_h):
        for j in range(target_w):
            block = game_map.land[rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
            assert small.land[i, j] == block.all()
            if small.land[i, j]:
                assert small.magnitude[i, j] == game_map.magnitude[rows[i + 1] - 1, cols[j + 1] - 1]


@given(st.integers(0, 48), st.integers(0, 48), st.integers(16, 64), st.integers(16, 64))
def test_crop_is_a_slice(x, y, width, height):
    game_map = generate_map("plains", 64, 64)
    width, height = min(width, 64 - x), min(height, 64 - y)
    if width < 16 or height < 16:
        return
    window = crop_map(game_map, x, y, width, height)
    np.testing.assert_array_equal(window.land, game_map.land[y:y + height, x:x + width])


def test_render_png(tmp_path):
    game_map = load_map("continents_300x200")
    image = render_map(game_map, max_size=None)
    assert image.size == (300, 200) and image.mode == "RGB"
    pixels = np.asarray(image)
    # Land and water get clearly different colours (water is blue-dominant).
    water_blue = pixels[~game_map.land][:, 2].astype(int) - pixels[~game_map.land][:, 1].astype(int)
    assert (water_blue > 0).all()
    assert (pixels[game_map.land][:, 1] >= pixels[game_map.land][:, 2]).mean() > 0.9
    path = save_map_png(game_map, tmp_path / "out" / "map.png", max_size=150)
    with Image.open(path) as saved:
        assert saved.size == (150, 100)
