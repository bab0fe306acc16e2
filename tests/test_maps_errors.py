"""Every kind of bad map input gets a MapError that names the problem and the accepted forms."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from jaxms.maps import GameMap, MapError, generate_map, load_map, save_openfront_folder


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """An OpenFront-format folder written from a built-in map (no shared files needed)."""
    folder = tmp_path_factory.mktemp("maps") / "tiny"
    save_openfront_folder(generate_map("continents", 64, seed=3), folder, name="Tiny")
    return folder


def _copy(folder, tmp_path):
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


def test_unknown_name_lists_close_matches_and_builtins(small_folder):
    with pytest.raises(MapError) as error:
        load_map("tinny", maps_dir=small_folder.parent)
    message = str(error.value)
    assert "unknown map 'tinny'" in message
    assert "did you mean: tiny" in message
    assert "continents_N" in message and "islands_N" in message and "plains_N" in message
    assert str(small_folder.parent) in message


def test_unknown_builtin_like_name_suggests_generator():
    with pytest.raises(MapError, match="did you mean: continents"):
        load_map("continent")


def test_malformed_builtin_spec():
    with pytest.raises(MapError, match=r"expected KIND_SIZE\[_sSEED\]"):
        load_map("islands_big")


def test_missing_bin_file(small_folder, tmp_path):
    folder = _copy(small_folder, tmp_path)
    (folder / "map4x.bin").unlink()
    with pytest.raises(MapError, match=r"has no map4x\.bin"):
        load_map(f"{folder}@4x")
    assert load_map(str(folder)).width == 64  # the other scales still load


def test_missing_manifest(small_folder, tmp_path):
    folder = _copy(small_folder, tmp_path)
    (folder / "manifest.json").unlink()
    with pytest.raises(MapError, match=r"is not an OpenFront map folder: it has no manifest\.json"):
        load_map(str(folder))


def test_missing_path():
    with pytest.raises(MapError, match="does not exist"):
        load_map("/nonexistent/dir/australia")
    with pytest.raises(MapError, match="does not exist"):
        load_map("/nonexistent/terrain.png")


def test_bin_size_disagrees_with_manifest(small_folder, tmp_path):
    folder = _copy(small_folder, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["map"]["width"] = 65
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MapError, match=r"has 4,096 bytes but manifest.json says map is 65x64"):
        load_map(str(folder))


def test_land_count_disagrees_with_manifest(small_folder, tmp_path):
    folder = _copy(small_folder, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["map"]["num_land_tiles"] += 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MapError, match=r"land tiles but manifest\.json says map\.num_land_tiles"):
        load_map(str(folder))


def test_malformed_manifest(small_folder, tmp_path):
    folder = _copy(small_folder, tmp_path)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(MapError, match="cannot read"):
        load_map(str(folder))
    (folder / "manifest.json").write_text(json.dumps({"map": {"width": 64}}))
    with pytest.raises(MapError, match="integer width, height and num_land_tiles"):
        load_map(str(folder))


@pytest.mark.parametrize("crop", ["60,0,16,16", "0,0,65,16", "0,60,16,16"])
def test_crop_outside_the_map(crop):
    with pytest.raises(MapError, match="lies outside map"):
        load_map(f"plains_64:{crop}")


@pytest.mark.parametrize("crop", ["1,2,3", "a,b,c,d", "1,2,3,4,5", "-1,0,16,16"])
def test_malformed_crop(crop):
    with pytest.raises(MapError, match="expected :X,Y,WIDTH,HEIGHT"):
        load_map(f"plains_64:{crop}")


@pytest.mark.parametrize("spec", ["plains_15", "plains_16384x15", "plains_16385", "plains_64:0,0,15,32",
                                  "plains_64~8"])
def test_size_below_16_or_above_16384(spec):
    with pytest.raises(MapError, match="between 16 and 16384"):
        load_map(spec)


def test_downsample_cannot_upsample():
    with pytest.raises(MapError, match="only downsampling is supported"):
        load_map("plains_64~128")


def test_bad_scale_and_scale_on_builtin(small_folder):
    with pytest.raises(MapError, match="accepted scales are @1x, @4x, @16x"):
        load_map(f"{small_folder}@2x")
    with pytest.raises(MapError, match="only applies to OpenFront map folders"):
        load_map("continents_256@4x")


def test_map_with_no_land(tmp_path):
    water = np.zeros((32, 32, 4), dtype=np.uint8)
    water[..., 2] = 106
    water[..., 3] = 255
    Image.fromarray(water, mode="RGBA").save(tmp_path / "sea.png")
    with pytest.raises(MapError, match="no land"):
        load_map(str(tmp_path / "sea.png"))
    with pytest.raises(MapError, match="no land"):
        GameMap.from_terrain("sea", np.zeros((16, 16), bool), np.zeros((16, 16), np.uint8))
    with pytest.raises(MapError, match="contains no land"):
        load_map("continents_256:0,0,16,16")  # the generator keeps the map edge as ocean


def test_not_an_image(tmp_path):
    (tmp_path / "fake.png").write_text("not a png")
    with pytest.raises(MapError, match="cannot read"):
        load_map(str(tmp_path / "fake.png"))


def test_empty_spec():
    with pytest.raises(MapError, match="empty map spec"):
        load_map("  ")
