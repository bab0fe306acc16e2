"""One game tick, in the engine's order, as a pure function `tick(state, arrays, rules) -> state`.

Order within a tick (engine §2): win check (every `win_check_interval` ticks; also the game's timer);
players with no tiles die; troop growth and gold; bot decisions (queued as orders); every running attack
conquers; orders given before or during this tick are launched (troops leave now, conquest starts next
tick); boats that arrive land and ordered boats launch (game/boats.py); the tick counter advances.
Nothing here loops over players, tiles or envs in Python: per-player work is vectorised over the P + 1
slots, per-tile work over the grid.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

from jaxms.game.boats import free_beaches, step_boats
from jaxms.game.conquest import ConquestScratch, frontier_histogram, pair_tile_values, plan_takes
from jaxms.game.control import after, loop_bound
from jaxms.game.grid import uniform_integers
from jaxms.game.rules import PlayerKind, Rules
from jaxms.game.state import GameState, MapArrays
from jaxms.game.structures import active_defense_posts, capture_structures

AGENT = 1  # the player whose attacks may be directed (`GameState.focus`)

# A bot policy queues orders: `bots(state, arrays, key, rules) -> state` (see game/bots.py).
Policy = Callable[[GameState, MapArrays, jax.Array, Rules], GameState]


def _floor_add(troops: jax.Array, amount: jax.Array) -> jax.Array:
    """Engine troop arithmetic: add floor(amount), or remove floor(-amount) never going below zero."""
    return jnp.maximum(troops + jnp.where(amount >= 0, jnp.floor(amount), -jnp.floor(-amount)), 0.0)


def max_troops(state: GameState, rules: Rules) -> jax.Array:
    """float32[P + 1]: troop cap per player (§4), by kind and difficulty."""
    tiles = state.tiles.astype(jnp.float32)
    base = 2.0 * (tiles**rules.max_troops_tile_exponent * rules.max_troops_tile_factor
                  + rules.max_troops_base) + rules.city_max_troops_per_level * state.city_levels
    nation = jnp.asarray(rules.nation_max_troops_factor, jnp.float32)[state.difficulty]
    factor = jnp.select([state.kind == PlayerKind.TRIBE, state.kind == PlayerKind.NATION],
                        [1.0 / rules.tribe_max_troops_divisor, nation], 1.0)
    return base * factor


def grow(state: GameState, rules: Rules) -> GameState:
    """Troop growth `min(T + add, M) - T` (floored) and gold, for living players."""
    cap = jnp.maximum(max_troops(state, rules), 1.0)
    t = state.troops
    add = (rules.growth_base + t**rules.growth_exponent / rules.growth_divisor) * (1.0 - t / cap)
    nation = jnp.asarray(rules.nation_growth_factor, jnp.float32)[state.difficulty]
    add *= jnp.select([state.kind == PlayerKind.TRIBE, state.kind == PlayerKind.NATION],
                      [rules.tribe_growth_factor, nation], 1.0)
    change = jnp.minimum(t + add, cap) - t
    gold = jnp.where(state.kind == PlayerKind.TRIBE, rules.tribe_gold_per_tick, rules.gold_per_tick)
    return state.replace(troops=jnp.where(state.alive, _floor_add(t, change), t),
                         gold=state.gold + jnp.where(state.alive, gold, 0.0))


def launch_orders(state: GameState) -> GameState:
    """Start the attacks ordered in `state.orders` (the engine initialises them at the tick's end).

    The troops leave the attacker now (capped at what it has); an attack of the target on the attacker
    cancels against it (the larger survives with the difference); attacks on the same target merge (a boat
    attack held at its beach is freed into the land attack, as in the engine); ended attacks drop their
    beach (game/boats.py).
    """
    ordered = jnp.where(state.alive[:, None], jnp.floor(state.orders), 0.0)
    # Several orders by one player draw on the same troops: scale them down together if they exceed it.
    wanted = ordered.sum(axis=1)
    scale = jnp.where(wanted > state.troops, state.troops / jnp.maximum(wanted, 1.0), 1.0)
    paid = jnp.floor(ordered * scale[:, None])
    combined = state.attacks + paid
    slots = jnp.arange(combined.shape[0])
    between_players = (slots[:, None] > 0) & (slots[None, :] > 0)
    attacks = jnp.where(between_players, jnp.maximum(combined - combined.T, 0.0), combined)
    return state.replace(troops=state.troops - paid.sum(axis=1), attacks=attacks,
                         orders=jnp.zeros_like(state.orders),
                         beach_box=free_beaches(state.beach_box, attacks, paid))


def _retreats(state: GameState, rules: Rules) -> GameState:
    """Count down retreating attacks; when a timer ends, troops return (75% from players, all from TN)."""
    timer = jnp.maximum(state.retreat_timer - 1, 0)
    returning = (state.retreat_timer > 0) & (timer == 0)
    slots = jnp.arange(timer.shape[0])
    keep = jnp.where(slots[None, :] == 0, 1.0, rules.retreat_keep_vs_player)
    back = jnp.where(returning, state.attacks * keep, 0.0).sum(axis=1)
    return state.replace(retreat_timer=timer, attacks=jnp.where(returning, 0.0, state.attacks),
                         troops=_floor_add(state.troops, back))


def _has_posts(state: GameState, rules: Rules) -> bool:
    """Whether the conquest reads defense posts: a game with no structure slots (no nations) has none."""
    return rules.defense_posts and state.structure_kind.shape[0] > 0


def conquest_scratch(state: GameState, rules: Rules) -> ConquestScratch:
    """The conquest's buffers for `state`'s game (`ConquestScratch`): a zeroed table, and the rest."""
    from jaxms.game.conquest import NUM_BINS, frontier_scratch

    num_slots = state.troops.shape[0]
    halves = (2,) if _has_posts(state, rules) else ()  # a half for covered tiles (`Board.cover_halves`)
    return ConquestScratch(jnp.zeros((num_slots, num_slots, *halves, NUM_BINS), jnp.int32),
                           *frontier_scratch(state.height, state.width))


def conquer(state: GameState, arrays: MapArrays, rules: Rules, key: jax.Array) -> GameState:
    """`conquer_carrying` with a histogram table of its own."""
    return conquer_carrying(state, arrays, rules, key, conquest_scratch(state, rules))[0]


def conquer_carrying(state: GameState, arrays: MapArrays, rules: Rules, key: jax.Array,
                     scratch: ConquestScratch) -> tuple[GameState, ConquestScratch]:
    """Every conquering attack spends this tick's budget (see game/conquest.py); attacks end as in §5.
    `scratch`: the conquest's buffers (`conquest_scratch`), handed back for the next tick.

    The agent's directed attack (`GameState.focus` of player 1): tiles next to it within 45 degrees of its
    direction count `focus_age_bonus` ticks older in the priority, so its attack takes them first (engine
    priorities differ by at most ~15 ticks' worth between neighbouring bins). Bots attack along the whole
    front as in the engine.
    """
    from jaxms.game.blocks import BORDER_ROWS, carry_list, frontier_row, list_tag, round_row, state_lists
    from jaxms.game.conquest import (
        ListUpdate,
        age_frontier,
        by_terrain,
        charged,
        cover_board,
        game_board,
        held_beaches,
        listed,
        sum_last,
        take_tiles,
        uncover_board,
    )

    num_slots = state.troops.shape[0]
    num_rounds = rules.conquest_substeps
    live = (state.attacks > 0) & (state.retreat_timer == 0) & state.alive[:, None]
    # The rounds' seeds and the budget jitter r ~ U{0..max} from one generator call (on a CPU each call is a
    # loop of ~80 small ops whatever its size; randint alone made two).
    bits = jax.random.bits(key, (num_slots * num_slots + num_rounds * 2,), jnp.uint32)
    seeds = bits[:num_rounds * 2].reshape(num_rounds, 2)
    jitter = uniform_integers(bits[num_rounds * 2:].reshape(live.shape), rules.budget_jitter_max + 1)

    # Rounds read and write only the blocks of the map where a frontier may be (see game/conquest.py), on
    # the state's own grids. Tiles covered by their owner's defense posts cost more; a game with no
    # structure slots (no nations) can have no post, and its conquest is exactly the one without posts.
    board = game_board(state)
    posts = _has_posts(state, rules)
    if posts:
        board = cover_board(board, state.structure_pos, state.structure_owner, active_defense_posts(state),
                            rules.defense_post_radius)
    focus = state.focus[AGENT] if state.focus.shape[0] > AGENT else None
    # On a board read by blocks, round 0 reads this tick's frontier list, or its border list when an attack
    # conquers whose frontier the frontier list may miss, and every round records the blocks the next reads
    # and the next tick's border list (game/blocks.py); a board read whole has no lists.
    conquering_first = live & (state.attacks >= 1.0)
    held = state.beach_box[..., 2] >= 0  # boat attacks held at their beach (see below)
    lists, blocks, tag, border_update, first_blocks = None, None, None, None, None
    if not board.whole:
        lists = state_lists(state)
        parity = state.tick % BORDER_ROWS
        border_row = BORDER_ROWS - 1 - parity
        lists = lists._replace(count=lists.count.at[border_row].set(0))
        first_blocks = listed(lists, parity)  # the border list, aged at the tick's end (but see below)
        blocks = first_blocks
        tag = partial(list_tag, state.tick, num_rounds)
        if num_rounds > 1:
            # A pair held at its beach takes tiles near its box, wherever the box has grown: not listed.
            frontier_listed = ~jnp.any(conquering_first & ~state.frontier_pairs) & ~jnp.any(held)
            blocks = listed(lists, jnp.where(frontier_listed, frontier_row(state.tick, num_rounds), parity))
            if num_rounds == 2:  # (with more rounds the tick's round lists overwrite its frontier list)
                # The ageing reads the blocks the first round reads: no marks are made elsewhere, and the
                # ages of the blocks it leaves unstamped read as 0, as the ageing would have written them.
                # It lists those that still hold a border; the rest of the border list is carried over
                # (possibly more: it is pruned at the next tick that reads it), as borders change only
                # where tiles change hands, and the rounds list those blocks.
                first_blocks = blocks
                frontier_tag = list_tag(state.tick - 1, num_rounds, num_rounds - 1)  # its blocks' tag
                lists = carry_list(lists, parity, border_row, tag(), frontier_listed, frontier_tag)
        border_update = ListUpdate(border_row, tag())  # where every round and the ageing record borders
    start_board = board

    def with_grids(grids):  # the board with these grids (its static fields kept: a loop carries arrays only)
        return start_board._replace(owner=grids[0], info=grids[1], stamp=grids[2])

    def one_round(round_index, carry):
        """Round `round_index` (traced: the rounds are one loop, compiled once) of the tick's conquest."""
        (grids, lists, blocks, troops, tiles, attacks, budget_left, budget_frontier, taken_total, box,
         scratch) = carry
        board = with_grids(grids)
        first, last = round_index == 0, round_index == num_rounds - 1
        conquering = live & (attacks >= 1.0)
        update = None
        if lists is not None and num_rounds > 1:
            # Rounds before the last record the blocks the next one reads (rows 2, 3); the last adds to its
            # own list the blocks across the edges where it took tiles (the next tick's frontier list).
            recorded = jnp.where(last, round_index, round_index + 1)  # the round whose list is written
            next_row = round_row(state.tick, num_rounds, recorded)
            update = border_update._replace(next_row=next_row, next_tag=tag(recorded), next_live=~last)
            lists = lists._replace(count=lists.count.at[next_row].set(
                jnp.where(last, lists.count[next_row], 0)))
        elif lists is not None:
            update = border_update
        found = frontier_histogram(board, lists, blocks, conquering, seeds[round_index], rules, focus,
                                   None if box is None else beaches._replace(box=box), counts=scratch.counts,
                                   saved=scratch.saved, saved_listed=scratch.listed)
        cost, attacker_loss, defender_loss = pair_tile_values(attacks, troops, tiles, state.kind, rules)
        # The budget comes from the frontier at the tick's start (B: distinct frontier tiles per pair, which
        # the plan counts); the tiles on it age (older go first). A round spends its share of what is left.
        ratio = jnp.clip(10.0 * attacks / jnp.maximum(troops[None, :], 1e-6),
                         *rules.player_budget_ratio_clamp)
        to_unowned = (jnp.arange(num_slots) == 0)[None, :]
        factor = jnp.where(to_unowned, rules.unowned_budget_factor, ratio * rules.player_budget_factor)

        def budget_now(frontier, factor, jitter, left):  # the first round's budget, else what is left of it
            return jnp.where(first, factor * (frontier + jitter), left)

        def share(frontier, rows):  # the planned pairs' share of it this round (`plan_takes`)
            budget = budget_now(frontier, rows(factor), rows(jitter), rows(budget_left))
            return budget / (num_rounds - round_index)

        plan = plan_takes(found.counts, conquering, share, attacks, cost, attacker_loss, rules,
                          final_round=last)
        frontier = plan.tiles
        scratch = scratch._replace(counts=plan.counts)
        if not board.whole:  # the round kept its first chunks' frontiers in the scratch's buffers
            scratch = scratch._replace(saved=found.saved, listed=found.listed)
        budget_left = budget_now(frontier, factor, jitter, budget_left)  # every pair's, as the plan's
        budget_frontier = jnp.where(first, frontier, budget_frontier)
        # Take them: `taken` counts exactly the tiles that changed hands, per (attacker, target, cost class:
        # the terrain, and whether a defense post covers the tile).
        board, taken, lists, box = take_tiles(board, found, plan, rules, first, lists, update)
        if lists is not None:
            blocks = listed(lists, update.next_row)  # (unread after the last round)
        taken_pairs = sum_last(taken)
        budget_left = budget_left - charged(taken, cost, rules.defense_post_cost_factor)
        attacks = jnp.maximum(attacks - charged(taken, attacker_loss, rules.defense_post_loss_factor), 0.0)
        defender_losses = sum_last(by_terrain(taken) * defender_loss).sum(axis=0)
        troops = jnp.maximum(troops - defender_losses.at[0].set(0.0), 0.0)
        tiles = (tiles + taken_pairs.sum(axis=1).astype(jnp.int32)
                 - taken_pairs.sum(axis=0).astype(jnp.int32))
        return ((board.owner, board.info, board.stamp), lists, blocks, troops, tiles, attacks, budget_left,
                budget_frontier, taken_total + taken_pairs, box, scratch)

    # Boat attacks held at their beach (game/boats.py; none can be on a map without water): the held pairs
    # are listed once a tick (a box only grows during the tick).
    beaches = held_beaches(state.beach_box) if arrays.water else None
    zeros = jnp.zeros(live.shape, jnp.float32)
    carry = ((board.owner, board.info, board.stamp), lists, blocks, state.troops, state.tiles, state.attacks,
             zeros, zeros, zeros, None if beaches is None else beaches.box, scratch)
    (grids, lists, _, troops, tiles, attacks, _, budget_frontier, taken_total, box,
     scratch) = jax.lax.fori_loop(0, num_rounds, one_round, carry)
    board = with_grids(grids)

    # An attack with no frontier at the tick's start has nothing to take: its troops go home.
    finished = live & (budget_frontier == 0)
    troops = _floor_add(troops, jnp.where(finished, attacks, 0.0).sum(axis=1))
    # An attack under one troop is spent.
    attacks = jnp.where(finished | (attacks < 1.0), 0.0, attacks)
    # Tiles still on a frontier grow one tick older; taken tiles and tiles off every frontier restart.
    board, lists = age_frontier(board, first_blocks, lists, border_update)
    if posts:
        board = uncover_board(board, state.structure_pos, rules.defense_post_radius)
    state = state.replace(board_owner=board.owner, board_info=board.info, age_stamp=board.stamp,
                          troops=troops, tiles=tiles, attacks=attacks)
    if box is not None:
        state = state.replace(beach_box=box)
    if lists is not None:
        state = state.replace(block_lists=lists.ids, block_counts=lists.count, block_tags=lists.tags,
                              frontier_pairs=conquering_first & ~held)
    # The ageing read the grid that an annihilation writes in place: made to come first (`control.after`).
    return _annihilate(state.replace(board_owner=after(state.board_owner, state.block_counts)), taken_total,
                       rules), scratch


def _annihilate(state: GameState, taken: jax.Array, rules: Rules) -> GameState:
    """A player attacked this tick and left under `annihilation_tiles` tiles is conquered whole.

    Its remaining tiles and its gold go to the attacker that took most of its tiles this tick (the engine
    hands tiles to whichever attacker touches them; one heir keeps this a single pass over the grid). The
    per-player part is small and always computed (with nobody doomed it changes nothing); the pass over
    the grid is a loop over its rows, run on a tick where someone is doomed and never otherwise (a loop,
    unlike a conditional, carries the grid in place rather than copying it on every tick).
    """
    num_slots = state.troops.shape[0]
    slots = jnp.arange(num_slots)
    attacked = taken.sum(axis=0) > 0
    doomed = attacked & (slots > 0) & state.alive & (state.tiles < rules.annihilation_tiles)
    heir = jnp.where(doomed, jnp.argmax(taken, axis=0), slots)  # int[P1]: new owner of each slot's tiles
    def hand_over(row, owner):  # a row at a time, written in place (off the map: 0 stays 0)
        return owner.at[row].set(heir[owner[row].astype(jnp.int32)].astype(jnp.uint8))

    rows = state.board_owner.shape[0]
    owner = jax.lax.fori_loop(0, rows * loop_bound(doomed.any().astype(jnp.int32)), hand_over,
                              state.board_owner)
    inherited_tiles = jax.ops.segment_sum(jnp.where(doomed, state.tiles, 0), heir, num_segments=num_slots)
    inherited_gold = jax.ops.segment_sum(jnp.where(doomed, state.gold, 0.0), heir, num_segments=num_slots)
    tiles = jnp.where(doomed, 0, state.tiles + inherited_tiles)
    gold = jnp.where(doomed, 0.0, state.gold + inherited_gold)
    attacks = jnp.where(doomed[:, None] | doomed[None, :], 0.0, state.attacks)
    # The heirs' new tiles border others anywhere on the map: the next tick reads the whole border list.
    return state.replace(board_owner=owner, tiles=tiles, gold=gold, attacks=attacks,
                         troops=jnp.where(doomed, 0.0, state.troops), alive=state.alive & ~doomed,
                         frontier_pairs=state.frontier_pairs & ~doomed.any())


def leader(state: GameState) -> jax.Array:
    """int32[]: the player owning the most land (the lowest id among equals)."""
    return jnp.argmax(state.tiles.at[0].set(-1)).astype(jnp.int32)


def check_win(state: GameState, arrays: MapArrays, rules: Rules) -> GameState:
    """A player holding more than `win_land_share` of the land wins (checked by `tick` every N ticks); at
    the game's timer (`Rules.max_timer_ticks`, if set) the leader wins, as the engine's WinCheck does."""
    first = leader(state)
    share = state.tiles[first] / jnp.maximum(arrays.num_land_tiles, 1).astype(jnp.float32)
    timed_out = (rules.max_timer_ticks > 0) & (state.tick >= rules.max_timer_ticks)
    wins = (state.winner == 0) & ((share > rules.win_land_share) | timed_out)
    return state.replace(winner=jnp.where(wins, first, state.winner).astype(jnp.int32))


def no_bots(state: GameState, arrays: MapArrays, key: jax.Array, rules: Rules) -> GameState:
    """A bot policy that never orders anything (scripted scenarios)."""
    del arrays, key, rules
    return state


def tick(state: GameState, arrays: MapArrays, rules: Rules = Rules(), bots: Policy = no_bots) -> GameState:
    """Advance the game by one tick. `bots(state, arrays, key, rules)` may add orders for the bot players."""
    return tick_carrying(state, conquest_scratch(state, rules), arrays, rules, bots)[0]


def tick_carrying(state: GameState, scratch: ConquestScratch, arrays: MapArrays, rules: Rules = Rules(),
                  bots: Policy = no_bots) -> tuple[GameState, ConquestScratch]:
    """`tick`, handed the conquest's buffers (`conquest_scratch`) and handing them on: a loop of ticks
    carries them rather than making new ones every tick. Returns (state, scratch)."""
    key, conquest_key, bots_key = jax.random.split(state.key, 3)
    # The win check reads per-player counts only: computed every tick, kept on its ticks.
    checked = check_win(state, arrays, rules).winner
    state = state.replace(winner=jnp.where(state.tick % rules.win_check_interval == 0, checked, state.winner))
    state = state.replace(alive=state.alive & (state.tiles > 0))
    state = grow(state, rules)
    state = bots(state, arrays, bots_key, rules)
    # The bots' decisions read the grids the conquest then writes in place: made to come first (else the
    # grids may be copied every tick, 2 MB at 1024x1024; `control.after`).
    state = state.replace(block_counts=after(state.block_counts, state.orders, state.boat_order_troops,
                                             state.boat_order_dst, state.structure_pos, state.structure_kind))
    state = _retreats(state, rules)
    state, scratch = conquer_carrying(state, arrays, rules, conquest_key, scratch)
    state = capture_structures(state)
    state = launch_orders(state)
    state = step_boats(state, arrays, rules)
    incoming = state.attacks[1:, :].sum(axis=0)
    return state.replace(tick=state.tick + 1, key=key, incoming=incoming), scratch


def run_ticks(state: GameState, arrays: MapArrays, n: int, rules: Rules = Rules(), bots: Policy = no_bots,
              trace: bool = False):
    """Run `n` ticks with `lax.scan`.

    With `trace`, also returns per-tick (tiles int32[n, P + 1], troops float32[n, P + 1]).
    """

    def body(carry, _):
        carry = tick_carrying(*carry, arrays, rules, bots)
        return carry, ((carry[0].tiles, carry[0].troops) if trace else None)

    (state, _), history = jax.lax.scan(body, (state, conquest_scratch(state, rules)), None, length=n)
    return (state, history) if trace else state
