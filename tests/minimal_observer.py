"""A tiny observer for env tests that do not look at the views (cheap to compile): one `size` x `size`
view of the whole map, 4 scalar features and the action mask."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxms.env import spaces
from jaxms.env.contract import AGENT, NUM_ACTIONS
from jaxms.env.views import fit_plans, pool_sums
from jaxms.game import stats
from jaxms.game.state import GameState, MapArrays


@dataclasses.dataclass(frozen=True)
class MinimalObserver:
    """A tiny stand-in for env tests: one `size` x `size` view of the whole map (area fractions of own /
    enemy / unowned land and water, as uint8 0..255; the shorter axis centred, as the real global view),
    4 scalar features and the action mask. No frame stack."""

    size: int = 32

    def space(self, map_shape: tuple[int, int]) -> spaces.Dict:
        del map_shape
        return spaces.Dict({
            "map": spaces.Box(0, 255, (self.size, self.size, 4), jnp.uint8),
            "features": spaces.Box(-10.0, 10.0, (4,), jnp.float32),
            "action_mask": spaces.Box(0, 1, (NUM_ACTIONS,), jnp.bool_),
        })

    def _frame(self, game: GameState, arrays: MapArrays, mask: jax.Array, time=None) -> dict[str, jax.Array]:
        owner = game.owner
        # The observers' area pooling (integer sums where whole blocks tile the map): a vmapped env and a
        # single one compute the same bits, also at the suite's -O0 (jax.image.resize's dots did not).
        plan_y, plan_x = fit_plans(*owner.shape, self.size)
        planes = [owner == AGENT, (owner != AGENT) & (owner > 0), arrays.land & (owner == 0), ~arrays.land]
        pooled = pool_sums([(plane, 1) for plane in planes], plan_y, plan_x)
        cap = jnp.maximum(game.troops[1:].max(), 1.0)
        features = jnp.stack([stats.land_share(game, arrays, AGENT), game.troops[AGENT] / cap,
                              game.alive.sum() / game.alive.shape[0],
                              game.tick / 10_000.0 if time is None else time])
        return {"map": jnp.round(jnp.clip(pooled, 0.0, 1.0) * 255).astype(jnp.uint8),
                "features": features.astype(jnp.float32), "action_mask": mask}

    def init(self, game: GameState, arrays: MapArrays, mask: jax.Array, time=None):
        return self._frame(game, arrays, mask, time), ()

    def observe(self, game: GameState, arrays: MapArrays, mask: jax.Array, memory, time=None):
        return self._frame(game, arrays, mask, time), memory
