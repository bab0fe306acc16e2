"""Defense posts in the conquest (engine §5): a tile within 30 of a completed post of its owner costs the
attacker x3 budget and x5 troops; posts of anyone else, unfinished posts and far posts change nothing."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xla_options import compiled_as_users_run

from jaxms import game, load_map
from jaxms.game.conquest import cover_board, new_board, pair_tile_values
from jaxms.game.structures import DEFENSE_POST, active_defense_posts, defense_cover

RULES = game.Rules()
SLOTS = 8  # structure slots of every test game (posts fill the first ones): one compiled tick per map


def ticks(state, arrays, n, rules):
    """`n` ticks (`game.tick` in a loop whose count is an argument: one compile serves every length)."""
    return jax.lax.fori_loop(0, n, lambda _, s: game.tick(s, arrays, rules), state)


run = jax.jit(ticks, static_argnums=3)
batch_run = jax.jit(jax.vmap(ticks, in_axes=(0, None, None, None)), static_argnums=3)
cover = jax.jit(defense_cover, static_argnums=1)
MAPS = {name: (lambda m: (m, game.map_arrays(m)))(load_map(name))
        for name in ("plains_64x48", "plains_256x160", "continents_96_s2")}


def with_posts(state, posts):
    """`state` with SLOTS structure slots, the first holding the posts (owner, y, x) or (owner, y, x, ready
    tick), the others empty."""
    posts = [(*p, 0) if len(p) == 3 else p for p in posts]
    empty = SLOTS - len(posts)
    assert empty >= 0, f"at most {SLOTS} posts"
    return state.replace(
        structure_kind=jnp.array([DEFENSE_POST] * len(posts) + [0] * empty, jnp.int8),
        structure_owner=jnp.array([p[0] for p in posts] + [0] * empty, jnp.uint8),
        structure_pos=jnp.array([p[1:3] for p in posts] + [(0, 0)] * empty, jnp.int32).reshape(SLOTS, 2),
        structure_level=jnp.ones(SLOTS, jnp.int32),
        structure_ready=jnp.array([p[3] for p in posts] + [0] * empty, jnp.int32))


def without_posts(state):
    """The same structure slots, all empty."""
    return state.replace(structure_kind=jnp.zeros_like(state.structure_kind))


def front(map_name, columns, troops, kinds=None, seed=0):
    """Vertical strips of players (columns: the first column of players 2, 3, ...) on a plains map."""
    _, arrays = MAPS[map_name]
    height, width = arrays.shape
    kinds = kinds or ["human"] * (len(columns) + 1)
    state = game.new_game(jax.random.key(seed), arrays, kinds, spawns=[None] * len(kinds))
    owner = np.ones((height, width), np.uint8)
    for player, start in enumerate(columns, start=2):
        owner[:, start:] = player
    return game.set_territory(state, owner, arrays, troops=troops), arrays


def attack(state, attacker, target, troops):
    return game.launch_orders(game.launch_attack(state, attacker, target, troops))


def assert_same_states(a, b, structures=True):
    """Every field bit for bit (but the structure slots when `structures` is False)."""
    for field in dataclasses.fields(a):
        if not structures and field.name.startswith("structure_"):
            continue
        x, y = getattr(a, field.name), getattr(b, field.name)
        if not field.metadata.get("pytree_node", True):  # static: the map's size
            assert x == y, field.name
            continue
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=field.name)


def posts_along(column, height, owner):
    """Posts of `owner` in `column`, 28 rows apart: 12 columns from a front, they cover all of it."""
    return [(owner, y, column) for y in range(10, height, 28)]


@pytest.mark.parametrize("map_name", ["plains_64x48", "continents_96_s2", "plains_256x160"])
@pytest.mark.parametrize("radius", [30, 3, 100])
def test_the_conquest_marks_the_tiles_defense_cover_finds(map_name, radius):
    """Bit 6 of the conquest's grid (whole or by blocks; windows moved inside the grid at its edges, or wider
    than it) is `defense_cover`, and the other bits are untouched."""
    rules = game.Rules(defense_post_radius=radius)
    _, arrays = MAPS[map_name]
    height, width = arrays.shape
    state, _ = front(map_name, [width // 3, 2 * width // 3], [1_000] * 3)
    state = with_posts(state, [(1, 0, 0), (3, height - 1, width - 1), (2, height // 2, width // 2),
                               (1, height // 2, width // 3 - 1), (2, 3, width - 3),  # not on its owner's land
                               (3, height // 2, width - 5, 10**6)])  # unfinished
    ages = jnp.asarray(np.arange(height * width).reshape(height, width) % 20, jnp.uint8)
    plain = new_board(state.owner, arrays.land, arrays.terrain, ages)
    board = jax.jit(cover_board, static_argnums=4)(plain, state.structure_pos, state.structure_owner,
                                                   active_defense_posts(state), radius)
    assert board.cover and not plain.cover
    marked = np.asarray(board.info)[1:height + 1, 1:width + 1] >> 6 & 1
    expected = np.asarray(cover(state, rules))
    assert expected.any()
    np.testing.assert_array_equal(marked, expected)
    np.testing.assert_array_equal(np.asarray(board.info) & ~np.uint8(64), np.asarray(plain.info))


@pytest.mark.parametrize("map_name, split", [("plains_64x48", 32), ("plains_256x160", 128)])
def test_covered_tiles_cost_three_times_the_budget_and_five_times_the_troops(map_name, split):
    """Ten ticks of the same attack (30k of 100k on a 10k defender: every clamp of §5 saturated) with and
    without the defender's posts covering the whole front. Measured (seeds 0-3; whole board and blocks):
    troops lost per tile x4.998-5.013 (the defender's density drifts apart a little); tiles taken /2.79-3.03
    (x3 cost, less the part of a tile the last take of each tick overdraws: about /2.9)."""
    for seed in (0, 1):
        state, arrays = front(map_name, [split], [400_000, 10_000], seed=seed)
        height = arrays.shape[0]
        troops = 30_000 * height // 48  # as much per row of the front on both maps
        plain = attack(with_posts(state, posts_along(split - 12, height, 1)), 1, 2, troops)  # the attacker's
        guarded = attack(with_posts(state, posts_along(split + 12, height, 2)), 1, 2, troops)
        # The posts cover every defender tile the attack can reach in ten ticks.
        covered = np.asarray(cover(guarded, RULES))
        assert covered[:, split:split + 20].all() and not covered[:, :split].any()
        results = []
        for start in (plain, guarded):
            end = run(start, arrays, 10, RULES)
            taken = int(end.tiles[1] - start.tiles[1])
            lost = float(start.attacks[1, 2] - end.attacks[1, 2])
            assert taken > 0 and float(end.attacks[1, 2]) > 0, "the attack runs all ten ticks"
            results.append((taken, lost / taken))
        (taken_plain, loss_plain), (taken_guarded, loss_guarded) = results
        assert loss_guarded / loss_plain == pytest.approx(RULES.defense_post_loss_factor, rel=0.01)
        assert 2.6 <= taken_plain / taken_guarded <= 3.15


def test_a_mixed_front_charges_covered_tiles_five_times_and_the_others_once():
    """One tick against a post covering the front's top 26 rows: the attack loses exactly (to the defender
    density's drift between the tick's two rounds, under 0.1%) l per uncovered tile and 5 l per covered one,
    l being §5's loss per tile at the tick's start."""
    for seed in (0, 1, 2):
        state, arrays = front("plains_64x48", [32], [100_000, 10_000], seed=seed)
        state = attack(with_posts(state, [(2, 0, 47)]), 1, 2, 30_000)
        covered = np.asarray(cover(state, RULES))
        assert covered[:26, 32].all() and not covered[26:, 32].any()
        end = run(state, arrays, 1, RULES)
        taken = (np.asarray(end.owner) == 1) & (np.asarray(state.owner) == 2)
        taken_covered, taken_open = int((taken & covered).sum()), int((taken & ~covered).sum())
        assert taken_covered > 0 and taken_open > 0
        grown = game.grow(state, RULES)  # the conquest follows the tick's growth
        _, loss, _ = pair_tile_values(grown.attacks, grown.troops, grown.tiles, grown.kind, RULES)
        per_tile = float(loss[1, 2, 0])  # plains
        expected = per_tile * (taken_open + RULES.defense_post_loss_factor * taken_covered)
        assert float(state.attacks[1, 2] - end.attacks[1, 2]) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("case", ["another player's posts", "an unfinished post", "a post out of reach"])
def test_posts_that_do_not_cover_the_attacked_tiles_change_nothing(case):
    """Bit for bit the game with the same slots empty. (That a game without posts is the game with
    `Rules.defense_posts` off is the next test's: comparing with it here too compiled three more ticks.)"""
    if case == "another player's posts":
        # Player 3's post is within 30 of player 2's front; the attacker's own post covers its own front.
        state, arrays = front("plains_64x48", [20, 44], [100_000, 10_000, 20_000])
        posts = [(3, 24, 46), (1, 24, 15)]
        covered = np.asarray(cover(with_posts(state, posts), RULES))
        assert covered[:, 44:].any() and covered[:, :20].any() and not covered[:, 20:44].any()
    elif case == "an unfinished post":
        state, arrays = front("plains_64x48", [32], [100_000, 10_000])
        posts = [(2, 24, 40, 10**6)]
    else:
        # Covers player 2's tiles from column 120 on: ten ticks of this attack take under five columns.
        state, arrays = front("plains_256x160", [40], [100_000, 10_000])
        posts = [(2, 80, 150)]
        assert np.asarray(cover(with_posts(state, posts), RULES)).sum() > 1000
    state = attack(with_posts(state, posts), 1, 2, 30_000)
    end = run(state, arrays, 10, RULES)
    assert int(end.tiles[1] - state.tiles[1]) > 50
    assert_same_states(end, run(without_posts(state), arrays, 10, RULES), structures=False)


def test_without_posts_the_game_is_exactly_the_one_without_the_rule():
    """With structure slots (a nation) but no post yet, the conquest reads the cover and must give the
    states it gave before posts were read, bit for bit: on a map read by blocks, player and unowned
    targets, several attackers, 30 ticks. (Without nations there are no slots and the cover is not read.)"""
    state, arrays = front("plains_256x160", [100, 200, 220], [100_000, 30_000, 0, 20_000],
                          kinds=["human", "human", "human", "nation"])
    owner = np.asarray(state.owner).copy()
    owner[owner == 3] = 0  # unowned land between player 2 and the nation
    state = game.set_territory(state, owner, arrays)
    assert state.structure_kind.shape[0] == RULES.structures_per_nation
    for attacker, target, troops in ((1, 2, 30_000), (2, 0, 5_000), (4, 0, 5_000)):
        state = attack(state, attacker, target, troops)
    with_rule = run(state, arrays, 30, RULES)
    assert int(with_rule.tiles[1] - state.tiles[1]) > 300 and int(with_rule.tiles[0]) < int(state.tiles[0])
    assert_same_states(with_rule, run(state, arrays, 30, game.Rules(defense_posts=False)))


@pytest.mark.parametrize("map_name, split", [("plains_64x48", 32), ("plains_256x160", 128)])
def test_jit_and_vmap_agree_with_posts(map_name, split):
    """Games with posts at different places (all over the front, part of it, none that counts), batched."""
    base, arrays = front(map_name, [split], [100_000, 10_000])
    height = arrays.shape[0]
    layouts = [posts_along(split + 12, height, 2), [(2, 0, split + 15)], posts_along(split - 12, height, 1)]
    size = max(len(p) for p in layouts)
    states = []
    for seed, posts in enumerate(layouts):
        state = base.replace(key=jax.random.key(seed))
        states.append(attack(with_posts(state, posts + posts[:1] * (size - len(posts))), 1, 2, 30_000))
    # Both compiled with XLA's defaults, as a user's programs are: at the suite's -O0 a vmapped program and
    # its single form may differ by an ulp (tests/xla_options.py).
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *states)
    batched = compiled_as_users_run(batch_run, stacked, arrays, 6, RULES)(stacked, arrays, 6)
    single_run = compiled_as_users_run(run, states[0], arrays, 6, RULES)
    taken = []
    for i, state in enumerate(states):
        single = single_run(state, arrays, 6)
        assert_same_states(jax.tree.map(lambda x, i=i: x[i], batched), single)
        taken.append(int(single.tiles[1] - state.tiles[1]))
    assert taken[0] < taken[1] < taken[2], "more cover, fewer tiles"


def test_bad_defense_post_rules_are_rejected():
    with pytest.raises(ValueError, match="defense_post_radius must be >= 0"):
        game.Rules(defense_post_radius=-1)
    with pytest.raises(ValueError, match="must be > 0"):
        game.Rules(defense_post_loss_factor=0.0)
