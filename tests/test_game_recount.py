"""What the tick keeps incrementally equals a recount from scratch, after hundreds of random ticks.

The tick never recounts the map: tiles per player are updated from the tiles that change hands, the border
list (game/blocks.py) from the blocks where tiles changed hands, and the bots read border contacts from
that list's blocks. On maps big enough to be read by blocks (above 32,768 tiles), with the scripted bots
attacking each other (nations sail on the islands and build defense posts), every 50 ticks the carried
quantities must equal a plain recount of the owner grid: tile counts, the border list holds every block
with a border tile (and no block twice), the frontier list every block with a frontier tile of the attacks
it answers for (`GameState.frontier_pairs`), and the contacts read from the border list equal a pass over
the whole map; and the conquest's histogram table, handed from tick to tick (`tick_carrying`), is all zeros
again.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytrees import assert_same_trees

from jaxms import game, load_map
from jaxms.game import conquest
from jaxms.game.blocks import border_tiles, frontier_row
from jaxms.game.bots import border_contacts, border_contacts_dense, scripted_bots, state_contacts
from jaxms.game.grid import BLOCK
from jaxms.game.loop import conquest_scratch, tick_carrying
from jaxms.game.rules import Rules

# One shape for both maps (the map is an argument of the compiled ticks): one compile serves both.
MAPS = {name: load_map(name) for name in ("continents_192_s4", "islands_192_s2")}
ARRAYS = {name: game.map_arrays(m) for name, m in MAPS.items()}
TICKS, EVERY = 300, 50


@partial(jax.jit, static_argnums=2)
def run(state, arrays, n):
    """(state after n ticks, the conquest's table as the last tick handed it on: all zeros again)."""
    def body(carry, _):
        return tick_carrying(*carry, arrays, bots=scripted_bots), None

    return jax.lax.scan(body, (state, conquest_scratch(state, Rules())), None, length=n)[0]


@jax.jit
def contacts(state, arrays):
    owner, land = state.owner, arrays.land
    return (border_contacts(owner, land, 9), border_contacts_dense(owner, land, 9),
            state_contacts(state, arrays), border_tiles(state.board_owner, state.board_info))


def assert_border_list_complete(state, borders):
    """Every block holding a border tile is on the tick's border list, and no block is listed twice."""
    height, width = state.height, state.width
    rows, cols = -(-height // BLOCK), -(-width // BLOCK)
    flags = np.asarray(borders)[1:rows * BLOCK + 1, 1:cols * BLOCK + 1]
    needed = np.flatnonzero(flags.reshape(rows, BLOCK, cols, BLOCK).any(axis=(1, 3)))
    row = int(state.tick) % 2
    listed = np.asarray(state.block_lists)[row, :int(state.block_counts[row])]
    assert len(np.unique(listed)) == len(listed), "a block listed twice"
    missing = np.setdiff1d(needed, listed)
    assert missing.size == 0, f"tick {int(state.tick)}: border blocks {missing[:10]} not listed"


def assert_frontier_list_complete(state, land):
    """Every block holding a tile of t 4-adjacent to a tile of a, for each pair (a, t) of
    `state.frontier_pairs` (t = 0: unowned land), is on the frontier list the next tick may read."""
    owner = np.asarray(state.owner).astype(np.int64)
    pairs = np.argwhere(np.asarray(state.frontier_pairs))
    if pairs.size == 0:
        return
    height, width = owner.shape
    padded = np.pad(owner, 1, constant_values=-1)
    frontier = np.zeros(owner.shape, bool)
    for a, t in pairs:
        near = np.zeros(owner.shape, bool)
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            near |= padded[1 + dy:1 + dy + height, 1 + dx:1 + dx + width] == a
        frontier |= near & (owner == t) & land
    rows, cols = -(-height // BLOCK), -(-width // BLOCK)
    flags = np.zeros((rows * BLOCK, cols * BLOCK), bool)
    flags[:height, :width] = frontier
    needed = np.flatnonzero(flags.reshape(rows, BLOCK, cols, BLOCK).any(axis=(1, 3)))
    row = int(frontier_row(state.tick, Rules().conquest_substeps))
    listed = np.asarray(state.block_lists)[row, :int(state.block_counts[row])]
    missing = np.setdiff1d(needed, listed)
    assert missing.size == 0, f"tick {int(state.tick)}: frontier blocks {missing[:10]} not listed"


@given(st.sampled_from(sorted(MAPS)), st.integers(0, 2**31 - 1))
@settings(max_examples=4)
def test_carried_counts_equal_a_recount(name, seed):
    game_map, arrays = MAPS[name], ARRAYS[name]
    state = game.new_game(jax.random.key(seed), arrays, ["human"] + ["tribe"] * 5 + ["nation"] * 2)
    state = game.launch_attack(state, 1, 0, 10_000)
    for _ in range(TICKS // EVERY):
        state, scratch = run(state, arrays, EVERY)
        assert not np.asarray(scratch.counts).any(), "a tick left counts in the histogram table it hands on"
        owner = np.asarray(state.owner)
        assert not owner[~game_map.land].any(), "water is never owned"
        counts = np.bincount(owner[game_map.land], minlength=9)
        np.testing.assert_array_equal(np.asarray(state.tiles), counts, err_msg=f"tick {int(state.tick)}")
        sparse, dense, listed, borders = contacts(state, arrays)
        np.testing.assert_array_equal(np.asarray(sparse), np.asarray(dense))
        np.testing.assert_array_equal(np.asarray(listed), np.asarray(dense))
        assert_border_list_complete(state, borders)
        assert_frontier_list_complete(state, game_map.land)
    assert int(state.tick) == TICKS


@pytest.mark.parametrize("name", ["continents_192_s4", "continents_128"])
def test_frontier_taken_page_by_page_as_in_one(name, monkeypatch):
    """The conquest counts and takes a chunk's (or a small map's whole) frontier tiles a page of
    FRONTIER_PAGE at a time: with pages of 32 (many a chunk) the game is the same, bit for bit, as with the
    usual pages (one a chunk here). The 192 x 192 map is read by blocks, the 128 x 128 one whole."""
    arrays = ARRAYS.get(name) or game.map_arrays(load_map(name))
    state = game.new_game(jax.random.key(3), arrays, ["human"] + ["tribe"] * 5 + ["nation"] * 2)
    state = game.launch_attack(state, 1, 0, 10_000)
    usual = run(state, arrays, EVERY)[0]
    monkeypatch.setattr(conquest, "FRONTIER_PAGE", 32)
    # A new function, so that it is traced again (JAX caches a function's trace): 32 tiles a page.
    paged = jax.jit(lambda s, a: run.__wrapped__(s, a, EVERY))(state, arrays)[0]
    assert_same_trees(usual, paged)
    assert int(usual.tiles[1:].sum()) > 0
