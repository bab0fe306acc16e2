"""The JAX simulation against the real engine's traces and the plain-Python reference (tests/reference).

Measured gaps (the tolerances below are these, rounded up):
- growth (s3, 300 ticks): identical troops at every tick.
- expansion (s1, seeds 0-2): final tiles within 1 of the engine's 1,352; tiles per tick within 5.2% at
  every tick and 3.4% after tick 20; troops within 0.15%. (The heap-based reference: 5.3% / 3.6%.)
- against the reference on built-in maps: see each test's docstring.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference.engine import Player, ReferenceGame

from jaxms import game, load_map
from jaxms.game.structures import DEFENSE_POST

TRACES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "engine-traces"


@partial(jax.jit, static_argnames=("n",))
def run_traced(state, arrays, n):
    return game.run_ticks(state, arrays, n, trace=True)


@pytest.fixture(scope="module")
def australia16(openfront_maps_dir):
    game_map = load_map("australia@16x", maps_dir=openfront_maps_dir)
    return game_map, game.map_arrays(game_map)


def _trace(name):
    path = TRACES / name
    if not path.is_file():
        pytest.skip(f"engine trace {path} not found (../shared is absent)")
    return np.loadtxt(path, delimiter=",", skiprows=1)


def test_growth_replays_the_engine_exactly(australia16):
    trace = _trace("s3_growth.csv")
    _, arrays = australia16
    state = game.new_game(jax.random.key(0), arrays, ["human"], spawns=[(230, 180)])
    assert int(state.tiles[1]) == 52 and float(state.troops[1]) == 25_000
    _, (tiles, troops) = run_traced(state, arrays, n=299)
    np.testing.assert_array_equal(np.asarray(troops[:, 1]), trace[1:, 2])
    np.testing.assert_array_equal(np.asarray(tiles[:, 1]), trace[1:, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expansion_replays_the_engine_closely(australia16, seed):
    trace = _trace("s1_expand.csv")
    _, arrays = australia16
    state = game.new_game(jax.random.key(seed), arrays, ["human"], spawns=[(230, 180)])
    # Trace tick 0 is the last spawn-phase tick: the 20% order launches at its end, without growth.
    state = game.launch_orders(game.launch_attack(state, 1, 0, jnp.floor(state.troops[1] * 0.2)))
    state, (tiles_a, troops_a) = run_traced(state, arrays, n=59)
    state = game.launch_attack(state, 1, 0, jnp.floor(state.troops[1] * 0.5))
    _, (tiles_b, troops_b) = run_traced(state, arrays, n=140)
    tiles = np.concatenate([tiles_a[:, 1], tiles_b[:, 1]])
    troops = np.concatenate([troops_a[:, 1], troops_b[:, 1]])
    gap = np.abs(tiles - trace[1:, 1]) / trace[1:, 1]
    assert abs(tiles[-1] - trace[-1, 1]) <= 4
    assert gap.max() <= 0.06, f"max per-tick tile gap {gap.max():.3f}"
    assert gap[20:].max() <= 0.04, f"per-tick tile gap after tick 20 {gap[20:].max():.3f}"
    assert np.abs(troops - trace[1:, 2]).max() / trace[1:, 2].min() <= 0.002


def _pair(game_map, owner, kinds, troops, seed=0, posts=()):
    """The same position in the JAX game and in the reference engine; `posts`: completed defense posts as
    (owner, x, y), one structure slot each in the JAX game."""
    arrays = game.map_arrays(game_map)
    state = game.new_game(jax.random.key(seed), arrays, kinds, spawns=[None] * len(kinds))
    state = game.set_territory(state, owner, arrays, troops=troops)
    reference = ReferenceGame(game_map.land, game_map.magnitude, seed=seed)
    for player, (kind, amount) in enumerate(zip(kinds, troops, strict=True), start=1):
        reference.players.append(Player(id=player, kind=kind, troops=int(amount)))
        reference.claim(player, np.asarray(owner) == player)
    if posts:
        state = state.replace(
            structure_kind=jnp.full(len(posts), DEFENSE_POST, jnp.int8),
            structure_owner=jnp.array([p for p, _, _ in posts], jnp.uint8),
            structure_pos=jnp.array([(y, x) for _, x, y in posts], jnp.int32),
            structure_level=jnp.ones(len(posts), jnp.int32), structure_ready=jnp.zeros(len(posts), jnp.int32))
        for player, x, y in posts:
            reference.add_defense_post(player, x, y)
    return state, arrays, reference


def _reference_run(reference, n):
    tiles, troops = [], []
    for _ in range(n):
        reference.tick()
        tiles.append([p.tiles for p in reference.players[1:]])
        troops.append([p.troops for p in reference.players[1:]])
    return np.array(tiles), np.array(troops)


def _attack_troops(reference, attacker, target):
    attack = reference.attack_on(attacker, target)
    return 0.0 if attack is None else attack.troops


def _front(owner, player):
    """Border tiles of `player` (4-neighbour of another owner or water; the map edge does not count)."""
    mine = owner == player
    other = np.zeros_like(mine)
    other[1:] |= owner[:-1] != player
    other[:-1] |= owner[1:] != player
    other[:, 1:] |= owner[:, :-1] != player
    other[:, :-1] |= owner[:, 1:] != player
    return int((mine & other).sum())


def compare(game_map, owner, kinds, troops, orders, ticks, seeds=(0, 1), posts=()):
    """Run the same scenario in both engines; per seed: dict of (jax, reference) measurements."""
    results = []
    for seed in seeds:
        state, arrays, reference = _pair(game_map, owner, kinds, troops, seed, posts)
        for attacker, target, amount in orders:
            state = game.launch_attack(state, attacker, target, amount)
            reference.launch_attack(attacker, target, amount)
        state, (tiles, troops_jax) = run_traced(state, arrays, n=ticks)
        ref_tiles, ref_troops = _reference_run(reference, ticks)
        final_owner = np.asarray(state.owner)
        results.append({
            "tiles": (np.asarray(tiles)[:, 1:], ref_tiles),
            "troops": (np.asarray(troops_jax)[:, 1:], ref_troops),
            "attack": (np.asarray(state.attacks), reference),
            "front": ([_front(final_owner, p) for p in range(1, len(kinds) + 1)],
                      [_front(reference.owner, p) for p in range(1, len(kinds) + 1)]),
        })
    return results


def _gained(result, player):
    jax_tiles, ref_tiles = result["tiles"]
    return jax_tiles[:, player - 1], ref_tiles[:, player - 1]


def test_expansion_on_mixed_terrain_matches_the_reference():
    """Measured (seeds 0-2, 60 ticks): JAX runs behind the reference mid-course, by up to 13% of the tiles
    gained around ticks 10-40, closing to 2-4% at the end; the front's length is within 7%. (A known gap of
    the vectorised priority on mixed terrain, to narrow; on the real engine's trace the gap is 3.4%.)"""
    game_map = load_map("continents_128_s1")
    arrays = game.map_arrays(game_map)
    ys, xs = np.nonzero(np.asarray(arrays.spawnable))
    cy, cx = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])
    owner = np.zeros(game_map.land.shape, np.uint8)
    for dy, dx in game.spawn_disk_offsets():
        owner[cy + dy, cx + dx] = 1
    for result in compare(game_map, owner, ["human"], [25_000], [(1, 0, 8_000)], ticks=60, seeds=(0, 1, 2)):
        ours, theirs = _gained(result, 1)
        gained_ours, gained_theirs = ours - 52, theirs - 52
        assert abs(gained_ours[-1] - gained_theirs[-1]) <= 0.05 * gained_theirs[-1]
        assert np.all(np.abs(gained_ours[10:] - gained_theirs[10:]) <= 0.14 * gained_theirs[10:] + 3)
        front_ours, front_theirs = result["front"]
        assert abs(front_ours[0] - front_theirs[0]) <= 0.12 * front_theirs[0]
        troops_ours, troops_theirs = result["troops"]
        assert abs(troops_ours[-1, 0] - troops_theirs[-1, 0]) <= 0.005 * troops_theirs[-1, 0]


@pytest.mark.parametrize("defender_troops", [10_000, 40_000, 150_000])
def test_player_attack_matches_the_reference_at_several_troop_ratios(defender_troops):
    """Measured (plains 64x48, 30k attacking, 40 ticks): tiles taken within 3, defender troops within 0.3%,
    attacker troops within 10."""
    _split_plains_attack(defender_troops, min_taken=100)


def _split_plains_attack(defender_troops, min_taken, posts=()):
    """Plains 64x48 split down the middle, player 1 (100k) sends 30k at player 2 for 40 ticks; asserts
    tiles taken within 5% + 4 at every tick, defender troops within 0.5% + 10, attacker troops within 50
    and the front within 2. Returns the per-seed results for further checks."""
    game_map = load_map("plains_64x48")
    owner = np.zeros((48, 64), np.uint8)
    owner[:, :32], owner[:, 32:] = 1, 2
    results = compare(game_map, owner, ["human", "human"], [100_000, defender_troops], [(1, 2, 30_000)],
                      ticks=40, posts=posts)
    for result in results:
        ours, theirs = _gained(result, 1)
        taken_ours, taken_theirs = ours - 1536, theirs - 1536
        assert taken_theirs[-1] > min_taken, "the scenario must actually conquer"
        assert np.all(np.abs(taken_ours - taken_theirs) <= 0.05 * taken_theirs + 4)
        troops_ours, troops_theirs = result["troops"]
        assert abs(troops_ours[-1, 1] - troops_theirs[-1, 1]) <= 0.005 * troops_theirs[-1, 1] + 10
        assert abs(troops_ours[-1, 0] - troops_theirs[-1, 0]) <= 50
        assert result["front"][0] == pytest.approx(result["front"][1], abs=2)
    return results


def test_two_attackers_on_one_defender_match_the_reference():
    """Measured (plains, attackers from both sides, 30 ticks): each side's tiles within 4 of the reference."""
    game_map = load_map("plains_64x48")
    owner = np.zeros((48, 64), np.uint8)
    owner[:, :20], owner[:, 20:44], owner[:, 44:] = 1, 2, 3
    for result in compare(game_map, owner, ["human"] * 3, [80_000, 30_000, 80_000],
                          [(1, 2, 25_000), (3, 2, 25_000)], ticks=30):
        ours, theirs = result["tiles"]
        assert theirs[-1, 1] < 700, "the defender must lose ground"
        np.testing.assert_allclose(ours, theirs, atol=6, rtol=0.03)


def test_player_attack_on_mixed_terrain_matches_the_reference():
    """Measured (continents 96, 40 ticks): tiles taken within 7%, defender troops within 2%."""
    game_map = load_map("continents_96_s2")
    owner = np.zeros(game_map.land.shape, np.uint8)
    owner[:, :48], owner[:, 48:] = 1, 2
    owner[~game_map.land] = 0
    start = int((owner == 1).sum())
    for result in compare(game_map, owner, ["human", "human"], [100_000, 30_000], [(1, 2, 40_000)], ticks=40):
        ours, theirs = _gained(result, 1)
        taken_ours, taken_theirs = ours[-1] - start, theirs[-1] - start
        assert taken_theirs > 100
        assert abs(taken_ours - taken_theirs) <= 0.1 * taken_theirs
        troops_ours, troops_theirs = result["troops"]
        assert abs(troops_ours[-1, 1] - troops_theirs[-1, 1]) <= 0.03 * troops_theirs[-1, 1]


@pytest.mark.parametrize("defender_troops", [10_000, 40_000])
def test_attack_on_a_defense_post_matches_the_reference(defender_troops):
    """The player attack above, every tile it reaches covered by the defender's post (x3 cost, x5 losses; the
    attack runs out of troops within the 40 ticks). Measured (seeds 0, 1): tiles taken within 4 of the
    reference at every tick, defender troops within 0.15%, attacker troops within 6."""
    for result in _split_plains_attack(defender_troops, min_taken=60, posts=[(2, 44, 24)]):
        assert result["attack"][0][1, 2] == 0 and _attack_troops(result["attack"][1], 1, 2) == 0


@pytest.mark.parametrize("defender_troops", [10_000, 40_000])
def test_attack_on_a_partly_covered_front_matches_the_reference_on_average(defender_troops):
    """A post covering the top 26 rows of the front: covered and uncovered tiles share priority bins. One
    game's course varies with the seed by over 10% in both engines (the attack ends when its troops run out,
    and how many tiles that buys depends on how many were covered), so the comparison is of means over
    seeds 0-7. Measured: mean tiles taken within 3.2 of the reference at every tick, defender troops within
    0.25%, attacker troops within 6."""
    game_map = load_map("plains_64x48")
    owner = np.zeros((48, 64), np.uint8)
    owner[:, :32], owner[:, 32:] = 1, 2
    results = compare(game_map, owner, ["human", "human"], [100_000, defender_troops], [(1, 2, 30_000)],
                      ticks=40, seeds=range(8), posts=[(2, 47, 0)])
    taken_ours, taken_theirs = (np.mean([_gained(r, 1)[i] - 1536 for r in results], axis=0) for i in (0, 1))
    assert taken_theirs[-1] > 90
    assert np.all(np.abs(taken_ours - taken_theirs) <= 0.04 * taken_theirs + 3)
    troops_ours, troops_theirs = (np.mean([r["troops"][i] for r in results], axis=0) for i in (0, 1))
    assert abs(troops_ours[-1, 1] - troops_theirs[-1, 1]) <= 0.005 * troops_theirs[-1, 1]
    assert np.abs(troops_ours[:, 0] - troops_theirs[:, 0]).max() <= 15
