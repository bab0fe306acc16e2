"""What the tick keeps incrementally equals a recount from scratch, after hundreds of random ticks.

The tick never recounts the map: tiles per player are updated from the tiles that change hands, and the
bots read border contacts from the blocks that hold a border. On maps big enough for the block-sparse
paths (conquest by blocks above 32,768 tiles, contacts by blocks above 16,384), with the scripted bots
attacking each other, every 50 ticks the carried quantities must equal a plain recount of the owner grid.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxms import game, load_map
from jaxms.game.bots import border_contacts, border_contacts_dense, scripted_bots

MAPS = {name: load_map(name) for name in ("continents_192_s4", "islands_256x160_s2")}
ARRAYS = {name: game.map_arrays(m) for name, m in MAPS.items()}
TICKS, EVERY = 300, 50


@partial(jax.jit, static_argnums=2)
def run(state, arrays, n):
    return game.run_ticks(state, arrays, n, bots=scripted_bots)


@jax.jit
def contacts(owner, land):
    return border_contacts(owner, land, 9), border_contacts_dense(owner, land, 9)


@given(st.sampled_from(sorted(MAPS)), st.integers(0, 2**31 - 1))
@settings(max_examples=4)
def test_carried_counts_equal_a_recount(name, seed):
    game_map, arrays = MAPS[name], ARRAYS[name]
    state = game.new_game(jax.random.key(seed), arrays, ["human"] + ["tribe"] * 7)
    state = game.launch_attack(state, 1, 0, 10_000)
    for _ in range(TICKS // EVERY):
        state = run(state, arrays, EVERY)
        owner = np.asarray(state.owner)
        assert not owner[~game_map.land].any(), "water is never owned"
        counts = np.bincount(owner[game_map.land], minlength=9)
        np.testing.assert_array_equal(np.asarray(state.tiles), counts, err_msg=f"tick {int(state.tick)}")
        sparse, dense = contacts(state.owner, arrays.land)
        np.testing.assert_array_equal(np.asarray(sparse), np.asarray(dense))
    assert int(state.tick) == TICKS
