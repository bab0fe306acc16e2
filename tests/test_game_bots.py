"""The scripted opponents: border contacts, each decision rule, and tribe games against the reference."""

from __future__ import annotations

import jax
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.engine import ReferenceGame

from jaxms import game, load_map
from jaxms.game.bots import DENSE_CONTACT_TILES, border_contacts, scripted_bots

PLAINS = load_map("plains_64x48")
PLAINS_ARRAYS = game.map_arrays(PLAINS)
decide = jax.jit(scripted_bots)


def numpy_contacts(owner: np.ndarray, land: np.ndarray, num_slots: int) -> np.ndarray:
    contacts = np.zeros((num_slots, num_slots), bool)
    height, width = owner.shape
    for y in range(height):
        for x in range(width):
            for ny, nx in ((y + 1, x), (y, x + 1)):
                inside = ny < height and nx < width
                if inside and land[y, x] and land[ny, nx] and owner[y, x] != owner[ny, nx]:
                    contacts[owner[y, x], owner[ny, nx]] = contacts[owner[ny, nx], owner[y, x]] = True
    return contacts


@given(st.integers(0, 2**31 - 1), st.integers(2, 6))
def test_border_contacts_match_a_plain_loop(seed, num_players):
    rng = np.random.default_rng(seed)
    land = rng.random((12, 15)) < 0.8
    owner = np.where(land, rng.integers(0, num_players + 1, size=land.shape), 0).astype(np.uint8)
    got = np.asarray(border_contacts(owner, land, num_players + 1))
    np.testing.assert_array_equal(got, numpy_contacts(owner, land, num_players + 1))


@given(st.integers(0, 2**31 - 1), st.integers(2, 12), st.sampled_from(["noise", "blobs"]))
@settings(max_examples=10)
def test_block_sparse_border_contacts_match_a_plain_loop(seed, num_players, layout):
    """A map above DENSE_CONTACT_TILES (not a whole number of blocks) takes the block-sparse path."""
    rng = np.random.default_rng(seed)
    shape = (131, 150)
    land = rng.random(shape) < 0.9
    if layout == "noise":  # borders everywhere
        owner = rng.integers(0, num_players + 1, size=shape)
    else:  # a few square territories in unowned land: most blocks hold no border
        owner = np.zeros(shape, np.int64)
        for player in range(1, num_players + 1):
            y, x, side = rng.integers(0, 120), rng.integers(0, 140), rng.integers(3, 30)
            owner[y:y + side, x:x + side] = player
    owner = np.where(land, owner, 0).astype(np.uint8)
    assert owner.size > DENSE_CONTACT_TILES
    got = np.asarray(jax.jit(border_contacts, static_argnums=2)(owner, land, num_players + 1))
    np.testing.assert_array_equal(got, numpy_contacts(owner, land, num_players + 1))


def quarters(kinds, troops):
    """Four players in the quarters of the plains map (no unowned land left), on everyone's phase tick."""
    state = game.new_game(jax.random.key(0), PLAINS_ARRAYS, kinds)
    owner = np.zeros((48, 64), np.uint8)
    owner[:24, :32], owner[:24, 32:], owner[24:, :32], owner[24:, 32:] = 1, 2, 3, 4
    state = game.set_territory(state, owner, PLAINS_ARRAYS, troops=troops)
    slots = len(kinds) + 1
    return state.replace(ai_rate=np.full(slots, 50, np.int32), ai_phase=np.zeros(slots, np.int32),
                         ai_started=np.ones(slots, bool), tick=np.int32(100))


def test_a_tribe_first_expands_into_unowned_land_with_all_but_its_expand_reserve():
    state = game.new_game(jax.random.key(3), PLAINS_ARRAYS, ["tribe", "tribe"], spawns=[(10, 10), (50, 30)])
    state = state.replace(ai_phase=state.tick % state.ai_rate)  # both decide now
    after = decide(state, PLAINS_ARRAYS, jax.random.key(0))
    cap = np.asarray(game.max_troops(state, game.Rules()))
    expected = np.floor(np.asarray(state.troops) - cap * np.asarray(state.ai_expand))
    np.testing.assert_array_equal(np.asarray(after.orders)[1:, 0], expected[1:])
    assert np.asarray(after.orders)[:, 1:].sum() == 0
    assert np.asarray(after.ai_started)[1:].all()


def test_tribes_only_decide_on_their_phase_tick():
    state = game.new_game(jax.random.key(3), PLAINS_ARRAYS, ["tribe", "tribe"], spawns=[(10, 10), (50, 30)])
    state = state.replace(ai_phase=(state.tick + 1) % state.ai_rate)
    after = decide(state, PLAINS_ARRAYS, jax.random.key(0))
    assert np.asarray(after.orders).sum() == 0 and not np.asarray(after.ai_started).any()


def test_a_strong_tribe_retaliates_against_its_biggest_attacker():
    state = quarters(["tribe", "human", "human", "human"], [60_000, 50_000, 50_000, 50_000])
    state = state.replace(attacks=state.attacks.at[2, 1].set(500.0).at[3, 1].set(2_000.0))
    after = decide(state, PLAINS_ARRAYS, jax.random.key(0))
    orders = np.asarray(after.orders)
    cap = float(game.max_troops(state, game.Rules())[1])
    assert 60_000 / cap >= float(state.ai_trigger[1]), "the scenario needs a tribe above its trigger"
    assert orders[1, 3] == np.floor(60_000 - cap * float(state.ai_reserve[1]))
    assert orders[1].sum() == orders[1, 3]


def test_a_weak_tribe_without_unowned_land_waits():
    state = quarters(["tribe", "human", "human", "human"], [1_000, 50_000, 50_000, 50_000])
    after = decide(state, PLAINS_ARRAYS, jax.random.key(0))
    assert np.asarray(after.orders)[1].sum() == 0


def test_a_strong_tribe_attacks_neighbours_and_skips_humans_half_the_time():
    # Player 1 (a tribe) borders 2 (tribe) and 3 (human); 4 is diagonal, not a neighbour.
    targets = []
    for seed in range(60):
        state = quarters(["tribe", "tribe", "human", "human"], [60_000, 50_000, 50_000, 50_000])
        row = np.asarray(decide(state, PLAINS_ARRAYS, jax.random.key(seed)).orders)[1]
        assert (row > 0).sum() == 1
        targets.append(int(np.argmax(row)))
    assert set(targets) == {2, 3}, "only bordering players are attacked"
    # The order is shuffled and a human is skipped with probability 1/2: P(human) = 1/2 * 1/2 = 1/4.
    assert 0.08 < targets.count(3) / len(targets) < 0.45


def test_a_nation_attacks_the_least_dense_neighbouring_tribes_with_four_times_their_troops():
    state = quarters(["nation", "tribe", "tribe", "human"], [200_000, 5_000, 1_000, 50_000])
    state = state.replace(difficulty=np.full(5, game.Difficulty.HARD, np.int8),  # attacks up to 3 tribes
                          ai_trigger=np.zeros(5, np.float32), ai_reserve=np.zeros(5, np.float32))
    orders = np.asarray(decide(state, PLAINS_ARRAYS, jax.random.key(0)).orders)
    assert orders[1, 2] == 20_000 and orders[1, 3] == 4_000 and orders[1, 4] == 0


def test_a_nation_attacks_the_weakest_player_when_no_tribe_borders_it():
    state = quarters(["nation", "human", "human", "human"], [200_000, 40_000, 9_000, 5_000])
    state = state.replace(difficulty=np.full(5, game.Difficulty.HARD, np.int8),  # never skips humans
                          ai_trigger=np.zeros(5, np.float32), ai_reserve=np.zeros(5, np.float32))
    orders = np.asarray(decide(state, PLAINS_ARRAYS, jax.random.key(0)).orders)
    # Player 4 is weaker but only touches player 1 at a corner: player 3 is the weakest neighbour.
    assert orders[1, 3] == 200_000 and orders[1].sum() == 200_000


def test_a_nation_sends_half_its_troops_into_unowned_land_on_the_first_tick():
    state = game.new_game(jax.random.key(0), PLAINS_ARRAYS, ["nation"], spawns=[(30, 20)])
    after = decide(state, PLAINS_ARRAYS, jax.random.key(0))
    assert float(after.orders[1, 0]) == np.floor(float(state.troops[1]) / 2)


def tribe_game_statistics(tiles: np.ndarray, land: int) -> np.ndarray:
    """[share of land owned, players alive, largest share] of tile counts int[T, P]."""
    return np.stack([tiles.sum(1) / land, (tiles > 0).sum(1), tiles.max(1) / land], axis=1)


def test_tribe_games_unfold_like_the_reference_engine():
    """Six tribes left alone on continents: land taken, survivors and the leader's share over time agree
    with the reference's tribe AI, averaged over seeds (the random streams differ, so only statistics can)."""
    game_map = load_map("continents_96_s2")
    arrays = game.map_arrays(game_map)
    num_ticks, seeds, checkpoints = 450, range(4), [50, 100, 200, 449]
    first = game.new_game(jax.random.key(0), arrays, ["tribe"] * 6)
    spawns = [(int(x), int(y)) for y, x in np.asarray(first.spawn)[1:]]
    run = jax.jit(lambda s: game.run_ticks(s, arrays, num_ticks, bots=scripted_bots, trace=True))
    ours, theirs = [], []
    for seed in seeds:
        _, (tiles, _) = run(game.new_game(jax.random.key(seed), arrays, ["tribe"] * 6, spawns=spawns))
        ours.append(tribe_game_statistics(np.asarray(tiles)[:, 1:], game_map.num_land_tiles)[checkpoints])
        reference = ReferenceGame(game_map.land, game_map.magnitude, seed=seed, tribe_ai=True, record=True)
        for x, y in spawns:
            reference.spawn("tribe", x, y)
        reference.run(num_ticks)
        tiles = np.array([record.tiles[1:] for record in reference.history])
        theirs.append(tribe_game_statistics(tiles, game_map.num_land_tiles)[checkpoints])
    ours, theirs = np.mean(ours, axis=0), np.mean(theirs, axis=0)
    # Measured: land owned within 0.03, survivors within 0.7, leader's share within 0.03 (6 seeds).
    np.testing.assert_allclose(ours[:, 0], theirs[:, 0], atol=0.06)
    np.testing.assert_allclose(ours[:, 1], theirs[:, 1], atol=1.0)
    np.testing.assert_allclose(ours[:, 2], theirs[:, 2], atol=0.06)
