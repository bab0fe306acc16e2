"""Game statistics the env, the observation and evaluation read: land share, rank, the winner.

Computed from the per-player tile counts the state carries (no pass over the map).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxms.game.state import GameState, MapArrays


def land_share(game: GameState, arrays: MapArrays, player: int) -> jax.Array:
    """float32[]: the share of the map's land that `player` owns. Written as a product with the reciprocal:
    XLA rewrites a division by a broadcast value that way in some programs (a vmapped env step) and not
    in others, which made the batched and single envs' shares differ by an ulp."""
    return game.tiles[player] * (1.0 / jnp.maximum(arrays.num_land_tiles, 1).astype(jnp.float32))


def rank(game: GameState, player: int) -> jax.Array:
    """float32[] in 1..P: 1 + the players owning more tiles than `player`; a dead player ranks last (P)."""
    num_players = game.tiles.shape[0] - 1
    ahead = (game.tiles[1:] > game.tiles[player]).sum()
    return jnp.where(game.tiles[player] > 0, 1.0 + ahead, float(num_players)).astype(jnp.float32)


def has_won(game: GameState, player: int) -> jax.Array:
    """bool[]: `player` has won the game."""
    return game.winner == player


def is_over(game: GameState) -> jax.Array:
    """bool[]: somebody has won."""
    return game.winner != 0
