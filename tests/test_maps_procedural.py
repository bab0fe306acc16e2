"""Built-in procedural maps: deterministic, any size, and each generator has the character it promises."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from jaxms.maps import GENERATORS, Terrain, generate_map, load_map


def _land_masses(game_map):
    return ndimage.label(game_map.land)[1]


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_same_seed_same_map_other_seed_other_map(kind):
    a, b = load_map(f"{kind}_96"), load_map(f"{kind}_96_s0")
    np.testing.assert_array_equal(a.land, b.land)
    np.testing.assert_array_equal(a.magnitude, b.magnitude)
    if kind != "plains":
        c = load_map(f"{kind}_96_s1")
        assert not np.array_equal(a.land, c.land)


@pytest.mark.parametrize("kind", list(GENERATORS))
@pytest.mark.parametrize(("width", "height"), [(32, 32), (200, 64), (64, 200), (333, 257)])
def test_any_size_including_non_square(kind, width, height):
    game_map = generate_map(kind, width, height, seed=5)
    assert game_map.land.shape == (height, width)
    assert game_map.num_land_tiles > 0
    assert game_map.magnitude[game_map.land].max() <= 30


def test_plains_is_all_plains_land():
    game_map = load_map("plains_128x64")
    assert game_map.land.all()
    assert (game_map.terrain == Terrain.PLAINS).all()
    assert not game_map.shoreline.any() and not game_map.ocean.any()


def test_continents_have_several_masses_lakes_and_all_terrain_classes():
    game_map = load_map("continents_512")
    assert _land_masses(game_map) >= 3
    counts = game_map.terrain_counts()
    assert counts["lake"] > 0 and counts["ocean"] > counts["lake"]
    land = game_map.num_land_tiles
    assert 0.35 < land / game_map.land.size < 0.55
    for terrain in ("plains", "highland", "mountain"):
        assert counts[terrain] / land > 0.05, terrain
    assert counts["plains"] > counts["highland"] > counts["mountain"]
    # The map edge is ocean (continents stay inside the map).
    edge = np.concatenate([game_map.land[0], game_map.land[-1], game_map.land[:, 0], game_map.land[:, -1]])
    assert not edge.any()


def test_islands_have_many_small_masses():
    islands, continents = load_map("islands_512"), load_map("continents_512")
    assert _land_masses(islands) >= 20
    assert _land_masses(islands) > 2 * _land_masses(continents)
    assert islands.num_land_tiles / islands.land.size < 0.4


def test_no_tiny_islands_on_a_1000_tile_scale_map():
    game_map = generate_map("islands", 1000, seed=2)
    labels, _ = ndimage.label(game_map.land)
    assert np.bincount(labels.ravel())[1:].min() >= 30  # OpenFront's generator drops islands under 30 tiles


def test_bad_generator_arguments():
    from jaxms.maps import MapError

    with pytest.raises(MapError, match="unknown map generator"):
        generate_map("volcano", 64)
    with pytest.raises(MapError, match="non-negative"):
        generate_map("islands", 64, seed=-1)
