"""Unit behaviour of the JAX game: spawning, orders, retreat, annihilation, win, invariants."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxms import game, load_map
from jaxms.game.grid import compact, running_count

PLAINS = load_map("plains_64x48")
PLAINS_ARRAYS = game.map_arrays(PLAINS)
ISLANDS = load_map("islands_64_s3")
ISLANDS_ARRAYS = game.map_arrays(ISLANDS)
tick = jax.jit(game.tick)
run = jax.jit(game.run_ticks, static_argnums=(2,))


def halves(troops=(100_000, 40_000)):
    state = game.new_game(jax.random.key(0), PLAINS_ARRAYS, ["human", "human"])
    owner = np.zeros((48, 64), np.uint8)
    owner[:, :32], owner[:, 32:] = 1, 2
    return game.set_territory(state, owner, PLAINS_ARRAYS, troops=troops)


def test_spawn_disk_is_52_tiles():
    assert len(game.spawn_disk_offsets()) == 52
    state = game.new_game(jax.random.key(1), PLAINS_ARRAYS, ["human"], spawns=[(30, 20)])
    assert int(state.tiles[1]) == 52 and float(state.troops[1]) == 25_000
    ys, xs = np.nonzero(np.asarray(state.owner) == 1)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (26, 33, 16, 23)  # the 8x8 box around (30, 20)


def test_random_spawns_follow_the_placement_rules():
    game_map = load_map("continents_256_s4")
    arrays = game.map_arrays(game_map)
    state = game.new_game(jax.random.key(2), arrays, ["human"] + ["tribe"] * 10)
    centres = np.asarray(state.spawn)[1:]
    assert (centres >= 0).all(), "every player finds a spawn on a 256x256 continents map"
    assert (np.asarray(state.tiles)[1:] == 52).all()
    assert np.asarray(arrays.spawnable)[centres[:, 0], centres[:, 1]].all()
    distance = game.spawn_distance(game_map.num_land_tiles, 11)
    manhattan = np.abs(centres[:, None] - centres[None]).sum(-1) + np.eye(11, dtype=int) * 10**6
    assert manhattan.min() >= distance
    assert list(np.asarray(state.troops)[1:]) == [25_000] + [10_000] * 10
    tribes = np.asarray(state.ai_rate)[2:]
    assert ((tribes >= 40) & (tribes < 80)).all()


def test_bad_setup_is_rejected():
    with pytest.raises(ValueError, match="unknown player kind"):
        game.new_game(jax.random.key(0), PLAINS_ARRAYS, ["wizard"])
    with pytest.raises(ValueError, match="outside the 64x48 map"):
        game.new_game(jax.random.key(0), PLAINS_ARRAYS, ["human"], spawns=[(64, 0)])
    with pytest.raises(ValueError, match="on water"):
        water = np.argwhere(~ISLANDS.land)[0]
        game.new_game(jax.random.key(0), ISLANDS_ARRAYS, ["human"], spawns=[(int(water[1]), int(water[0]))])


def test_orders_launch_at_the_end_of_the_tick_after_growth():
    state = halves()
    state = game.launch_attack(state, 1, 2, 30_000)
    grown = game.grow(state, game.Rules())
    after = tick(state, PLAINS_ARRAYS)
    assert float(after.attacks[1, 2]) == 30_000
    assert float(after.troops[1]) == float(grown.troops[1]) - 30_000
    assert int(after.tiles[1]) == 1536, "conquest starts the tick after the launch"


def test_opposing_attacks_cancel_and_same_target_attacks_merge():
    state = halves((100_000, 100_000))
    state = game.launch_orders(game.launch_attack(state, 1, 2, 30_000))
    state = game.launch_orders(game.launch_attack(state, 1, 2, 10_000))
    assert float(state.attacks[1, 2]) == 40_000
    state = game.launch_orders(game.launch_attack(state, 2, 1, 25_000))
    assert float(state.attacks[1, 2]) == 15_000 and float(state.attacks[2, 1]) == 0
    state = game.launch_orders(game.launch_attack(state, 2, 1, 20_000))
    assert float(state.attacks[1, 2]) == 0 and float(state.attacks[2, 1]) == 5_000


def test_orders_are_capped_by_the_troops_at_hand():
    state = game.launch_orders(game.launch_attack(halves((1_000, 5_000)), 1, 2, 30_000))
    assert float(state.attacks[1, 2]) == 1_000 and float(state.troops[1]) == 0


@pytest.mark.parametrize(("target", "kept"), [(2, 0.75), (0, 1.0)])
def test_retreat_returns_troops_after_twenty_ticks(target, kept):
    state = halves()
    if target == 0:
        owner = np.asarray(state.owner).copy()
        owner[:, 32:] = 0
        state = game.set_territory(state, owner, PLAINS_ARRAYS)
    state = game.launch_orders(game.launch_attack(state, 1, target, 20_000))
    state = tick(state, PLAINS_ARRAYS)
    sent = float(state.attacks[1, target])
    state = game.retreat(state, 1, target)
    tiles = int(state.tiles[1])
    for _ in range(19):
        state = tick(state, PLAINS_ARRAYS)
    assert float(state.attacks[1, target]) == sent and int(state.tiles[1]) == tiles, "paused, not home yet"
    before = float(game.grow(state, game.Rules()).troops[1])
    state = tick(state, PLAINS_ARRAYS)
    assert float(state.attacks[1, target]) == 0
    assert float(state.troops[1]) == before + np.floor(sent * kept)


def test_small_defender_is_annihilated():
    state = game.new_game(jax.random.key(0), PLAINS_ARRAYS, ["human", "tribe"])
    owner = np.ones((48, 64), np.uint8)
    owner[20:30, 40:51] = 2  # 110 tiles, just above the annihilation threshold
    state = game.set_territory(state, owner, PLAINS_ARRAYS, troops=[200_000, 1_000])
    state = game.launch_orders(game.launch_attack(state, 1, 2, 100_000))
    state = run(state, PLAINS_ARRAYS, 5)
    assert not bool(state.alive[2]) and int(state.tiles[2]) == 0
    assert int(state.tiles[1]) == 48 * 64 and (np.asarray(state.owner) == 1).all()


def test_attack_runs_out_of_troops_and_ends():
    state = game.launch_orders(game.launch_attack(halves((100_000, 200_000)), 1, 2, 500))
    state = run(state, PLAINS_ARRAYS, 10)
    assert float(state.attacks[1, 2]) == 0
    assert 1536 < int(state.tiles[1]) < 1560


def test_finished_expansion_returns_its_troops():
    state = game.new_game(jax.random.key(0), PLAINS_ARRAYS, ["human"], spawns=[(30, 20)])
    state = state.replace(troops=state.troops.at[1].set(100_000))
    # 3,020 unowned tiles at 16 troops each cost ~48k: 70k is enough, and the rest must come home.
    state = game.launch_orders(game.launch_attack(state, 1, 0, 70_000))
    state, (_, troops) = jax.jit(game.run_ticks, static_argnums=(2,), static_argnames=("trace",))(
        state, PLAINS_ARRAYS, 300, trace=True)
    assert int(state.tiles[1]) == 64 * 48, "a big enough attack takes the whole map"
    assert float(state.attacks[1, 0]) == 0
    # Growth adds at most a few hundred troops a tick; the survivors (~21k) come home in one tick.
    jumps = np.diff(np.asarray(troops[:, 1]))
    assert jumps.max() > 70_000 - 3_020 * 16 - 1_000
    assert (jumps > 5_000).sum() == 1


def test_win_needs_more_than_80_percent_of_the_land():
    state = halves()
    for columns, winner in ((51, 0), (52, 1)):
        owner = np.full((48, 64), 2, np.uint8)
        owner[:, :columns] = 1  # 51 columns = 79.7% of the land, 52 = 81.3%
        checked = game.check_win(game.set_territory(state, owner, PLAINS_ARRAYS), PLAINS_ARRAYS, game.Rules())
        assert int(checked.winner) == winner


@settings(max_examples=8)
@given(seed=st.integers(0, 2**16), fraction=st.floats(0.05, 0.9), target=st.sampled_from([0, 2]))
def test_invariants_in_random_games(seed, fraction, target):
    key = jax.random.key(seed)
    state = game.new_game(key, ISLANDS_ARRAYS, ["human", "tribe", "tribe", "tribe"])
    state = game.launch_attack(state, 1, target, jnp.floor(state.troops[1] * fraction))
    state = game.launch_attack(state, 3, 0, 5_000)
    before = state
    after = run(state, ISLANDS_ARRAYS, 30)
    owner = np.asarray(after.owner)
    assert owner.max() <= 4, "owner ids stay valid"
    assert not owner[~ISLANDS.land].any(), "water is never owned"
    assert (np.asarray(after.troops) >= 0).all() and (np.asarray(after.attacks) >= 0).all()
    counts = np.bincount(owner[ISLANDS.land], minlength=5)
    np.testing.assert_array_equal(counts[1:], np.asarray(after.tiles)[1:])
    # Only players with attacks change hands: player 4 ordered nothing, so it never gains tiles.
    assert int(after.tiles[4]) <= int(before.tiles[4])
    # Same key, same game.
    again = run(state, ISLANDS_ARRAYS, 30)
    np.testing.assert_array_equal(np.asarray(again.owner), owner)


def test_jit_and_eager_agree():
    state = game.launch_attack(halves(), 1, 2, 30_000)
    jitted = run(state, PLAINS_ARRAYS, 3)
    with jax.disable_jit():
        eager = game.run_ticks(state, PLAINS_ARRAYS, 3)
    np.testing.assert_array_equal(np.asarray(jitted.owner), np.asarray(eager.owner))
    np.testing.assert_allclose(np.asarray(jitted.troops), np.asarray(eager.troops))


@pytest.mark.parametrize("num_slots", [12, 40])
def test_frontier_claims_follow_the_rule_for_few_and_many_players(num_slots):
    """Each tile's frontier segment (claimant, target, priority bin) equals a plain NumPy reading of the rule,
    with few players (attackers looked up as one word of bits) and more than a word holds (several words)."""
    from jaxms.game.conquest import NUM_BINS, NUM_DRAWS, NUM_K, NUM_TERRAIN, _segments, _whole, new_board
    from jaxms.game.grid import hash_bits

    rng = np.random.default_rng(num_slots)
    height, width = 48, 64
    owner = rng.integers(0, num_slots, (height, width)).astype(np.uint8)
    land = rng.random((height, width)) < 0.85
    terrain = rng.integers(0, 3, (height, width)).astype(np.uint8)
    age = rng.integers(0, 16, (height, width)).astype(np.uint8)
    live = rng.random((num_slots, num_slots)) < 0.3
    seed = np.array([12345, 678], np.uint32)
    board = new_board(jnp.asarray(owner), jnp.asarray(land), jnp.asarray(terrain), jnp.asarray(age))
    got = np.asarray(jax.jit(lambda lv, s: _segments(board, _whole(board), lv, s, jnp.bool_(True)))(
        jnp.asarray(live), jnp.asarray(seed)))

    pad = np.zeros((height + 2, width + 2), np.int64)
    pad[1:-1, 1:-1] = owner
    target = pad[1:-1, 1:-1]
    neighbours = [pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]]  # N, S, W, E
    rand = np.asarray(hash_bits(jnp.uint32(seed[0]), jnp.arange(height * width, dtype=jnp.uint32)))
    rand = rand.astype(np.int64).reshape(height, width)
    attacks = live.copy()
    attacks[0] = False  # unowned land attacks nobody
    best = np.full((height, width), -1)
    claimant = np.zeros((height, width), np.int64)
    for direction, n in enumerate(neighbours):
        surrounding = sum((m == n).astype(np.int64) for m in neighbours)
        score = np.where(land & attacks[n, target] & (n != target),
                         surrounding * 4 + (rand >> (2 * direction) & 3), -1)
        claimant = np.where(score > best, n, claimant)
        best = np.maximum(score, best)
    k = np.maximum(best >> 2, 1)
    unsorted_bin = ((age.astype(np.int64) * NUM_K + k - 1) * NUM_TERRAIN + terrain) * NUM_DRAWS + (
        rand >> 8) % NUM_DRAWS
    want = np.where(best >= 0, (claimant * num_slots + target) * NUM_BINS + unsorted_bin,
                    num_slots * num_slots * NUM_BINS)
    # The result covers the board's rows 1..H (a border column either side): read the map's tiles.
    got = got.reshape(height, width + 2)[:, 1:-1]
    assert (want < num_slots * num_slots * NUM_BINS).sum() > 500, "too few frontier tiles to test"
    np.testing.assert_array_equal(got, want)


@jax.jit
def _count_and_compact(flags):
    return running_count(flags), compact(flags[0], 8)


@settings(max_examples=20, deadline=None)
@given(length=st.sampled_from([1, 32, 33, 405, 2049]), rows=st.sampled_from([1, 2]),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 99))
def test_running_count_and_compact_match_numpy(length, rows, density, seed):
    """The prefix count behind the block lists and `compact` (matmuls on blocks of 32, recursively) against
    NumPy's cumsum, and compact's lists of set indices, for lengths across the block boundaries."""
    flags = np.random.default_rng(seed).random((rows, length)) < density
    counts, (ids, groups) = _count_and_compact(flags)
    assert np.array_equal(np.asarray(counts), np.cumsum(flags, axis=-1))
    (expected,) = np.nonzero(flags[0])
    ids = np.asarray(ids)
    assert np.array_equal(ids[:len(expected)], expected) and (ids[len(expected):] == length).all()
    assert int(groups) == -(-len(expected) // 8)  # whole groups of 8 that hold them
