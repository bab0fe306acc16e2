"""Observations: pooling and cropping against plain-numpy references, the views' placement (local centre,
tactical window on the border that matters), channels, frame stacking, spaces and bytes, jit/vmap, the env
end to end, and rendering."""

from __future__ import annotations

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minimal_observer import MinimalObserver
from PIL import Image
from xla_options import compiled_as_users_run

from jaxms import game, load_map
from jaxms.env import make_env
from jaxms.env.observe import (
    FEATURE_NAMES,
    NUM_FEATURES,
    TRANSITION_BUDGET,
    ObsConfig,
    Observer,
)
from jaxms.env.views import AxisPlan, box_argmax, crop, fit_plans, pool_max, pool_sums
from jaxms.game.grid import first_argmax, first_argmin
from jaxms.game.structures import CITY, DEFENSE_POST
from jaxms.render import render_observation, render_state, save_views

# Two maps of one shape (so one compile serves both): open plains for geometry, islands for water.
PLAINS = load_map("plains_256x128")
ISLANDS = load_map("islands_256x128_s1")
PLAINS_ARRAYS, ISLANDS_ARRAYS = game.map_arrays(PLAINS), game.map_arrays(ISLANDS)
CONFIG = ObsConfig.for_map(128, 256)  # global 64 (4x4 tiles a cell), local 128 -> 64, tactical 32
OBSERVER = Observer(CONFIG)
init = jax.jit(OBSERVER.init)
observe = jax.jit(OBSERVER.observe)
locate = jax.jit(OBSERVER.locate)
MASK = jnp.ones(45, bool)
# The agent, two tribes and a nation (the nation gives the game structure slots).
BASE = game.new_game(jax.random.key(0), PLAINS_ARRAYS, ["human", "tribe", "tribe", "nation"],
                     spawns=[(20, 20), (60, 20), (100, 20), (140, 20)])


def blank(arrays):
    """A game like BASE (same players) on another map (any shape): a start for `set_territory`."""
    return game.new_game(jax.random.key(0), arrays, ["human", "tribe", "tribe", "nation"],
                         spawns=[(5, 5), (15, 5), (25, 5), (35, 5)])


def channel(view, name: str) -> np.ndarray:
    return np.asarray(view)[..., CONFIG.channel_names.index(name)]


def scenario(owner: np.ndarray, arrays=PLAINS_ARRAYS, troops=(50_000, 20_000, 30_000, 40_000), attacks=()):
    """BASE with territory `owner` (water tiles dropped), the players' troops, and the agent's attacks
    as (target, troops) pairs."""
    state = game.set_territory(BASE, owner, arrays, troops=list(troops))
    matrix = np.zeros(state.attacks.shape, np.float32)
    for target, amount in attacks:
        matrix[1, target] = amount
    return state.replace(attacks=jnp.asarray(matrix))


def window_starts(features, config: ObsConfig, shape) -> list[tuple[int, int]]:
    """(y, x) first tiles of the local and tactical windows, from the newest frame's position features."""
    newest = np.asarray(features)[-NUM_FEATURES:]
    starts = []
    for name, size in (("local", config.local_view_size), ("tactical", config.tactical_size)):
        centre = [newest[FEATURE_NAMES.index(f"{name}_{axis}")] * side
                  for axis, side in zip("yx", shape, strict=True)]
        starts.append(tuple(round(c - size / 2) for c in centre))
    return starts


def border_tiles(owner: np.ndarray, land: np.ndarray, who=None) -> np.ndarray:
    """bool[H, W] numpy reference: agent tiles 4-adjacent to land not owned by the agent (or by `who`)."""
    mine = owner == 1
    other = land & ((owner != 1) if who is None else (owner == who))
    padded = np.pad(other, 1)
    near = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    return mine & near


# ---------------------------------------------------------------------------------------------------------
# Configuration and sizes
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "message"), [
    ({"mode": "triple"}, "mode='triple' is not accepted: use one of multi, single"),
    ({"global_size": 4}, "global_size must be an integer in 8..4096"),
    ({"tactical_size": 64.0}, "tactical_size must be an integer"),
    ({"local_view_size": 64, "local_size": 128}, "must be >= local_size"),
    ({"frame_stack": 0}, "frame_stack must be an integer in 1..16"),
    ({"stacked_channels": ("own", "bogus")}, "stacked_channels"),
])
def test_bad_configs_are_refused_with_a_clear_message(fields, message):
    with pytest.raises(ValueError, match=message):
        ObsConfig(**fields)


def test_env_construction_errors():
    with pytest.raises(ValueError, match="either observer= or obs="):
        make_env("plains_64x48", num_bots=2, observer=MinimalObserver(), obs="multi")
    # Multi-scale is the default observation, so a local view size needs no obs=.
    assert make_env("plains_64x48", num_bots=2, local_view_size=128).config.obs.local_view_size == 128
    with pytest.raises(ValueError, match="obs must be 'multi', 'single' or an ObsConfig"):
        make_env("plains_64x48", num_bots=2, obs=3)


@pytest.mark.parametrize(("shape", "sizes"), [
    ((128, 128), (64, 64, 64, 32)), ((48, 64), (64, 64, 64, 32)), ((128, 256), (64, 128, 64, 32)),
    ((512, 300), (128, 128, 128, 64)), ((1024, 1024), (128, 256, 128, 64)),
    ((2048, 4096), (128, 512, 128, 64)),
])
def test_presets_pick_smaller_views_for_small_maps(shape, sizes):
    config = ObsConfig.for_map(*shape)
    assert (config.global_size, config.local_view_size, config.local_size, config.tactical_size) == sizes
    assert ObsConfig.for_map(*shape, local_view_size=48).local_size <= 48  # an override stays valid


def test_bytes_per_transition_fit_the_budget():
    multi, single = ObsConfig.for_map(1024, 1024), ObsConfig.for_map(1024, 1024, mode="single")
    with pytest.raises(ValueError, match="view sizes follow the map"):
        _ = ObsConfig().nbytes  # unsized: its sizes are chosen per map
    assert multi.bytes_per_view() == {"global_map": 278_528, "local_map": 278_528, "tactical_map": 69_632,
                                      "features": 288, "action_mask": 45}
    assert multi.nbytes == 627_021 <= TRANSITION_BUDGET
    assert single.nbytes == 278_861
    assert Observer(multi).space((1024, 1024)).nbytes == multi.nbytes
    assert multi.num_channels == 17 and multi.num_features == 4 * NUM_FEATURES == 72
    assert multi.channel_names[:2] == ("own@t-3", "enemy@t-3")
    assert multi.channel_names[-2:] == ("water", "terrain")


# ---------------------------------------------------------------------------------------------------------
# Pooling and cropping against numpy references
# ---------------------------------------------------------------------------------------------------------


def overlaps(plan: AxisPlan) -> np.ndarray:
    """float64[cells, size]: length of tile t's interval [t, t + 1) inside cell i's interval (exact
    fractions, so a boundary on a tile edge gives no sliver)."""
    result = np.zeros((plan.cells, plan.size))
    for i in range(plan.cells):
        low, high = (i - plan.offset) * plan.scale, (i - plan.offset + 1) * plan.scale
        for t in range(plan.size):
            result[i, t] = float(max(Fraction(0), min(high, Fraction(t + 1)) - max(low, Fraction(t))))
    return result


def reference_pools(values: np.ndarray, plan_y: AxisPlan, plan_x: AxisPlan) -> tuple[np.ndarray, np.ndarray]:
    """(area-weighted mean, max over overlapping tiles) by plain loops."""
    oy, ox = overlaps(plan_y), overlaps(plan_x)
    mean = oy @ values.astype(np.float64) @ ox.T / (float(plan_y.scale) * float(plan_x.scale))
    maximum = np.zeros((plan_y.cells, plan_x.cells), values.dtype)
    for i in range(plan_y.cells):
        for j in range(plan_x.cells):
            rows, cols = np.nonzero(oy[i] > 0)[0], np.nonzero(ox[j] > 0)[0]
            if len(rows) and len(cols):
                maximum[i, j] = values[np.ix_(rows, cols)].max()
    return mean, maximum


def check_pooling(plan_y: AxisPlan, plan_x: AxisPlan, seed: int) -> None:
    rng = np.random.default_rng(seed)
    flags = rng.random((plan_y.size, plan_x.size)) < rng.random()
    values = rng.integers(0, 256, (plan_y.size, plan_x.size)).astype(np.uint8)
    pooled = jax.jit(lambda f, v: (pool_sums([(f, 1), (v, 255)], plan_y, plan_x),
                                   pool_max(v, plan_y, plan_x)))
    means, value_max = pooled(flags, values)
    flag_reference = reference_pools(flags.astype(np.uint8), plan_y, plan_x)[0]
    np.testing.assert_allclose(means[..., 0], flag_reference, atol=1e-5)
    mean, maximum = reference_pools(values, plan_y, plan_x)
    np.testing.assert_allclose(means[..., 1], mean, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(value_max, maximum)


@settings(max_examples=15)
@given(height=st.integers(8, 48), width=st.integers(8, 48), cells=st.integers(4, 40), seed=st.integers(0, 99))
def test_global_pooling_matches_numpy(height, width, cells, seed):
    """The whole grid into cells x cells: divisible, fractional and padded (non-square or small) cases."""
    check_pooling(*fit_plans(height, width, cells), seed)


@settings(max_examples=15)
@given(size=st.integers(8, 48), cells=st.integers(4, 48), seed=st.integers(0, 99))
def test_window_pooling_matches_numpy(size, cells, seed):
    """A local window of `size` tiles pooled to `cells` (any ratio >= 1, including non-integer ones)."""
    cells = min(cells, size)
    plan = AxisPlan(size, cells, Fraction(size, cells))
    check_pooling(plan, plan, seed)


def test_divisible_pooling_takes_the_packed_fast_path_and_stays_exact():
    plan_y, plan_x = fit_plans(1024, 1024, 128)
    assert plan_y.block == plan_x.block == 8
    check_pooling(*fit_plans(96, 64, 32), seed=1)  # 3x3 blocks, the short axis centred
    assert fit_plans(100, 70, 32)[0].block is None  # fractional windows


@settings(max_examples=25)
@given(height=st.integers(1, 30), width=st.integers(1, 30), size_y=st.integers(1, 40),
       size_x=st.integers(1, 40), y=st.integers(-50, 50), x=st.integers(-50, 50))
def test_crop_matches_numpy_at_edges_and_on_small_grids(height, width, size_y, size_x, y, x):
    grid = np.arange(height * width, dtype=np.int32).reshape(height, width) + 1
    window, start = crop(jnp.asarray(grid), (jnp.int32(y), jnp.int32(x)), (size_y, size_x), fill=0)
    expected = np.zeros((size_y, size_x), np.int32)
    starts = []
    for side, size, want in ((height, size_y, y), (width, size_x, x)):
        starts.append(min(max(want, 0), side - size) if side >= size else -((size - side) // 2))
    for i in range(size_y):
        for j in range(size_x):
            gy, gx = starts[0] + i, starts[1] + j
            if 0 <= gy < height and 0 <= gx < width:
                expected[i, j] = grid[gy, gx]
    assert tuple(np.asarray(start)) == tuple(starts)
    np.testing.assert_array_equal(window, expected)


@settings(max_examples=15)
@given(size=st.integers(3, 20), box=st.integers(1, 25), seed=st.integers(0, 99))
def test_box_argmax_finds_the_largest_box_sum(size, box, seed):
    values = np.random.default_rng(seed).integers(0, 5, (size, size)).astype(np.float32)
    corner, best = box_argmax(jnp.asarray(values), box)
    b = min(box, size)
    sums = [values[i:i + b, j:j + b].sum() for i in range(size - b + 1) for j in range(size - b + 1)]
    assert float(best) == max(sums)
    i, j = (int(v) for v in corner)
    assert values[i:i + b, j:j + b].sum() == max(sums)
    first = int(np.argmax(sums))  # ties: the first in row-major order
    assert (i, j) == divmod(first, size - b + 1)


@settings(max_examples=25)
@given(shape=st.sampled_from([(1,), (7,), (3, 5), (40, 33), (2, 3, 4)]), top=st.integers(0, 3),
       seed=st.integers(0, 999), dtype=st.sampled_from([np.float32, np.int32, np.uint8]))
def test_first_argmax_and_argmin_are_numpys_ties_included(shape, top, seed, dtype):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, top + 1, shape).astype(dtype)  # few distinct values: many ties
    if dtype == np.float32 and seed % 3 == 0:
        values[values == top] = np.inf
    assert int(first_argmax(jnp.asarray(values))) == int(np.argmax(values))
    assert int(first_argmin(jnp.asarray(values))) == int(np.argmin(values))


# ---------------------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------------------


def test_five_tiles_are_visible_in_the_global_view_of_a_1024_map():
    """8x8 cells: one tile is 4/255 of a cell, never rounded away; the local window is centred on them and
    the tactical window holds their border."""
    big = load_map("plains_1024x1024")
    arrays = game.map_arrays(big)
    base = blank(arrays)
    owner = np.zeros((1024, 1024), np.uint8)
    tiles = [(511, 511), (511, 512), (512, 511), (512, 512), (600, 300)]  # four straddle a cell corner
    for y, x in tiles:
        owner[y, x] = 1
    owner[:100, :] = 2  # a tribe far away
    state = game.set_territory(base, owner, arrays, troops=[50_000, 20_000, 30_000, 40_000])
    config = ObsConfig.for_map(1024, 1024)
    observer = Observer(config)
    obs, _ = jax.jit(observer.init)(state, arrays, MASK)
    names = config.channel_names
    own = np.asarray(obs["global_map"])[..., names.index("own@t")]
    cells = {(y // 8, x // 8) for y, x in tiles}
    assert {tuple(c) for c in np.argwhere(own > 0)} == cells
    assert all(own[c] == 4 for c in cells)  # 1 tile of 64 = 3.98 -> 4
    troops = np.asarray(obs["global_map"])[..., names.index("own_troops")]
    assert all(troops[c] > 0 for c in cells) and (troops[own == 0] == 0).all()
    (ly, lx), (ty, tx) = window_starts(obs["features"], config, (1024, 1024))
    # The local window is centred on the agent's land (the centroid of the five tiles, both parts fit one
    # local-window-sized box), on cell centres of the global grid: within a cell of it.
    assert np.abs(np.array([ly, lx]) + 128 - np.mean(tiles, axis=0) - 0.5).max() <= 8
    local_own = np.asarray(obs["local_map"])[..., names.index("own@t")]
    assert local_own.sum() == 4 * 64  # the 2x2 block (2x2 tiles a cell: a tile is 64/255); not (600, 300)
    assert border_tiles(owner, np.asarray(big.land))[ty:ty + 64, tx:tx + 64].any()


def test_local_window_is_centred_on_the_largest_part_not_the_mean():
    owner = np.zeros((128, 256), np.uint8)
    owner[40:80, 10:50] = 1  # the main part (1600 tiles), west
    owner[60:66, 230:236] = 1  # a far outpost (36 tiles), east
    owner[0:10, 100:110] = 2
    where = locate(scenario(owner), PLAINS_ARRAYS)
    y0, x0 = np.asarray(where["local_start"])
    centre = np.array([y0, x0]) + CONFIG.local_view_size / 2
    # The centre of the main part is (60, 30): the window starts at the map's west edge (clamped).
    assert x0 == 0 and abs(centre[0] - 60) <= 4
    assert owner[y0:y0 + 128, x0:x0 + 128][40:80].sum() >= 1600  # all of the main part is inside


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_tactical_window_holds_agent_border_tiles_of_the_front_that_matters(data):
    """Random territories (rectangles) on the islands map, random troops and attack target: whenever the
    agent has a border, the tactical window contains agent border tiles; and they are on the attack's front
    when the target touches the agent, else on the border with the strongest touching enemy."""
    land = np.asarray(ISLANDS.land)
    owner = np.zeros((128, 256), np.uint8)
    for player in (2, 3, 4, 1, 1):  # the agent last (twice): it may overwrite the others
        y, x = data.draw(st.integers(0, 120)), data.draw(st.integers(0, 250))
        h, w = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 60))
        owner[y:y + h, x:x + w] = player
    owner[~land] = 0
    troops = data.draw(st.permutations([50_000, 20_000, 30_000, 40_000]))
    target = data.draw(st.sampled_from([None, 0, 2, 3, 4]))
    attacks = [] if target is None else [(target, 1_000)]
    state = scenario(owner, ISLANDS_ARRAYS, troops=troops, attacks=attacks)
    where = locate(state, ISLANDS_ARRAYS)
    y0, x0 = (int(v) for v in where["tactical_start"])
    size = CONFIG.tactical_size
    assert 0 <= y0 <= 128 - size and 0 <= x0 <= 256 - size

    def in_window(mask):
        return mask[y0:y0 + size, x0:x0 + size].any()

    border = border_tiles(owner, land)
    if not border.any():
        return
    assert in_window(border)
    alive = {p for p in (2, 3, 4) if (owner == p).any()}
    if target is not None and (target == 0 or target in alive) and border_tiles(owner, land, target).any():
        assert int(where["attack_target"]) == target
        assert in_window(border_tiles(owner, land, target))
        return
    touching = [p for p in alive if border_tiles(owner, land, p).any()]
    if touching:
        strongest = max(touching, key=lambda p: troops[p - 1])
        assert in_window(border_tiles(owner, land, strongest))


def test_channels_water_unowned_troops_structures_and_padding():
    owner = np.zeros((128, 256), np.uint8)
    land = np.asarray(ISLANDS.land)
    owner[30:70, 30:90] = 1
    owner[60:100, 150:220] = 3
    owner[~land] = 0
    state = scenario(owner, ISLANDS_ARRAYS)
    ys, xs = np.nonzero(owner == 1)
    state = state.replace(  # an own city (ready), an enemy defense post (ready), an own city being built
        structure_kind=state.structure_kind.at[:3].set(jnp.array([CITY, DEFENSE_POST, CITY], jnp.int8)),
        structure_owner=state.structure_owner.at[:3].set(jnp.array([1, 3, 1], jnp.uint8)),
        structure_pos=state.structure_pos.at[:3].set(
            jnp.array([[ys[0], xs[0]], [80, 180], [ys[-1], xs[-1]]])),
        structure_ready=state.structure_ready.at[:3].set(jnp.array([0, 0, 10_000])))
    obs, _ = init(state, ISLANDS_ARRAYS, MASK)
    view = obs["global_map"]
    water, unowned = channel(view, "water").astype(int), channel(view, "unowned").astype(int)
    own, enemy = channel(view, "own@t").astype(int), channel(view, "enemy@t").astype(int)
    # 256 x 128 into 64 x 64 (4 x 4 tiles a cell): the map fills rows 16..47, the rest is padding.
    assert not view[:16].any() and not view[48:].any()
    total = (water + unowned + own + enemy)[16:48]
    assert (np.abs(total - 255) <= 3).all()  # the four fractions cover every cell of the map
    assert (unowned[water == 255] == 0).all() and (water > 0).any() and (unowned > 0).any()
    for troops, territory in ((channel(view, "own_troops"), own), (channel(view, "enemy_troops"), enemy)):
        assert ((troops > 0) == (territory > 0)).all()
    own_structures, enemy_structures = channel(view, "own_structures"), channel(view, "enemy_structures")
    assert own_structures[16 + ys[0] // 4, xs[0] // 4] == 255
    assert own_structures[16 + ys[-1] // 4, xs[-1] // 4] == 85
    assert enemy_structures[16 + 80 // 4, 180 // 4] == 170
    assert (own_structures > 0).sum() == 2 and (enemy_structures > 0).sum() == 1
    # The tactical view is at full resolution: a tile's channels are 0 or 255.
    tactical = np.asarray(obs["tactical_map"])
    assert set(np.unique(channel(tactical, "own@t"))) <= {0, 255}
    assert channel(tactical, "border").any()


def test_a_map_smaller_than_every_window_is_padded_not_an_error():
    small = load_map("plains_64x48")
    arrays = game.map_arrays(small)
    base = blank(arrays)
    owner = np.zeros((48, 64), np.uint8)
    owner[10:20, 10:20] = 1
    state = game.set_territory(base, owner, arrays, troops=[50_000, 20_000, 30_000, 40_000])
    config = ObsConfig.for_map(1024, 1024)  # views 128, 256 -> 128, 64: all larger than the map
    obs, _ = jax.jit(Observer(config).init)(state, arrays, MASK)
    assert Observer(config).space((48, 64)).contains(jax.device_get(obs))
    land = np.asarray(obs["global_map"])[..., config.channel_names.index("unowned")]
    rows, cols = np.nonzero(land)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (40, 87, 32, 95)  # centred, one tile a cell
    tactical = np.asarray(obs["tactical_map"])
    assert not tactical[:8].any() and not tactical[56:].any() and tactical[8:56].any()


def test_a_map_that_does_not_divide_into_the_view_uses_fractional_windows():
    odd = load_map("plains_100x70")
    arrays = game.map_arrays(odd)
    base = blank(arrays)
    owner = np.zeros((70, 100), np.uint8)
    owner[11:30, 7:40] = 1  # 627 tiles, edges off the 1.5625-tile cell grid
    state = game.set_territory(base, owner, arrays, troops=[50_000, 20_000, 30_000, 40_000])
    config = ObsConfig.for_map(70, 100)  # global 64: 1.5625 tiles a cell
    assert fit_plans(70, 100, 64)[1].block is None
    obs, _ = jax.jit(Observer(config).init)(state, arrays, MASK)
    assert Observer(config).space((70, 100)).contains(jax.device_get(obs))
    own = np.asarray(obs["global_map"])[..., config.channel_names.index("own@t")].astype(float) / 255
    assert abs(own.sum() * 1.5625**2 - 627) < 0.01 * 627  # area is kept (up to the uint8 rounding)


# ---------------------------------------------------------------------------------------------------------
# Frames, spaces, jit and vmap
# ---------------------------------------------------------------------------------------------------------


def territories(count: int) -> list:
    """`count` states whose agent owns a growing square (so each frame differs)."""
    states = []
    for k in range(count):
        owner = np.zeros((128, 256), np.uint8)
        owner[50:60 + 8 * k, 100:110 + 8 * k] = 1
        owner[0:20, 0:20] = 2
        states.append(scenario(owner))
    return states


def test_frame_stack_is_oldest_first_and_starts_with_copies():
    states = territories(5)
    obs, memory = init(states[0], PLAINS_ARRAYS, MASK)
    frames = [obs]
    for state in states[1:]:
        obs, memory = observe(state, PLAINS_ARRAYS, MASK, memory)
        frames.append(obs)
    own = [np.asarray(channel(f["global_map"], "own@t")) for f in frames]
    share = FEATURE_NAMES.index("land_share")
    for n, obs in enumerate(frames):
        for k in range(4):  # slot k of the stack holds frame max(n - 3 + k, 0)
            name = f"own@t-{3 - k}" if k < 3 else "own@t"
            source = max(n - 3 + k, 0)
            np.testing.assert_array_equal(channel(obs["global_map"], name), own[source])
            np.testing.assert_allclose(obs["features"][k * NUM_FEATURES + share],
                                       frames[source]["features"][3 * NUM_FEATURES + share])
    assert len({int(o.sum()) for o in own}) == 5
    change = FEATURE_NAMES.index("share_change")
    assert frames[0]["features"][-NUM_FEATURES + change] == 0 < frames[1]["features"][-NUM_FEATURES + change]


def test_every_feature_is_computed_from_the_game():
    owner = np.zeros((128, 256), np.uint8)
    owner[40:80, 100:160] = 1  # 2400 tiles: the largest
    owner[40:80, 160:180] = 2  # touching the agent, attacking it
    owner[0:10, 0:10] = 3
    owner[120:128, 0:10] = 4
    state = scenario(owner, attacks=[(2, 5_000)])
    state = state.replace(attacks=state.attacks.at[2, 1].set(10_000.0), tick=jnp.int32(5_000))
    obs, _ = init(state, PLAINS_ARRAYS, MASK)
    f = dict(zip(FEATURE_NAMES, np.asarray(obs["features"][-NUM_FEATURES:]).tolist(), strict=True))
    assert 0 < f["troops_ratio"] < 1 and 0 < f["max_troops_log"] < 1 and f["troop_growth_per_tile"] > 0
    assert f["land_share"] == pytest.approx(2400 / (128 * 256))
    assert f["share_change"] == 0 and f["rank"] == 0  # first frame; the agent has the most land
    assert f["border_pressure"] == pytest.approx(10_000 / 60_000)  # x / (1 + x), x = 10,000 / 50,000
    assert f["committed_troops"] == pytest.approx(5_000 / 55_000)
    assert 0 < f["troops_per_tile"] < 1 and f["time"] == pytest.approx(0.05) and f["alive_players"] == 1
    # From the agent's centre (60, 130) to the attacker's land from x = 160, on 4-tile cells.
    assert f["threat_distance"] == pytest.approx(30 / np.hypot(128, 256), abs=0.02)
    assert all(0 <= f[name] <= 1 for name in ("local_y", "local_x", "tactical_y", "tactical_x"))
    assert 150 <= f["tactical_x"] * 256 <= 170  # the tactical window is on the attacked front


@pytest.mark.parametrize("mode", ["multi", "single"])
def test_observations_match_their_space(mode):
    observer = Observer(ObsConfig.for_map(128, 256, mode))
    obs, _ = jax.jit(observer.init)(territories(1)[0], PLAINS_ARRAYS, MASK)
    space = observer.space((128, 256))
    assert set(obs) == set(space.spaces) and space.contains(jax.device_get(obs))
    assert space.nbytes == sum(np.asarray(v).nbytes for v in obs.values()) == observer.config.nbytes
    assert all(np.asarray(v).dtype == np.uint8 for k, v in obs.items() if k.endswith("map"))
    assert np.isfinite(np.asarray(obs["features"])).all() and np.asarray(obs["features"]).any()


def test_jit_and_vmap_agree():
    states = territories(2)
    batched = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
    # Compiled with XLA's defaults, as a user's are: the suite's -O0 may round a vmapped program an ulp
    # apart from its single-env form (tests/xla_options.py).
    vinit = compiled_as_users_run(jax.jit(jax.vmap(OBSERVER.init, in_axes=(0, None, None))), batched,
                                  PLAINS_ARRAYS, MASK)
    one_init = compiled_as_users_run(init, states[0], PLAINS_ARRAYS, MASK)
    obs, memory = vinit(batched, PLAINS_ARRAYS, MASK)
    for i, state in enumerate(states):
        one, one_memory = one_init(state, PLAINS_ARRAYS, MASK)
        for name in one:
            np.testing.assert_array_equal(obs[name][i], one[name], err_msg=name)
        jax.tree.map(lambda b, o, i=i: np.testing.assert_array_equal(b[i], o), memory, one_memory)


@pytest.mark.parametrize("arrays", [PLAINS_ARRAYS, ISLANDS_ARRAYS], ids=["plains", "islands"])
def test_large_map_path_pools_band_by_band_to_the_same_observation(arrays, monkeypatch):
    """A large map pools its global view band by band from the board and makes its windows' grids from
    crops of it (`observe._band_cells`): bit for bit the observation of the whole-grid path. Forced here on a
    small map, in bands of 2 cell rows (8 tile rows), with blocky random territories (borders everywhere,
    the agent attacking player 2) on a non-square map (the global view's rows are padded)."""
    from jaxms.env import observe as observe_module

    rng = np.random.default_rng(5)
    states = []
    for k in range(2):
        coarse = rng.integers(0, 4, (16, 32)).astype(np.uint8)
        owner = np.kron(coarse, np.ones((8, 8), np.uint8))
        owner[rng.random(owner.shape) < 0.05] = 0  # holes: unowned land inside territories
        start = game.new_game(jax.random.key(k), arrays, ["human", "tribe", "tribe", "nation"])  # its terrain
        states.append(game.set_territory(start, owner, arrays, troops=[50_000, 20_000, 30_000 + k, 40_000])
                      .replace(attacks=jnp.zeros(start.attacks.shape).at[1, 2].set(500.0)))
    plan_y, plan_x = fit_plans(128, 256, CONFIG.global_size)
    window = max(CONFIG.local_view_size, CONFIG.tactical_size)
    assert observe_module._band_cells(plan_y, plan_x, window) is None  # a small map: whole grids

    def observations():
        first = jax.jit(lambda s, a: OBSERVER.init(s, a, MASK))
        then = jax.jit(lambda s, a, m: OBSERVER.observe(s, a, MASK, m))
        obs, memory = first(states[0], arrays)
        return obs, then(states[1], arrays, memory)[0]

    whole = observations()
    monkeypatch.setattr(observe_module, "BANDED_MIN_TILES", 1)
    monkeypatch.setattr(observe_module, "BAND_TILES", 3 * 4 * 256)  # 3 cell rows: 32 rows -> bands of 2
    assert observe_module._band_cells(plan_y, plan_x, window) == 2
    banded = observations()
    for one, other in zip(whole, banded, strict=True):
        for name in one:
            if name == "features":  # float32, the suite's -O0 may round two programs an ulp apart
                np.testing.assert_allclose(one[name], other[name], rtol=1e-6, err_msg=name)
            else:
                np.testing.assert_array_equal(one[name], other[name], err_msg=name)
    border = channel(whole[1]["global_map"], "border")
    assert (border > 0).sum() > 100 and (channel(whole[1]["tactical_map"], "own@t") > 0).any()


# ---------------------------------------------------------------------------------------------------------
# The env end to end, rendering
# ---------------------------------------------------------------------------------------------------------


def test_env_steps_with_multi_scale_observations():
    env = make_env("plains_64x48", num_bots=2, max_steps=3, reset_pool_size=2, obs="multi")
    params = env.default_params
    space = env.observation_space()
    assert set(space.spaces) == {"global_map", "local_map", "tactical_map", "features", "action_mask"}
    assert space.contains(jax.device_get(jax.tree.map(lambda leaf: leaf[0], params.pool_obs)))
    # Two envs, as the env builds its reset pool (the same program, so compiled once).
    keys = jax.random.split(jax.random.key(0), 2)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    own = env.observer.config.channel_names.index("own@t")
    for i in range(4):  # the third step truncates and auto-resets
        one = jax.device_get(jax.tree.map(lambda leaf: leaf[1], obs))
        assert space.contains(one)
        action = jnp.argmax(obs["action_mask"] & (jnp.arange(45) < 40), axis=1)  # the first legal direction
        obs, state, _reward, done, info = step(jax.random.split(jax.random.key(i), 2), state, action, params)
        assert np.asarray(done).tolist() == [i == 2] * 2
        assert np.asarray(info["final_observation"]["tactical_map"])[..., own].any()
    assert int(state.steps[0]) == 1


def test_render_writes_a_png_of_the_views(tmp_path):
    state = territories(1)[0]
    obs, _ = init(state, PLAINS_ARRAYS, MASK)
    path = save_views(jax.device_get(obs), CONFIG, tmp_path / "views.png", map_shape=(128, 256), troops=True)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (3 * 256, 2 * (256 + 14)) and image.mode == "RGB"
        pixels = np.asarray(image)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 5  # not blank
    batched = jax.tree.map(lambda v: np.stack([v, v]), jax.device_get(obs))
    assert render_observation(batched, CONFIG, index=1, panel_size=64).size == (3 * 64, 64 + 14)
    single = Observer(ObsConfig.for_map(128, 256, "single"))
    image = render_state(single, state, PLAINS_ARRAYS, tmp_path / "state.png")
    assert (tmp_path / "state.png").is_file() and image.size == (256, 256 + 14)
