"""cond_any, loop_bound and after (jaxms.game.control): the same results as lax.cond / a per-env loop, under
vmap a conditional that stays a conditional, and a compiled tick that never copies the grids."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxms.game import control
from jaxms.game.control import cond_any, loop_bound


def _costly(x, y):
    return jnp.sin(x) * y + 1.0


def _cheap(x, y):
    return x


@pytest.mark.parametrize("one_env_at_a_time", [True, False], ids=["cpu form", "gpu form"])
def test_cond_any_gives_each_env_its_own_branch(one_env_at_a_time, monkeypatch):
    monkeypatch.setattr(control, "_one_env_at_a_time", lambda: one_env_at_a_time)
    x = jnp.arange(6, dtype=jnp.float32)
    y = jnp.float32(2.0)  # not batched: broadcast inside
    pred = jnp.array([True, False, False, True, False, False])
    batched = jax.jit(jax.vmap(lambda p, a: cond_any(p, _costly, _cheap, a, y)))(pred, x)
    expected = [jax.lax.cond(p, _costly, _cheap, a, y) for p, a in zip(pred, x, strict=True)]
    np.testing.assert_array_equal(batched, np.array(expected))
    none = jax.jit(jax.vmap(lambda p, a: cond_any(p, _costly, _cheap, a, y)))(jnp.zeros(6, bool), x)
    np.testing.assert_array_equal(none, x)
    # Unbatched it is lax.cond.
    assert float(cond_any(jnp.bool_(True), _costly, _cheap, x[1], y)) == float(_costly(x[1], y))


def test_under_vmap_cond_any_stays_a_conditional_where_lax_cond_becomes_a_select():
    x, pred = jnp.arange(4, dtype=jnp.float32), jnp.array([True, False, True, False])
    ours = jax.make_jaxpr(jax.vmap(lambda p, a: cond_any(p, _costly, _cheap, a, a)))(pred, x)
    plain = jax.make_jaxpr(jax.vmap(lambda p, a: jax.lax.cond(p, _costly, _cheap, a, a)))(pred, x)
    # On a CPU each env runs its own conditional (a scan over the batch), on a GPU one for the batch: either
    # way a conditional is left in the program, where lax.cond under vmap leaves only a select.
    assert "cond[" in str(ours)
    assert "cond[" not in str(plain)


def test_loop_bound_is_the_batch_maximum_and_extra_steps_may_be_no_ops():
    counts = jnp.array([0, 3, 1, 5], jnp.int32)

    def total(count):
        # Steps past an env's own count add nothing: the loop runs to the batch's bound.
        return jax.lax.fori_loop(0, loop_bound(count), lambda i, s: s + jnp.where(i < count, i + 1, 0), 0)

    np.testing.assert_array_equal(jax.jit(jax.vmap(total))(counts), [0, 6, 1, 15])
    assert int(jax.jit(jax.vmap(lambda c: loop_bound(c) + 0 * c))(counts).max()) == 5
    assert int(loop_bound(jnp.int32(7))) == 7


def _grid_copies(compiled_text: str, shape: str) -> int:
    """Copies of an array of `shape` (e.g. "u8[1,202,194]") in a compiled module's text, outside its entry
    computation (there the inputs are copied once per call, not per tick)."""
    computation, copies = "", 0
    for line in compiled_text.splitlines():
        if not line.startswith(" ") and "(" in line:
            computation = line
        elif f"= {shape}" in line and " copy(" in line and not computation.startswith("ENTRY"):
            copies += 1
    return copies


def test_after_changes_nothing_and_keeps_the_grids_uncopied_in_a_tick():
    grid = jnp.arange(12, dtype=jnp.uint8).reshape(3, 4)
    np.testing.assert_array_equal(control.after(grid, jnp.ones(3), jnp.int32(5)), grid)
    # A tick on a map read by blocks (with boats, bots and their border contacts, the rounds of conquest
    # writing the grids in place): XLA keeps one copy of each grid, written in place, none made per tick.
    from jaxms import game, load_map
    from jaxms.game.bots import scripted_bots

    arrays = game.map_arrays(load_map("islands_192"))
    start = game.new_game(jax.random.key(0), arrays, ["human"] + ["tribe"] * 4)
    ticks = jax.jit(jax.vmap(lambda g: game.run_ticks(g, arrays, 3, bots=scripted_bots)))
    batch = jax.tree.map(lambda x: x[None], start)
    text = ticks.lower(batch).compile().as_text()
    shape = "u8[1,{},{}]".format(*start.board_owner.shape)
    assert shape in text and _grid_copies(text, shape) == 0
