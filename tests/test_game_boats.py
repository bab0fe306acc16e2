"""Transport boats and the game timer: launch, landing, retreat, the cap of 3, travel times, the agent's
boat directions, and a boat crossing against the plain-Python reference engine."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytrees import assert_same_trees

from benchmarks.bench_boats import exact_distances
from jaxms import game, load_map
from jaxms.game import boats
from jaxms.game.bots import scripted_bots
from jaxms.maps.types import GameMap
from tests.reference.engine import ReferenceGame

# Two islands, 12 water tiles apart at row 16: the agent's spawn disk reaches the west island's east shore.
LAND = np.zeros((32, 48), bool)
LAND[4:28, 2:18] = True
LAND[4:28, 30:46] = True
TWO_ISLANDS = GameMap.from_terrain("two_islands", LAND, np.zeros(LAND.shape, np.uint8))
ARRAYS = game.map_arrays(TWO_ISLANDS)
SPAWN = (15, 16)
LANDING = 16 * 48 + 30  # (x 30, y 16): the east island's west shore
RULES = game.Rules()
tick = jax.jit(game.tick, static_argnums=(2,))




def run(state, arrays, n, rules=RULES):
    """n ticks, one compiled tick called n times (one compilation whatever n: this file stays fast)."""
    for _ in range(n):
        state = tick(state, arrays, rules)
    return state


def fresh(kinds=("human", "human"), spawns=(SPAWN, (40, 16))):
    return game.new_game(jax.random.key(0), ARRAYS, list(kinds), spawns=list(spawns))


def west_island_owned(state):
    """Player 1 holds the whole west island (so its only border with unowned land is what a boat makes)."""
    owner = np.asarray(state.owner).copy()
    owner[:, :24] = np.where(LAND[:, :24], 1, 0)
    return game.set_territory(state, owner, ARRAYS)


def test_map_tables():
    assert not bool(game.map_arrays(load_map("plains_32")).shore.any())  # no water, no boats
    shore = np.asarray(ARRAYS.shore)
    assert shore[16, 17] and shore[16, 30] and not shore[16, 10]
    assert set(np.unique(np.asarray(ARRAYS.water_body))) == {0, 1}


def test_a_map_without_water_compiles_boats_out_and_plays_the_same():
    """`MapArrays.water` False (no shore) leaves the boat phases out of the program: the games are those of
    the same map with them compiled in (bots decide, nations roll their random boats), and a boat order
    is dropped at the tick's end as a launch with no shore would drop it."""
    plains = game.map_arrays(load_map("plains_32"))
    assert ARRAYS.water and not plains.water
    start = game.new_game(jax.random.key(3), plains, ["human", "tribe", "tribe", "nation", "nation"])
    start = boats.order_boat(start, 1, 5 * 32 + 5, 100.0)
    for player in range(1, 6):
        start = game.launch_attack(start, player, 0, 0.4 * start.troops[player])
    run_ticks = jax.jit(game.run_ticks, static_argnums=(2,), static_argnames=("bots",))
    without = run_ticks(start, plains, 150, bots=scripted_bots)
    compiled_in = run_ticks(start, plains.replace(water=True), 150, bots=scripted_bots)
    assert int(without.tick) == 150 and float(without.boat_order_troops.sum()) == 0.0
    assert_same_trees(without, compiled_in)


def test_launch_travel_and_landing():
    state = boats.order_boat(fresh(), 1, LANDING, 5_000)
    troops = float(state.troops[1])
    state = tick(state, ARRAYS, RULES)
    assert float(state.boat_troops[1, 0]) == 5_000 and int(boats.boats_in_flight(state)[1]) == 1
    assert int(state.boat_src[1, 0]) == 16 * 48 + 17  # the agent's shore tile nearest by water
    assert int(state.boat_arrive[1, 0]) == 14  # launched at tick 0, 13 moves (x 17 -> 30), lands the next
    assert float(state.troops[1]) < troops - 4_000  # the troops left (growth added a little)
    state = run(state, ARRAYS, 14)  # ticks 1..14: lands during tick 14
    assert int(state.owner.ravel()[LANDING]) == 1 and float(state.boat_troops.sum()) == 0
    assert float(state.attacks[1, 0]) == 5_000  # the boat's troops now attack unowned land
    before = int(state.tiles[1])
    state = run(state, ARRAYS, 5)
    assert int(state.tiles[1]) > before + 5  # the beachhead grows


def test_cap_of_three_and_troops_kept_when_refused():
    state = fresh()
    for _ in range(4):
        state = tick(boats.order_boat(state, 1, LANDING, 1_000), ARRAYS, RULES)
    assert int(boats.boats_in_flight(state)[1]) == 3
    assert float(state.boat_troops[1].sum()) == 3_000


def test_retreat_brings_75_percent_home():
    state = tick(boats.order_boat(fresh(), 1, LANDING, 4_000), ARRAYS, RULES)
    state = run(state, ARRAYS, 4)
    state = boats.retreat_boat(state, 1, 0)
    assert int(state.boat_dst[1, 0]) == 16 * 48 + 17 and int(state.boat_arrive[1, 0]) == 5 + 5
    troops = float(state.troops[1])
    state = run(state, ARRAYS, 6)
    assert float(state.boat_troops.sum()) == 0
    grown = float(game.grow(state, game.Rules()).troops[1] - state.troops[1])  # about one tick's growth
    gained = float(state.troops[1]) - troops
    assert 3_000 <= gained <= 3_000 + 7 * max(grown, 400)


def test_unreachable_or_own_landing_launches_nothing():
    state = fresh()
    own = 16 * 48 + 17
    state = tick(boats.order_boat(state, 1, own, 1_000), ARRAYS, RULES)  # its own tile
    inland = 16 * 48 + 38  # not a shore tile
    state = tick(boats.order_boat(state, 1, inland, 1_000), ARRAYS, RULES)
    assert int(boats.boats_in_flight(state)[1]) == 0


def test_timer_ends_the_game_with_the_leader():
    state = fresh()
    assert int(run(state, ARRAYS, 25).winner) == 0  # the default timer is 102,000 ticks
    timed = game.Rules(max_timer_ticks=20)
    owner = np.asarray(state.owner).copy()
    owner[5:10, 35:45] = 2  # player 2 leads
    state = game.set_territory(state, owner, ARRAYS)
    assert int(game.check_win(state.replace(tick=jnp.int32(19)), ARRAYS, timed).winner) == 0
    assert int(game.check_win(state.replace(tick=jnp.int32(20)), ARRAYS, timed).winner) == 2
    assert int(game.leader(state)) == 2
    assert game.Rules(max_timer_ticks=None).max_timer_ticks == 0
    with pytest.raises(ValueError, match="max_timer_ticks"):
        game.Rules(max_timer_ticks=-1)


def test_water_distance_exact_on_small_maps_and_close_on_larger():
    for spec in ("islands_64_s3", "islands_256"):
        game_map = load_map(spec)
        arrays = game.map_arrays(game_map)
        land, body = np.asarray(arrays.land), np.asarray(arrays.water_body)
        shore = np.flatnonzero(np.asarray(arrays.shore) & (body > 0))
        rng = np.random.default_rng(0)
        errors = []
        estimate = jax.jit(lambda a, d: boats.water_distances(a, d)[0])
        for dst in rng.choice(shore, 3, replace=False):
            exact = exact_distances(land, body, int(dst))
            same = shore[(body.ravel()[shore] == body.ravel()[dst]) & (exact[shore] > 0)]
            est = np.asarray(estimate(arrays, jnp.int32(dst))).ravel()
            errors += list(np.abs(est[same] - exact[same]) / exact[same])
        errors = np.asarray(errors)
        if spec == "islands_64_s3":  # k = 1: the coarse graph is the tile grid
            assert errors.max() == 0.0
        else:  # k = 2; measured over more pairs: mean 0.9%, 99.5% within 10% (benchmarks/bench_boats.py)
            assert errors.mean() < 0.05 and (errors <= 0.10).mean() > 0.9


def test_agent_boat_direction():
    from jaxms.env.actions import action_mask, apply_action, boat_landings, direction_targets

    state = fresh(kinds=("human", "tribe"))
    state = west_island_owned(state)
    east = 2

    @jax.jit
    def directions(state):
        targets, land_legal, centre = direction_targets(state, ARRAYS, 1)
        landing, targets, legal = boat_landings(state, ARRAYS, targets, land_legal, centre, 1)
        ordered, attacked = apply_action(state, jnp.int32(east * 5 + 4), targets, legal, centre, 1, landing)
        return land_legal, landing, legal, ordered, attacked

    land_legal, landing, legal, ordered, attacked = directions(state)
    assert not bool(land_legal[:8].any())  # no land border: every land direction masked
    assert bool(legal[east]) and int(landing[east]) % 48 == 30  # across the channel, on the east shore
    assert int(landing[6]) == -1 and not bool(legal[6])  # west: open sea, nothing to land on
    assert bool(action_mask(legal)[east * 5])
    assert bool(attacked) and float(ordered.boat_order_troops[1]) == np.floor(0.75 * float(state.troops[1]))
    assert float(ordered.orders.sum()) == 0  # by boat, not by land


def cross_in_both_engines(west_from: int, ticks: int = 60):
    """Player 1 holds the west island from column `west_from` east and sends 5,000 troops by boat to the east
    island's unowned shore, in jaxms and in the reference engine. Returns (reference, jaxms state, per-tick
    tiles of player 1 in each)."""
    held = np.zeros(LAND.shape, bool)
    held[:, west_from:24] = True
    ref = ReferenceGame(LAND, np.zeros(LAND.shape, np.uint8), seed=0)
    ref.spawn("human", *SPAWN)
    ref.spawn("human", 40, 16)
    ref.claim(1, held)
    state = fresh()
    state = game.set_territory(state, np.where(LAND & held, 1, np.asarray(state.owner)), ARRAYS)
    assert (ref.owner == np.asarray(state.owner)).all()
    ref.players[1].troops = int(state.troops[1])
    ref.launch_boat(1, 30, 16, 5_000)
    state = boats.order_boat(state, 1, LANDING, 5_000)
    ref.tick()
    state = tick(state, ARRAYS, RULES)
    assert len(ref.boats) == 1 and ref.boats[0].arrive == int(state.boat_arrive[1, 0]) == 14
    assert ref.boats[0].src == int(state.boat_src[1, 0])
    tiles_ref, tiles_jax = [], []
    for _ in range(ticks):
        ref.tick()
        state = tick(state, ARRAYS, RULES)
        tiles_ref.append(ref.players[1].tiles)
        tiles_jax.append(int(state.tiles[1]))
    return ref, state, tiles_ref, tiles_jax


def test_boat_crossing_matches_the_reference_engine():
    # The west island is player 1's, so its only border with unowned land is the beachhead.
    ref, state, tiles_ref, tiles_jax = cross_in_both_engines(0)
    # Landing during tick 14 (13 moves, then the landing): the tile changes hands in both.
    assert tiles_ref[12] == tiles_jax[12] and tiles_ref[13] == tiles_jax[13] == tiles_ref[12] + 1
    assert ref._owner_of(LANDING) == 1
    # The conquest from the beachhead, and the troops: within 10% over the 46 ticks after the landing (the
    # JAX conquest lags by up to ~12% in between: 79 vs 89 tiles 18 ticks after the landing).
    gained_ref, gained_jax = tiles_ref[-1] - tiles_ref[13], tiles_jax[-1] - tiles_jax[13]
    assert abs(gained_jax - gained_ref) <= 0.10 * gained_ref, (gained_jax, gained_ref)
    assert abs(float(state.troops[1]) - ref.players[1].troops) <= 0.10 * ref.players[1].troops


def test_a_boat_attack_is_seeded_at_its_landing_only():
    """Player 1 also borders unowned land at home (the west island's western half): as in the engine, the
    boat's attack on unowned land advances from its beach only, and the land at home stays unowned."""
    ref, state, tiles_ref, tiles_jax = cross_in_both_engines(10)
    west = np.zeros(LAND.shape, bool)
    west[:, :10] = True
    assert not (ref.owner[west] == 1).any()
    assert not (np.asarray(state.owner)[west] == 1).any()
    gained_ref, gained_jax = tiles_ref[-1] - tiles_ref[13], tiles_jax[-1] - tiles_jax[13]
    assert gained_ref > 50 and abs(gained_jax - gained_ref) <= 0.10 * gained_ref, (gained_jax, gained_ref)
    # The attack is held in a box around every tile it took (the landing's included).
    east = np.argwhere((np.asarray(state.owner) == 1) & (np.arange(48) >= 24)[None, :])
    box = np.asarray(state.beach_box[1, 0]).tolist()
    assert box == [*east.min(axis=0).tolist(), *east.max(axis=0).tolist()], box
    # A land attack ordered on the same target frees it (the engine merges boat attacks into a new land
    # attack): the whole border pushes again, the western half included.
    state = game.launch_orders(game.launch_attack(state, 1, 0, 1_000))
    assert int(state.beach_box[1, 0, 2]) == -1
    state = run(state, ARRAYS, 10)  # the western front is a few tiles away: 3 to 6 ticks, by the draws
    assert (np.asarray(state.owner)[west] == 1).any()


def test_a_boat_landing_beside_a_running_land_attack_joins_it():
    """A boat landing while its owner's land attack on the same target runs joins that attack's pool (one
    pool per pair): no box, the whole border pushes."""
    state = fresh()
    home = LAND & (np.arange(48) >= 10)[None, :] & (np.arange(48) < 24)[None, :]
    state = game.set_territory(state, np.where(home, 1, np.asarray(state.owner)), ARRAYS)
    state = game.launch_orders(game.launch_attack(state, 1, 0, 2_000))
    state = tick(boats.order_boat(state, 1, LANDING, 5_000), ARRAYS, RULES)
    state = run(state, ARRAYS, 14)
    assert int(state.owner.ravel()[LANDING]) == 1 and float(state.boat_troops.sum()) == 0
    assert float(state.attacks[1, 0]) > 0 and int(state.beach_box[1, 0, 2]) == -1


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), shares=st.lists(st.floats(0.05, 0.9), min_size=4, max_size=4))
def test_boats_keep_their_invariants(seed, shares):
    """Random boat orders of both players to random shore tiles: at most 3 boats each, whole troops
    aboard, no more launched than a player has, tile counts add up, water never owned."""
    state = fresh()
    rng = np.random.default_rng(seed)
    shore = np.flatnonzero(np.asarray(ARRAYS.shore))
    water = ~np.asarray(ARRAYS.land)
    for step, share in enumerate(shares):
        for player in (1, 2):
            troops = share * float(state.troops[player])
            state = boats.order_boat(state, player, int(rng.choice(shore)), troops)
        before = state
        state = tick(state, ARRAYS, RULES)
        at_sea = np.asarray(state.boat_troops)
        assert (np.asarray(boats.boats_in_flight(state)) <= boats.BOATS_PER_PLAYER).all()
        assert (at_sea >= 0).all() and np.all(np.floor(at_sea) == at_sea)
        launched = at_sea.sum(axis=1) - np.asarray(before.boat_troops).sum(axis=1)
        assert (launched <= np.asarray(before.troops) + 1e-3).all()
        assert int(np.asarray(state.tiles).sum()) == int(ARRAYS.num_land_tiles)
        assert not np.asarray(state.owner)[water].any()
        state = run(state, ARRAYS, 2 + 3 * step)


def test_two_boats_landing_on_one_tile_in_one_tick():
    state = fresh()
    dst = 20 * 48 + 30  # unowned shore of the east island
    both = jnp.zeros_like(state.boat_troops).at[1, 0].set(1_000.0).at[2, 0].set(2_000.0)
    state = state.replace(boat_troops=both, boat_dst=jnp.full_like(state.boat_dst, dst),
                          boat_arrive=jnp.zeros_like(state.boat_arrive))
    state = tick(state, ARRAYS, RULES)
    assert int(state.owner.ravel()[dst]) == 1  # the first boat takes the tile
    assert int(np.asarray(state.tiles).sum()) == int(ARRAYS.num_land_tiles)
    assert float(state.attacks[1, 0]) == 1_000 and float(state.attacks[2, 0]) == 2_000


def test_env_time_limit_leader_ends_the_game_with_the_leader():
    """time_limit="leader": at max_steps the game is over and the player with most land wins (the env's
    outcome seam, called without compiling an env step)."""
    from jaxms.env import EnvConfig, TerritoryEnv
    from jaxms.env.territory import EnvParams

    env = TerritoryEnv(TWO_ISLANDS, EnvConfig(num_bots=1, time_limit="leader", max_steps=3))
    params = EnvParams(max_steps=jnp.int32(3), share_scale=jnp.float32(10.0), win_reward=jnp.float32(1.0),
                       loss_reward=jnp.float32(-1.0), rank_scale=jnp.float32(0.01),
                       agent_autopilot=jnp.bool_(False), maps=env.maps,
                       pool_states=None, pool_obs=None)
    state = fresh(kinds=("human", "tribe"))
    ahead = west_island_owned(state)  # the agent leads
    cases = ((2, ahead, False, 0.0), (3, ahead, True, 1.0), (3, state, False, -1.0))  # player 2 leads `state`
    for steps, game_state, won, reward in cases:
        reward_, terminated, truncated, info = env.outcome(game_state, game_state, ARRAYS, jnp.int32(steps),
                                                           params)
        assert bool(terminated) == (steps == 3) and not bool(truncated)
        assert bool(info["won"]) == won and float(reward_) == pytest.approx(reward)
    with pytest.raises(ValueError, match=r"EnvConfig.time_limit='end' is not accepted: use one of truncate, "
                                         r"lose, leader"):
        EnvConfig(time_limit="end")


def reference_landings(owner, alive, shore, water_body, centre, player, k):
    """The landing search of `env.actions._nearest_landings` in plain NumPy on whole arrays: per sector, the
    nearest k x k block (its centre to `centre`; the first in row-major order among equals) holding a shore
    tile the player could land on, then that block's tile nearest `centre`, tiles of the sector first."""
    from jaxms.env.actions import compass_sector

    height, width = owner.shape
    rows, cols = -(-height // k), -(-width // k)

    def by_block(grid):  # [rows, cols, k * k], zeros past the map's edge
        padded = np.zeros((rows * k, cols * k), grid.dtype)
        padded[:height, :width] = grid
        return padded.reshape(rows, k, cols, k).transpose(0, 2, 1, 3).reshape(rows, cols, k * k)

    mine = owner == player
    touched = np.unique(by_block(np.where(mine & shore, water_body, 0)).max(axis=2))
    touched = touched[touched > 0]
    attackable = (alive | (np.arange(len(alive)) == 0)) & (np.arange(len(alive)) != player)
    candidate = shore & ~mine & attackable[owner] & np.isin(water_body, touched)
    block_y = (np.arange(rows) * k + (k - 1) / 2).astype(np.float32)[:, None] - centre[0]
    block_x = (np.arange(cols) * k + (k - 1) / 2).astype(np.float32)[None, :] - centre[1]
    block_y, block_x = np.broadcast_arrays(block_y, block_x)
    block_sector = np.asarray(compass_sector(jnp.asarray(block_y), jnp.asarray(block_x)))
    block_distance = np.where(by_block(candidate).any(axis=2), block_y * block_y + block_x * block_x, np.inf)
    ys, xs = np.nonzero(candidate)  # row-major: the first among equals comes first
    dy, dx = ys.astype(np.float32) - centre[0], xs.astype(np.float32) - centre[1]
    tile_sector = np.asarray(compass_sector(jnp.asarray(dy), jnp.asarray(dx)))
    landings = np.full(8, -1)
    for direction in range(8):
        scores = np.where(block_sector == direction, block_distance, np.inf).ravel()
        if not np.isfinite(scores.min()):
            continue
        block = int(np.argmin(scores))
        inside = (ys // k == block // cols) & (xs // k == block % cols)
        # In float32, as the search computes it: tiles outside the sector are all 1e12 away (a tie).
        off_sector = np.where(tile_sector == direction, np.float32(0), np.float32(1e12))
        score = np.where(inside, dy * dy + dx * dx + off_sector, np.float32(np.inf))
        pick = int(np.argmin(score))
        landings[direction] = ys[pick] * width + xs[pick]
    return landings


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), player=st.integers(1, 4))
def test_the_landing_search_finds_the_nearest_shore_tile_of_each_sector(seed, player):
    """The agent's boat landings (`_nearest_landings`: from the map's shore list, or from the whole map when
    the list is too short; scatter-mins over blocks) equal a tile-by-tile NumPy search, on an island map
    whose sides its 2 x 2 blocks do not divide, from whole-tile centres (exact squared distances, so ties
    are real ties and both must take the first)."""
    from jaxms.env.actions import _nearest_landings

    arrays = game.map_arrays(load_map("islands_201x150"))
    land = np.asarray(arrays.land)
    rng = np.random.default_rng(seed)
    # Territories of 5 players on 16 x 16 patches; some players may end up with nothing (dead).
    patches = rng.integers(0, 6, (-(-land.shape[0] // 16), -(-land.shape[1] // 16)))
    owner = np.where(land, np.kron(patches, np.ones((16, 16), int))[:land.shape[0], :land.shape[1]], 0)
    state = game.new_game(jax.random.key(0), arrays, ["human"] * 5)
    state = game.set_territory(state, owner.astype(np.uint8), arrays)
    # The map's shore list, and a list too short for it: the search reads the whole map instead.
    assert int(arrays.num_shore_tiles) <= arrays.shore_tiles.shape[0]
    unlisted = arrays.replace(shore_tiles=arrays.shore_tiles[:100])
    search = jax.jit(lambda s, a, c: _nearest_landings(s, a, c, player))
    for centre in rng.integers(0, land.shape, (3, 2)).astype(np.float32):
        grids = (np.asarray(x) for x in (state.owner, state.alive, arrays.shore, arrays.water_body))
        expected = reference_landings(*grids, centre, player, 2)
        for map_arrays in (arrays, unlisted):
            assert np.array_equal(np.asarray(search(state, map_arrays, jnp.asarray(centre))), expected)
