"""Vectorised conquest: every running attack spends its per-tick budget on its frontier, inside jit.

The engine pops tiles one by one from a min-heap per attack with priority `U{10..16} * (1 - 0.5 k + g / 2)`
(k: attacker-owned 4-neighbours, g: 1 / 1.5 / 2 for plains / highland / mountain) until the tick's budget
is spent, each tile costing budget, attacker troops and defender troops by terrain and troop ratios.

Here that loop becomes a histogram. The priority takes few distinct values (4 k x 3 terrains x 7 draws,
minus the tile's age on the frontier, 0..15 ticks: the engine's `+ insertion tick` that makes older entries
go first), so every frontier tile falls in one of 1344 priority bins, ordered by value, and within a bin
every tile of an (attacker, target) pair has the same cost and losses. One segment-sum counts tiles per
(pair, bin); a prefix sum over the bins says how many tiles of each bin the budget (and the attack's troops)
can pay for: bins before the boundary are taken whole, the boundary bin partly, tiles chosen at random (the
engine's ties are random too). The budget is spent in `Rules.conquest_substeps` rounds with the frontier
recomputed in between, so tiles that become more surrounded during a tick are preferred, as in the engine.

Simplifications, each measured against the plain-Python reference engine in tests/: a tile bordered by
several attackers is claimed by one of them (the most surrounding, ties random) per round; a tile's age is
its time on anyone's frontier (saturating at 15 ticks) and its k is today's, where the engine keeps the
earliest heap entry with the k of its time; the boundary bin is sampled per tile.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxms.game.rules import PlayerKind, Rules

NUM_AGES = 16  # ticks on the frontier 0..15 (older counts as 15)
NUM_K = 4  # attacker-owned neighbours 1..4
NUM_TERRAIN = 3
NUM_DRAWS = 7  # U{10..16}


def _priority_tables(rules: Rules) -> tuple[np.ndarray, np.ndarray]:
    """Priority bins sorted by the engine's key `U (1 - 0.5 k + g / 2) + insertion tick`.

    The insertion tick is `now - age`, so the key relative to now is `U (1 - 0.5 k + g / 2) - age`.
    Returns (bin_of[age, k - 1, terrain, draw] int32[16, 4, 3, 7], terrain_of_bin int32[1344]).
    """
    age = np.arange(NUM_AGES)[:, None, None, None]
    k = np.arange(1, NUM_K + 1)[None, :, None, None]
    g = np.asarray(rules.terrain_priority)[None, None, :, None]
    draw = np.arange(10, 10 + NUM_DRAWS)[None, None, None, :]
    priority = draw * (1.0 - 0.5 * k + g / 2.0) - age
    order = np.argsort(priority.ravel(), kind="stable")
    bin_of = np.empty(order.size, dtype=np.int32)
    bin_of[order] = np.arange(order.size, dtype=np.int32)
    terrain_index = np.broadcast_to(np.arange(NUM_TERRAIN)[None, None, :, None], priority.shape).ravel()
    return bin_of.reshape(priority.shape), terrain_index[order].astype(np.int32)


def hash_bits(seed: jax.Array, index: jax.Array) -> jax.Array:
    """uint32 pseudo-random bits per index from a uint32 seed (a murmur3-style finaliser).

    Far cheaper than `jax.random` over every tile of a large map (one multiply-xorshift chain per tile);
    the seed comes from the game's `jax.random` key, so the same key still gives the same game.
    """
    x = index.astype(jnp.uint32) * jnp.uint32(0x9E3779B1) + seed
    x = (x ^ (x >> 16)) * jnp.uint32(0x85EBCA6B)
    x = (x ^ (x >> 13)) * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def shift(grid: jax.Array, dy: int, dx: int, fill) -> jax.Array:
    """grid[y + dy, x + dx] at (y, x), `fill` beyond the map edge (dy, dx in -1..1)."""
    height, width = grid.shape
    padded = jnp.pad(grid, ((1, 1), (1, 1)), constant_values=fill)
    return jax.lax.dynamic_slice(padded, (1 + dy, 1 + dx), (height, width))


NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # N, S, W, E


def pair_tile_values(attack_troops: jax.Array, troops: jax.Array, tiles: jax.Array, kind: jax.Array,
                     rules: Rules) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per (attacker, target, terrain): cost, attacker loss, defender loss of taking one tile (§5).

    Args:
        attack_troops: float32[P + 1, P + 1], troops of each attack.
        troops, tiles, kind: per player, [P + 1].
    Returns:
        cost, attacker_loss, defender_loss: float32[P + 1, P + 1, 3].
    """
    loss = jnp.asarray(rules.terrain_loss, jnp.float32)
    speed = jnp.asarray(rules.terrain_cost, jnp.float32)
    a = jnp.maximum(attack_troops, 1e-6)[..., None]
    attacker_kind, defender_kind = kind[:, None, None], kind[None, :, None]
    attacker_tiles = tiles.astype(jnp.float32)[:, None, None]
    d = troops[None, :, None]
    n = jnp.maximum(tiles.astype(jnp.float32), 1.0)[None, :, None]

    # Against unowned land (target column 0).
    tn_cost = jnp.clip(2000.0 * jnp.maximum(10.0, speed) / a, 5.0, 100.0)
    tn_loss = loss / jnp.where(attacker_kind == PlayerKind.TRIBE, 10.0, 5.0)

    # Against a player.
    beats_tribe = (attacker_kind != PlayerKind.TRIBE) & (defender_kind == PlayerKind.TRIBE)
    mag = loss * jnp.where(beats_tribe, rules.human_vs_tribe_loss_factor, 1.0)
    rate = np.log(2.0) / rules.large_defender_scale
    large_defender = 0.7 + 0.3 * (1.0 - jax.nn.sigmoid(rate * (n - rules.large_defender_midpoint)))
    size_ratio = rules.large_attacker_tiles / jnp.maximum(attacker_tiles, 1.0)
    is_large = attacker_tiles > rules.large_attacker_tiles
    loss_factor = jnp.where(is_large, size_ratio**rules.large_attacker_loss_exponent, 1.0)
    cost_factor = jnp.where(is_large, size_ratio**rules.large_attacker_cost_exponent, 1.0)
    density = d / n
    player_loss = (0.7 * jnp.clip(d / a, 0.6, 2.0) * mag * 0.8 * large_defender * loss_factor
                   + 0.3 * 1.3 * density * mag / 100.0)
    player_cost = jnp.clip(d / (5.0 * a), 0.2, 1.5) * speed * large_defender * cost_factor

    to_unowned = (jnp.arange(troops.shape[0]) == 0)[None, :, None]
    cost = jnp.where(to_unowned, tn_cost, player_cost)
    attacker_loss = jnp.where(to_unowned, tn_loss, player_loss)
    defender_loss = jnp.where(to_unowned, 0.0, jnp.broadcast_to(jnp.floor(density), cost.shape))
    return cost, attacker_loss, defender_loss


def frontier_histogram(owner: jax.Array, land: jax.Array, terrain: jax.Array, age: jax.Array,
                       live: jax.Array, seed: jax.Array, rules: Rules):
    """Frontier tiles of every conquering attack, binned by priority.

    Args:
        owner: uint8[H, W]; land: bool[H, W]; terrain: uint8[H, W] (0..2 on land).
        age: uint8[H, W], ticks each tile has been on a frontier.
        live: bool[P + 1, P + 1], attacks that conquer this round.
        seed: uint32[2], randomness for this round.
    Returns:
        counts: int32[P + 1, P + 1, 1344] frontier tiles per (attacker, target, bin);
        segment: int32[H * W] each tile's (pair, bin) index, or the dummy index P1 * P1 * 84;
        claimant: int32[H, W] the attacker claiming the tile (0: none);
        tie: uint32[H * W] random bits for sampling the boundary bin.
    """
    num_slots = live.shape[0]
    bin_of, _ = _priority_tables(rules)
    num_bins = bin_of.size
    height, width = owner.shape
    o = owner.astype(jnp.int32)
    index = jnp.arange(height * width, dtype=jnp.uint32).reshape(height, width)
    neighbours = [shift(o, dy, dx, 0) for dy, dx in NEIGHBOURS]
    live_flat = live.ravel()
    counts_k = [sum((m == n).astype(jnp.int32) for m in neighbours) for n in neighbours]
    rand = hash_bits(seed[0], index)
    scores = []
    for direction, (n, k) in enumerate(zip(neighbours, counts_k, strict=True)):
        candidate = land & (n != o) & (n > 0) & live_flat[n * num_slots + o]
        # The most surrounding attacker claims the tile; two random bits per direction break ties.
        scores.append(jnp.where(candidate, k * 4 + ((rand >> (2 * direction)) & 3).astype(jnp.int32), -1))
    scores = jnp.stack(scores)
    best = jnp.argmax(scores, axis=0)
    has_claim = jnp.max(scores, axis=0) >= 0
    claimant = jnp.where(has_claim, jnp.choose(best, neighbours, mode="clip"), 0)
    k = jnp.clip(jnp.choose(best, counts_k, mode="clip"), 1, NUM_K)
    draw = ((rand >> 8) % NUM_DRAWS).astype(jnp.int32)
    tile_terrain = jnp.minimum(terrain.astype(jnp.int32), NUM_TERRAIN - 1)
    tile_age = jnp.minimum(age.astype(jnp.int32), NUM_AGES - 1)
    bins = jnp.asarray(bin_of).ravel()[((tile_age * NUM_K + k - 1) * NUM_TERRAIN + tile_terrain) * NUM_DRAWS
                                       + draw]
    dummy = num_slots * num_slots * num_bins
    segment = jnp.where(has_claim, (claimant * num_slots + o) * num_bins + bins, dummy).ravel()
    counts = jax.ops.segment_sum(jnp.ones_like(segment), segment, num_segments=dummy + 1)[:-1]
    tie = hash_bits(seed[1], index).ravel()
    return counts.reshape(num_slots, num_slots, num_bins), segment, claimant.reshape(owner.shape), tie


def plan_takes(counts: jax.Array, budget: jax.Array, attack_troops: jax.Array, cost: jax.Array,
               attacker_loss: jax.Array, rules: Rules, final_round: bool = True) -> jax.Array:
    """How many tiles of each priority bin every attack takes this round (float32[P + 1, P + 1, bins]).

    Tiles go in bin order while budget remains and while the attack has at least one troop before the tile.
    In the final round a tile is taken if the budget before it is positive (so the last one may overdraw,
    as in the engine); earlier rounds take only tiles their share pays for whole, so a tick overdraws once.
    """
    _, terrain_of_bin = _priority_tables(rules)
    bin_cost = cost[..., terrain_of_bin]  # [P1, P1, 84]
    bin_loss = attacker_loss[..., terrain_of_bin]
    n = counts.astype(jnp.float32)
    cost_before = jnp.cumsum(n * bin_cost, axis=-1) - n * bin_cost
    loss_before = jnp.cumsum(n * bin_loss, axis=-1) - n * bin_loss
    budget_left = budget[..., None] - cost_before
    troops_left = attack_troops[..., None] - loss_before
    rounding = jnp.ceil if final_round else jnp.floor
    by_budget = rounding(budget_left / jnp.maximum(bin_cost, 1e-6))
    by_troops = jnp.floor((troops_left - 1.0) / jnp.maximum(bin_loss, 1e-6)) + 1.0
    by_troops = jnp.where(bin_loss > 0, by_troops, jnp.inf)
    takes = jnp.minimum(jnp.minimum(by_budget, by_troops), n)
    return jnp.where((budget_left > 0) & (troops_left >= 1.0), jnp.maximum(takes, 0.0), 0.0)
