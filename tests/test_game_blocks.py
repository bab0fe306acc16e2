"""The block lists' own operations (game/blocks.py) on hand-made lists: appends keep each block once, in the
order of first appearance, and a carried list lands whole but for the blocks it is told to leave out.

The ticks use these on lists of a few hundred blocks, one chunk of `carry_list`; here the lists run over
several chunks (up to 1,400 ids against 512 a chunk), and two lists of different lengths are carried in one
vmapped call, as a batch of envs does (the loop runs to the longer one's chunks).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from jaxms.game.blocks import CARRY_CHUNK, BlockLists, carry_list

NUM_BLOCKS = 1500
ROWS, LENGTH = 4, 1512  # a border list in rows 0 and 1, round lists in rows 2 and 3
SOURCE, TARGET, TAG, SKIP = 0, 1, 7, 5


def make_lists(source_ids, skipped, present) -> BlockLists:
    """Lists whose row SOURCE holds `source_ids`, whose round lists hold `skipped` (tag SKIP in tag row 1)
    and whose row TARGET already holds `present` (tag TAG in tag row 0)."""
    ids = np.full((ROWS, LENGTH), NUM_BLOCKS, np.int32)
    ids[SOURCE, :len(source_ids)] = source_ids
    ids[TARGET, :len(present)] = present
    ids[SOURCE, len(source_ids):] = np.arange(LENGTH - len(source_ids)) % NUM_BLOCKS  # stale, past the count
    count = np.zeros(ROWS, np.int32)
    count[SOURCE], count[TARGET] = len(source_ids), len(present)
    tags = np.zeros((2, NUM_BLOCKS + 1), np.int32)
    tags[1, list(skipped)] = SKIP
    tags[0, list(present)] = TAG
    return BlockLists(jnp.asarray(ids), jnp.asarray(count), jnp.asarray(tags))


def expected(source_ids, skipped, present) -> list[int]:
    left_out = set(skipped) | set(present)
    return list(present) + [i for i in source_ids if i not in left_out]


def listed(lists: BlockLists, row: int) -> list[int]:
    return np.asarray(lists.ids)[row, :int(lists.count[row])].tolist()


carry = jax.jit(carry_list)


@given(st.integers(0, 2**32 - 1), st.integers(0, 1400), st.integers(0, 200), st.integers(0, 50))
def test_carry_appends_the_list_once_but_for_the_skipped(seed, length, num_skipped, num_present):
    rng = np.random.default_rng(seed)
    source = rng.permutation(NUM_BLOCKS)[:length].tolist()
    skipped = set(rng.permutation(source)[:num_skipped].tolist()) if source else set()
    present = rng.permutation(NUM_BLOCKS)[:num_present].tolist()
    lists = make_lists(source, skipped, present)
    out = carry(lists, SOURCE, TARGET, jnp.int32(TAG), jnp.bool_(True), jnp.int32(SKIP))
    want = expected(source, skipped, present)
    assert listed(out, TARGET) == want
    assert sorted(np.flatnonzero(np.asarray(out.tags[0]) == TAG).tolist()) == sorted(want)
    assert listed(out, SOURCE) == list(source)  # the source is read, not changed
    # Told not to carry, nothing changes.
    still = carry(lists, SOURCE, TARGET, jnp.int32(TAG), jnp.bool_(False), jnp.int32(SKIP))
    for a, b in zip(still, lists, strict=True):
        np.testing.assert_array_equal(a, b)


def test_carry_vmapped_over_lists_of_different_lengths():
    rng = np.random.default_rng(0)
    short = rng.permutation(NUM_BLOCKS)[:40].tolist()
    long = rng.permutation(NUM_BLOCKS)[:3 * CARRY_CHUNK - 100].tolist()
    cases_ = [(short, set(short[:5]), []), (long, set(long[600:700]), long[:3])]
    batch = jax.tree.map(lambda *x: jnp.stack(x), *[make_lists(*case) for case in cases_])
    out = jax.jit(jax.vmap(carry_list, in_axes=(0, None, None, None, None, None)))(
        batch, SOURCE, TARGET, jnp.int32(TAG), jnp.bool_(True), jnp.int32(SKIP))
    for i, case in enumerate(cases_):
        assert listed(jax.tree.map(lambda x, i=i: x[i], out), TARGET) == expected(*case)


def test_append_keeps_each_block_once_in_first_order():
    lists = make_lists([], set(), [3, 9])
    candidates = jnp.asarray([4, 9, 4, 12, 3, 12, 7, NUM_BLOCKS], jnp.int32)
    wanted = jnp.asarray([True, True, True, True, True, True, False, True])
    append = jax.jit(BlockLists.append, static_argnums=(1, 2))  # (row, tag row)
    out = append(lists, TARGET, 0, jnp.int32(TAG), candidates, wanted)
    assert listed(out, TARGET) == [3, 9, 4, 12]  # 9 and 3 already listed, 7 not wanted, the empty block never
