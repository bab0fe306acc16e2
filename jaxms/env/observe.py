"""Observations of the agent's game (a stand-in until the multi-scale observation module lands).

An observer is a small object with:
- `space(map_shape)`: the `spaces.Dict` of one observation;
- `init(game, arrays, mask) -> (obs, memory)`: the first observation of an episode and the memory
  (frame stack) it carries;
- `observe(game, arrays, mask, memory) -> (obs, memory)`: the observation after a step.
Everything is a pure function of the game state, so it runs inside jit and vmaps over environments.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxms.env import spaces
from jaxms.env.actions import NUM_ACTIONS
from jaxms.game.state import GameState, MapArrays

AGENT = 1


@dataclasses.dataclass(frozen=True)
class MinimalObserver:
    """One `size` x `size` view of the whole map (area fractions of own / enemy / unowned land and water,
    as uint8 0..255), 4 scalar features and the action mask. No frame stack."""

    size: int = 32

    def space(self, map_shape: tuple[int, int]) -> spaces.Dict:
        del map_shape
        return spaces.Dict({
            "map": spaces.Box(0, 255, (self.size, self.size, 4), jnp.uint8),
            "features": spaces.Box(-10.0, 10.0, (4,), jnp.float32),
            "action_mask": spaces.Box(0, 1, (NUM_ACTIONS,), jnp.bool_),
        })

    def _frame(self, game: GameState, arrays: MapArrays, mask: jax.Array) -> dict[str, jax.Array]:
        owner = game.owner
        channels = jnp.stack([owner == AGENT, (owner != AGENT) & (owner > 0), arrays.land & (owner == 0),
                              ~arrays.land], axis=-1).astype(jnp.float32)
        pooled = jax.image.resize(channels, (self.size, self.size, 4), "linear", antialias=True)
        land = jnp.maximum(arrays.num_land_tiles, 1).astype(jnp.float32)
        cap = jnp.maximum(game.troops[1:].max(), 1.0)
        features = jnp.stack([game.tiles[AGENT] / land, game.troops[AGENT] / cap,
                              game.alive.sum() / game.alive.shape[0], game.tick / 10_000.0])
        return {"map": jnp.round(jnp.clip(pooled, 0.0, 1.0) * 255).astype(jnp.uint8),
                "features": features.astype(jnp.float32), "action_mask": mask}

    def init(self, game: GameState, arrays: MapArrays, mask: jax.Array):
        return self._frame(game, arrays, mask), ()

    def observe(self, game: GameState, arrays: MapArrays, mask: jax.Array, memory):
        return self._frame(game, arrays, mask), memory
