"""The real OpenFront map files (in ../shared): decoding, scales, nations, and our downscale rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxms.maps import crop_map, downsample_map, load_map, read_openfront_folder
from jaxms.maps.types import compute_ocean, compute_shoreline

MAPS = ["australia", "pangaea"]


@pytest.mark.parametrize("name", MAPS)
@pytest.mark.parametrize("scale", ["1x", "4x", "16x"])
def test_land_counts_match_manifest_at_every_scale(openfront_maps_dir, name, scale):
    manifest = json.loads((openfront_maps_dir / name / "manifest.json").read_text())
    key = {"1x": "map", "4x": "map4x", "16x": "map16x"}[scale]
    game_map = load_map(f"{name}@{scale}", maps_dir=openfront_maps_dir)
    assert (game_map.width, game_map.height) == (manifest[key]["width"], manifest[key]["height"])
    assert game_map.num_land_tiles == manifest[key]["num_land_tiles"]
    assert game_map.land.dtype == np.bool_ and game_map.magnitude.dtype == np.uint8
    assert not (game_map.ocean & game_map.land).any(), "ocean bit set on land"


@pytest.mark.parametrize("name", MAPS)
def test_nations_scale_with_the_map(openfront_maps_dir, name):
    manifest = json.loads((openfront_maps_dir / name / "manifest.json").read_text())
    full = load_map(openfront_maps_dir / name)  # a plain path works too
    quarter = load_map(f"{name}@16x", maps_dir=openfront_maps_dir)
    assert len(full.nations) == len(manifest["nations"]) > 0
    for nation, raw in zip(full.nations, manifest["nations"], strict=True):
        assert (nation.x, nation.y) == tuple(raw["coordinates"])
    for big, small in zip(full.nations, quarter.nations, strict=True):
        assert (small.x, small.y) == (big.x // 4, big.y // 4)
        assert 0 <= small.x < quarter.width and 0 <= small.y < quarter.height


@pytest.mark.parametrize("name", MAPS)
def test_full_scale_shoreline_and_ocean_follow_the_documented_rules(openfront_maps_dir, name):
    game_map = read_openfront_folder(openfront_maps_dir / name)
    np.testing.assert_array_equal(compute_shoreline(game_map.land), game_map.shoreline)
    np.testing.assert_array_equal(compute_ocean(game_map.land), game_map.ocean)


@pytest.mark.parametrize("name", MAPS)
def test_our_downsample_reproduces_openfronts_4x_file(openfront_maps_dir, name):
    full = read_openfront_folder(openfront_maps_dir / name, "1x")
    theirs = read_openfront_folder(openfront_maps_dir / name, "4x")
    ours = downsample_map(full, theirs.width, theirs.height)
    np.testing.assert_array_equal(ours.land, theirs.land)
    np.testing.assert_array_equal(ours.magnitude[ours.land], theirs.magnitude[theirs.land])
    np.testing.assert_array_equal(ours.ocean, theirs.ocean)
    np.testing.assert_array_equal(ours.magnitude[~ours.land], theirs.magnitude[~theirs.land])
    # Land shoreline bits agree exactly; OpenFront's downscaled files mark a few extra water tiles.
    np.testing.assert_array_equal((ours.shoreline & ours.land), (theirs.shoreline & theirs.land))


def test_earlier_systems_1024_crop(openfront_maps_dir):
    full = read_openfront_folder(openfront_maps_dir / "australia")
    window = load_map("australia:915,290,1024,1024", maps_dir=openfront_maps_dir)
    assert (window.width, window.height) == (1024, 1024)
    np.testing.assert_array_equal(window.land, full.land[290:1314, 915:1939])
    window_of_full = full.magnitude[290:1314, 915:1939]
    np.testing.assert_array_equal(window.magnitude[window.land], window_of_full[window.land])
    assert all(0 <= n.x < 1024 and 0 <= n.y < 1024 for n in window.nations)
    kept = {n.name for n in window.nations}
    expected = {n.name for n in full.nations if 915 <= n.x < 1939 and 290 <= n.y < 1314}
    assert kept == expected and kept


def test_crop_then_downsample_chain(openfront_maps_dir):
    game_map = load_map("australia@4x:400,100,512,512~128", maps_dir=openfront_maps_dir)
    assert (game_map.width, game_map.height) == (128, 128)
    direct = downsample_map(crop_map(read_openfront_folder(openfront_maps_dir / "australia", "4x"),
                                     400, 100, 512, 512), 128, 128)
    np.testing.assert_array_equal(game_map.land, direct.land)


def test_maps_dir_from_environment_and_checkout_layout(openfront_maps_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXMS_MAPS_DIR", str(openfront_maps_dir))
    assert load_map("pangaea@16x").num_land_tiles == 24369
    # An OpenFront checkout: resources/maps/<name> is searched when the checkout root is given.
    checkout = tmp_path / "OpenFrontIO"
    (checkout / "resources").mkdir(parents=True)
    (checkout / "resources" / "maps").symlink_to(openfront_maps_dir, target_is_directory=True)
    monkeypatch.delenv("JAXMS_MAPS_DIR")
    assert load_map("Pangaea@16x", maps_dir=checkout).num_land_tiles == 24369
