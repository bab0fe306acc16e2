"""The territory game as pure JAX functions: state, rules, spawning, one tick.

    from jaxms import game
    state = game.new_game(key, game_map, kinds=["human", "human"], spawns=[(230, 180), (241, 180)])
    state = game.launch_attack(state, attacker=1, target=0, troops=5000)   # target 0 = unowned land
    state = game.run_ticks(state, game.map_arrays(game_map), n=100)
    state = game.order_boat(state, player=1, dst=y * W + x, troops=5000)  # boat to shore tile (x, y)

Boats (game/boats.py): up to 3 per player at sea, launched at the tick's end from the attacker's shore tile
nearest by water, one tile per tick; the landing conquers its tile and its troops join the attack on the
target. Ports (and warships) are not modelled.

Out of scope today, and where each would go (all keep the fixed shapes that jit and vmap need):
- Nukes and SAMs: silos and SAM launchers as further structure kinds; a nuke is a projectile in a small
  fixed array that, on arrival, clears ownership and troops in a disk (the same windowed update
  `conquest.cover_board` uses) unless a SAM of the target covers the impact point within its radius.
- Trade: gold per tick from pairs of ports of players at peace, a P x P term added to `grow`'s gold.
- Alliances: a symmetric bool[P + 1, P + 1] matrix in `GameState`; allied pairs are masked out of attack
  orders and of the bots' border-contact choices, with request/accept/expire timers as per-pair counters.
"""

from jaxms.game.boats import BOATS_PER_PLAYER, boats_in_flight, order_boat, retreat_boat
from jaxms.game.loop import check_win, grow, launch_orders, leader, max_troops, no_bots, run_ticks, tick
from jaxms.game.rules import Difficulty, PlayerKind, Rules
from jaxms.game.spawn import launch_attack, new_game, retreat, set_territory, spawn_distance
from jaxms.game.state import GameState, MapArrays, map_arrays, spawn_disk_offsets

__all__ = [
    "BOATS_PER_PLAYER",
    "Difficulty",
    "GameState",
    "MapArrays",
    "PlayerKind",
    "Rules",
    "boats_in_flight",
    "check_win",
    "grow",
    "launch_attack",
    "launch_orders",
    "leader",
    "map_arrays",
    "max_troops",
    "new_game",
    "no_bots",
    "order_boat",
    "retreat",
    "retreat_boat",
    "run_ticks",
    "set_territory",
    "spawn_disk_offsets",
    "spawn_distance",
    "tick",
]
