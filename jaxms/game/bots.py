"""The scripted opponents (engine §7): tribes in full, nations reduced, as one vectorised decision per tick.

Every bot decides on its own phase tick (`tick % ai_rate == ai_phase`). All bots are handled at once with
per-player vectors: which neighbours a player has comes from `border_contacts`, a (P + 1) x (P + 1) matrix
read from the blocks of the map that hold a border, on ticks where some bot decides, so a tick's cost does
not grow with the number of bots beyond those vectors. Decisions are written to `state.orders` and
launched at the tick's end like any other order.

Boats (AiAttackBehavior): a nation with no unowned land beside it sends, with no bordering enemy, a random
boat with probability 1/5 (and goes on deciding), or, with bordering enemies, a random boat with
probability 1/10 instead of anything else. Retaliation against an attacker it does not border goes by
boat (tribes and nations). A boat carries T / 5 and needs a free boat slot. The random boat's landing
tile is drawn like the engine's: up to `BOAT_SAMPLES` random tiles within +-150 of the bot (here of its
spawn centre rather than of a random shore tile of its own: no pass over the map), the first that is a
shore tile of unowned land or a tribe wins, else the first of a player that it does not border and that
has no more troops than it. A draw on a water body the bot does not touch launches nothing (the launch
finds no shore tile), where the engine would try the next tile.

What is left out, because the game has no alliances or nukes (yet): the tribes' "attack a traitor"
steps, the nations' emojis, embargoes, alliance replies, nukes, warships and the strategies that need
them (assist allies, betray, hated, AFK, traitors, island, donate, nuked land). A nation's list is
therefore: unowned land, boats, tribes, retaliate, weakest neighbour. Adding alliances would mean a P x P
relation matrix in `GameState`; the traitor steps would then read it like `border_contacts`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxms.game.boats import BOATS_PER_PLAYER, boats_in_flight
from jaxms.game.control import cond_any, loop_bound
from jaxms.game.grid import compact, uniforms
from jaxms.game.loop import max_troops
from jaxms.game.rules import Difficulty, PlayerKind, Rules
from jaxms.game.state import GameState, MapArrays
from jaxms.game.structures import build_structures

# How many neighbouring tribes a nation attacks at once, per difficulty (Medium draws 1 or 2).
_PARALLEL_TRIBE_ATTACKS = ((1, 1), (1, 2), (3, 3), (100, 100))
# Probability that a nation skips an attack on a human, per difficulty.
_NATION_SKIP_HUMAN = (0.5, 0.25, 0.0, 0.0)
BOAT_SAMPLES = 64  # random tiles a bot tries for a boat's landing (the engine tries up to 500)
BOAT_REACH = 150  # they lie within +-150 tiles of the bot


# Border contacts on a large map are read only from the 8 x 8 blocks that hold a border (see below).
CONTACT_BLOCK = 8
CONTACT_CHUNK = 512  # blocks per step of the loop over border blocks
DENSE_CONTACT_TILES = 128 * 128  # maps up to this size are read whole (one scatter is cheaper there)


def border_contacts_dense(owner: jax.Array, land: jax.Array, num_slots: int) -> jax.Array:
    """`border_contacts` from one scatter over every right and down neighbour pair of the map."""
    o = owner.astype(jnp.int32)
    pairs = []
    for a, b, both_land in ((o[:, :-1], o[:, 1:], land[:, :-1] & land[:, 1:]),
                            (o[:-1, :], o[1:, :], land[:-1, :] & land[1:, :])):
        dummy = num_slots * num_slots
        pairs.append(jnp.where(both_land & (a != b), a * num_slots + b, dummy).ravel())
    seen = jnp.zeros(num_slots * num_slots + 1, jnp.bool_).at[jnp.concatenate(pairs)].set(True)
    seen = seen[:-1].reshape(num_slots, num_slots)
    return seen | seen.T


def border_contacts(owner: jax.Array, land: jax.Array, num_slots: int) -> jax.Array:
    """bool[P + 1, P + 1]: `contacts[i, j]` when a tile of i is 4-adjacent to a land tile owned by j.

    Column 0 is unowned land (water is never a neighbour). Symmetric; the diagonal is False.

    On a large map most of it is the inside of territories, where no pair of neighbours differs. One
    element-wise pass flags the 8 x 8 blocks holding a border pair (a tile and its right or lower neighbour,
    both land, owned by different slots); only those blocks' pairs go into the scatter that marks the
    matrix (a scatter runs serially on the CPU: over all 2 H W pairs it was ~6 ms of a 9 ms tick at
    1024x1024). The result equals `border_contacts_dense`.
    """
    height, width = owner.shape
    if height * width <= DENSE_CONTACT_TILES:
        return border_contacts_dense(owner, land, num_slots)
    b = CONTACT_BLOCK
    rows, cols = -(-height // b), -(-width // b)
    # The grids padded with water to whole blocks plus one row and column (each block's window reaches
    # its right and lower neighbours); concatenation, as XLA's CPU pad is slow.
    def padded(grid):
        grid = jnp.concatenate([grid, jnp.zeros((height, cols * b + 1 - width), grid.dtype)], axis=1)
        return jnp.concatenate([grid, jnp.zeros((rows * b + 1 - height, cols * b + 1), grid.dtype)], axis=0)

    o, w = padded(owner), padded(land)
    differs_right = w[:-1, :-1] & w[:-1, 1:] & (o[:-1, :-1] != o[:-1, 1:])
    differs_down = w[:-1, :-1] & w[1:, :-1] & (o[:-1, :-1] != o[1:, :-1])
    border = (differs_right | differs_down).astype(jnp.uint8).reshape(rows, b, cols * b).max(axis=1)
    border = border.reshape(rows * cols, b).max(axis=1) > 0
    # The border blocks' ids first, then the out-of-range id rows * cols, whose window is read clamped and
    # its pairs dropped.
    count = rows * cols
    ids, num_chunks = compact(border, CONTACT_CHUNK)
    dummy = num_slots * num_slots
    window = (b + 1, b + 1)

    def mark(step, seen):
        chunk = jax.lax.dynamic_slice_in_dim(ids, step * CONTACT_CHUNK, CONTACT_CHUNK)
        real = chunk < count
        corner = jnp.stack([chunk // cols, chunk % cols], axis=-1) * b
        corner = jnp.where(real[:, None], corner, 0)
        owners = jax.vmap(lambda c: jax.lax.dynamic_slice(o, (c[0], c[1]), window))(corner).astype(jnp.int32)
        lands = jax.vmap(lambda c: jax.lax.dynamic_slice(w, (c[0], c[1]), window))(corner)
        a = owners[:, :b, :b]
        codes = []
        right, below = (owners[:, :b, 1:], lands[:, :b, 1:]), (owners[:, 1:, :b], lands[:, 1:, :b])
        for other, other_land in (right, below):
            pair = lands[:, :b, :b] & other_land & (a != other) & real[:, None, None]
            codes.append(jnp.where(pair, a * num_slots + other, dummy).ravel())
        return seen.at[jnp.concatenate(codes)].set(True)

    seen = jax.lax.fori_loop(0, num_chunks, mark, jnp.zeros(dummy + 1, jnp.bool_))
    seen = seen[:-1].reshape(num_slots, num_slots)
    return seen | seen.T


def state_contacts(state: GameState, arrays: MapArrays) -> jax.Array:
    """`border_contacts` of a game: read from its border list's blocks (game/blocks.py) on a map read by
    blocks, so a decision costs what the borders hold rather than the map's area; one scatter over the
    whole map on a small one."""
    from jaxms.game.blocks import BORDER_ROWS, state_lists
    from jaxms.game.conquest import game_board, list_contacts, listed

    num_slots = state.troops.shape[0]
    board = game_board(state)
    if board.whole:
        return border_contacts_dense(state.owner, arrays.land, num_slots)
    lists = state_lists(state)
    return list_contacts(board, lists, listed(lists, state.tick % BORDER_ROWS), num_slots)


def _first_allowed(scores: jax.Array, allowed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per row, the column of the smallest score among allowed ones: (column int32[R], found bool[R])."""
    masked = jnp.where(allowed, scores, jnp.inf)
    return jnp.argmin(masked, axis=-1).astype(jnp.int32), jnp.any(allowed, axis=-1)


def _one_hot_orders(target: jax.Array, troops: jax.Array, fire: jax.Array, num_slots: int) -> jax.Array:
    """float32[P + 1, P + 1]: row p orders `troops[p]` against `target[p]` where `fire[p]`."""
    size = jnp.where(fire, jnp.floor(troops), 0.0)
    return jax.nn.one_hot(target, num_slots, dtype=jnp.float32) * size[:, None]


def _nation_tribe_attacks(state: GameState, contacts: jax.Array, available: jax.Array, deciding: jax.Array,
                          key: jax.Array) -> jax.Array:
    """float32[P + 1, P + 1]: each deciding nation's attacks on its neighbouring tribes.

    Lowest troop density first; each attack sends min(4 D, available) and is skipped when the available
    troops are below 2 D (D: the tribe's troops); up to 1 (Easy), 1-2 (Medium), 3 (Hard) or 100
    (Impossible) tribes at once. Easy nations send everything available.
    """
    num_slots = state.troops.shape[0]
    is_tribe = (state.kind == PlayerKind.TRIBE) & state.alive
    candidates = contacts & is_tribe[None, :] & deciding[:, None]
    density = state.troops / jnp.maximum(state.tiles.astype(jnp.float32), 1.0)

    def by_density(candidates, density):  # [P1, P1]: each row's tribes, the lowest density first
        return jnp.argsort(jnp.where(candidates, density[None, :], jnp.inf), axis=1)

    def unsorted(candidates, density):  # no candidate anywhere: the order is never read (no rank below)
        return jnp.broadcast_to(jnp.arange(num_slots), (num_slots, num_slots))

    # XLA CPU's sort is slow (~0.1 ms a tick with 50 tribes): only on ticks where a nation has a candidate.
    order = cond_any(candidates.any(), by_density, unsorted, candidates, density)
    limits = jnp.asarray(_PARALLEL_TRIBE_ATTACKS, jnp.int32)[state.difficulty]
    limit = jax.random.randint(key, (num_slots,), limits[:, 0], limits[:, 1] + 1)
    easy = state.difficulty == Difficulty.EASY
    rows = jnp.arange(num_slots)

    def body(rank, carry):
        left, sent, orders = carry
        tribe = order[:, rank]
        d = state.troops[tribe]
        ok = candidates[rows, tribe] & (sent < limit) & (left > 0) & (easy | (left >= 2.0 * d))
        size = jnp.where(easy, left, jnp.minimum(4.0 * d, left))
        size = jnp.where(ok, jnp.floor(size), 0.0)
        orders = orders.at[rows, tribe].add(size)
        return left - size, sent + ok.astype(jnp.int32), orders

    init = (available, jnp.zeros(num_slots, jnp.int32), jnp.zeros((num_slots, num_slots), jnp.float32))
    # As many ranks as the longest row of candidates (none on the many ticks where no nation decides): a
    # rank past a row's candidates is no candidate and changes nothing.
    num_ranks = loop_bound(candidates.sum(axis=1).max())
    _, _, orders = jax.lax.fori_loop(0, num_ranks, body, init)
    return orders


def _boat_landings(state: GameState, arrays: MapArrays, key: jax.Array, contacts: jax.Array,
                   retaliate: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(landing tile int32[P + 1] flat index, found bool[P + 1]) of each player's boat.

    `retaliate` (int32[P + 1], 0 for none): land on that player's shore; otherwise the random boat's
    choice (see the module docstring). Tiles are drawn around each player's spawn centre.
    """
    num_slots = state.troops.shape[0]
    height, width = state.height, state.width
    offsets = jax.random.randint(key, (num_slots, BOAT_SAMPLES, 2), -BOAT_REACH, BOAT_REACH + 1)
    ys = state.spawn[:, 0:1] + offsets[..., 0]
    xs = state.spawn[:, 1:2] + offsets[..., 1]
    inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    ys, xs = jnp.clip(ys, 0, height - 1), jnp.clip(xs, 0, width - 1)
    owner = state.owner_at(ys, xs).astype(jnp.int32)  # [P1, K]
    me = jnp.arange(num_slots)[:, None]
    shore = inside & arrays.shore[ys, xs] & (arrays.water_body[ys, xs] > 0) & (owner != me)
    player = owner > 0
    high_interest = shore & (~player | (state.kind[owner] == PlayerKind.TRIBE))
    other = (shore & player & state.alive[owner] & ~jnp.take_along_axis(contacts, owner, axis=1)
             & (state.troops[owner] <= state.troops[:, None]))
    order = jnp.arange(BOAT_SAMPLES)[None, :]
    random_score = jnp.where(high_interest, order, jnp.where(other, BOAT_SAMPLES + order, 2 * BOAT_SAMPLES))
    revenge_score = jnp.where(shore & (owner == retaliate[:, None]), order, 2 * BOAT_SAMPLES)
    score = jnp.where((retaliate > 0)[:, None], revenge_score, random_score)
    pick = jnp.argmin(score, axis=1)
    rows = jnp.arange(num_slots)
    return (ys[rows, pick] * width + xs[rows, pick]).astype(jnp.int32), score[rows, pick] < 2 * BOAT_SAMPLES


def scripted_bots(state: GameState, arrays: MapArrays, key: jax.Array, rules: Rules = Rules(),
                  autopilot: int = 0) -> GameState:
    """Queue this tick's orders of every tribe and nation whose phase tick it is (engine §7).

    Tribes: the first decision expands into unowned land with T - M expand; later ones expand if unowned
    land borders them, else (when T / M >= trigger) retaliate against the largest incoming attack, else
    attack a random neighbour (humans and nations skipped with probability 1/2), with T - M reserve.
    Nations: the first tick sends T / 2 into unowned land; then unowned land (T - M expand), else, when
    T / M >= reserve and (T / M >= trigger or a 1/10 chance): neighbouring tribes, else retaliation, else
    the weakest neighbouring player (T - M reserve; humans skipped with the difficulty's probability).
    Nations also build cities and defense posts (game/structures.py).
    `autopilot` (a player id, 0 for none) makes that player decide by the tribe rules whatever its kind
    (its own troop cap is kept): the "tribe AI in the agent's seat" baseline of the evaluator.
    """
    num_slots = state.troops.shape[0]
    slots = jnp.arange(num_slots)
    is_tribe = state.kind == PlayerKind.TRIBE
    decides_as_tribe = is_tribe | ((slots == autopilot) & (autopilot > 0))
    is_nation = (state.kind == PlayerKind.NATION) & ~decides_as_tribe
    # A nation's first decision is the first tick; a tribe's is its first phase tick.
    on_phase = state.tick % jnp.maximum(state.ai_rate, 1) == state.ai_phase
    deciding = state.alive & ((decides_as_tribe & on_phase) | (is_nation & (on_phase | ~state.ai_started)))
    first = deciding & ~state.ai_started
    later = deciding & state.ai_started

    # Who borders whom is read only on a tick where some bot decides (tribes decide every 40-80 ticks);
    # under vmap, only for the envs (a GPU: the batch) where some bot decides (game/control.py).
    contacts = cond_any(deciding.any(), state_contacts,
                        lambda s, a: jnp.zeros((num_slots, num_slots), jnp.bool_), state, arrays)
    troops = state.troops
    cap = jnp.maximum(max_troops(state, rules), 1.0)
    ratio = troops / cap
    expand_troops = troops - cap * state.ai_expand
    attack_troops = troops - cap * state.ai_reserve
    borders_unowned = contacts[:, 0]
    neighbours = contacts & state.alive[None, :] & (slots[None, :] != slots[:, None])  # players only

    # Incoming attacks: retaliate against the attacker with the most troops on us.
    incoming = state.attacks.T.at[:, 0].set(0.0)  # [target, attacker]
    biggest_attacker = jnp.argmax(incoming, axis=1).astype(jnp.int32)
    under_attack = incoming.max(axis=1) > 0

    draw_key, boat_key, tribes_key, build_key = jax.random.split(key, 4)
    # Every uniform the decision needs from one generator call: on a CPU each call is a loop of ~80 small
    # ops whatever its size, and a tick made five. [0]: skip a player neighbour, [1]: the order neighbours
    # are tried in, [2]: a nation's skip of a human, [3, :, 0]: a nation's chance to attack anyway,
    # [3, :, 1]: a nation's random boat.
    uniform = uniforms(draw_key, (4, num_slots, num_slots))
    not_tribe = ~is_tribe[None, :]
    skip = not_tribe & (uniform[0] < 0.5)
    random_neighbour, has_neighbour = _first_allowed(uniform[1], neighbours & ~skip)

    # Boats: retaliation against an attacker across water, and the nations' random boats (drawn first,
    # since a nation's boat with bordering enemies replaces its other attacks).
    free_boat = boats_in_flight(state) < BOATS_PER_PLAYER
    revenge_by_boat = under_attack & ~contacts[slots, biggest_attacker]
    has_enemy = neighbours.any(axis=1)
    boat_chance = uniform[3, :, 1]
    random_boat = (is_nation & later & ~borders_unowned & ~under_attack
                   & (boat_chance < jnp.where(has_enemy, 0.1, 0.2)))

    # Tribes.
    expand = later & borders_unowned
    aggressive = later & ~borders_unowned & (ratio >= state.ai_trigger) & (attack_troops >= 1.0)
    tribe_target = jnp.where(under_attack, biggest_attacker, random_neighbour)
    tribe_fires_on_player = decides_as_tribe & aggressive & (under_attack | has_neighbour)
    tribe_boat = tribe_fires_on_player & revenge_by_boat
    tribe_to_unowned = decides_as_tribe & (first | expand) & (expand_troops >= 1.0)

    # Nations.
    nation_first = is_nation & first
    nation_expand = is_nation & expand & (expand_troops >= 1.0)
    willing = (is_nation & later & ~borders_unowned & (ratio >= state.ai_reserve)
               & ((ratio >= state.ai_trigger) | (uniform[3, :, 0] < 0.1)))
    tribe_orders = _nation_tribe_attacks(state, contacts, jnp.maximum(jnp.floor(attack_troops), 0.0),
                                         willing & (attack_troops >= 1.0), tribes_key)
    attacked_tribes = tribe_orders.sum(axis=1) > 0
    skip_human = jnp.asarray(_NATION_SKIP_HUMAN, jnp.float32)[state.difficulty]
    human_ok = ~((state.kind == PlayerKind.HUMAN)[None, :]
                 & (uniform[2] < skip_human[:, None]))
    weakest, has_weak = _first_allowed(jnp.broadcast_to(troops[None, :], (num_slots, num_slots)),
                                       neighbours & ~is_tribe[None, :] & human_ok)
    nation_target = jnp.where(under_attack, biggest_attacker, weakest)
    nation_fires_on_player = (willing & ~attacked_tribes & (attack_troops >= 1.0)
                              & (under_attack | has_weak))
    nation_boat = nation_fires_on_player & under_attack & revenge_by_boat
    wanted = (tribe_boat | nation_boat | random_boat) & free_boat & (troops >= 5.0)
    retaliate = jnp.where(tribe_boat | nation_boat, biggest_attacker, 0)
    def no_landing(*_):
        return jnp.full(num_slots, -1, jnp.int32), jnp.zeros(num_slots, jnp.bool_)

    # A map without water has no landing to search (compiled out: MapArrays.water).
    landing, found = (cond_any(wanted.any(), _boat_landings, no_landing, state, arrays, boat_key, contacts,
                               retaliate) if arrays.water else no_landing())
    # A boat replaces the land attack it stands for only when a landing tile was found, so a map without
    # water plays exactly as before boats existed (the engine's nation would also skip its turn there).
    boating = wanted & found
    tribe_fires_on_player &= ~(tribe_boat & boating)
    nation_fires_on_player &= ~(nation_boat & boating)
    # A random boat with bordering enemies is the nation's whole decision.
    boat_instead = random_boat & has_enemy & boating
    nation_fires_on_player &= ~boat_instead
    tribe_orders = jnp.where(boat_instead[:, None], 0.0, tribe_orders)

    unowned = jnp.zeros(num_slots, jnp.int32)
    orders = (_one_hot_orders(unowned, expand_troops, tribe_to_unowned | nation_expand, num_slots)
              + _one_hot_orders(unowned, troops / 2.0, nation_first, num_slots)
              + _one_hot_orders(tribe_target, attack_troops, tribe_fires_on_player, num_slots)
              + _one_hot_orders(nation_target, attack_troops, nation_fires_on_player, num_slots)
              + tribe_orders)
    state = state.replace(orders=state.orders + orders, ai_started=state.ai_started | deciding,
                          boat_order_troops=jnp.where(boating, jnp.floor(troops / 5.0),
                                                      state.boat_order_troops),
                          boat_order_dst=jnp.where(boating, landing, state.boat_order_dst))
    return build_structures(state, build_key, rules)
