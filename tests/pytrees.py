"""Comparing pytrees in tests: every leaf as numpy, PRNG keys as their raw bits."""

from __future__ import annotations

import jax
import numpy as np


def leaves(tree) -> list[np.ndarray]:
    """Every array of a pytree as numpy (PRNG keys as their raw bits)."""
    return [np.asarray(_data(x)) for x in jax.tree.leaves(tree)]


def assert_same_trees(a, b) -> None:
    """Same structure and every leaf equal bit for bit; a mismatch names the leaf's path."""
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(_data(x)), np.asarray(_data(y)),
                                      err_msg=jax.tree_util.keystr(path))


def _data(x):
    return jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
