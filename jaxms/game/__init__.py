"""The territory game as pure JAX functions: state, rules, spawning, one tick.

    from jaxms import game
    state = game.new_game(key, game_map, kinds=["human", "human"], spawns=[(230, 180), (241, 180)])
    state = game.launch_attack(state, attacker=1, target=0, troops=5000)   # target 0 = unowned land
    state = game.run_ticks(state, game.map_arrays(game_map), n=100)

Out of scope today, and where each would go (all keep the fixed shapes that jit and vmap need):
- Boats (transport ships): a fixed-capacity array of ships (owner, troops, position, target tile) moved a
  step per tick along a precomputed water-distance field to the target shore; landing starts an ordinary
  attack from the landing tile. Needs a water BFS per target (one `lax.while_loop` at launch, or a coarse
  field computed once per map) and ports as a structure kind.
- Nukes and SAMs: silos and SAM launchers as further structure kinds; a nuke is a projectile in a small
  fixed array that, on arrival, clears ownership and troops in a disk (the same windowed update
  `conquest.cover_board` uses) unless a SAM of the target covers the impact point within its radius.
- Trade: gold per tick from pairs of ports of players at peace, a P x P term added to `grow`'s gold.
- Alliances: a symmetric bool[P + 1, P + 1] matrix in `GameState`; allied pairs are masked out of attack
  orders and of the bots' border-contact choices, with request/accept/expire timers as per-pair counters.
"""

from jaxms.game.loop import check_win, grow, launch_orders, max_troops, no_bots, run_ticks, tick
from jaxms.game.rules import Difficulty, PlayerKind, Rules
from jaxms.game.spawn import launch_attack, new_game, retreat, set_territory, spawn_distance
from jaxms.game.state import GameState, MapArrays, map_arrays, spawn_disk_offsets

__all__ = [
    "Difficulty",
    "GameState",
    "MapArrays",
    "PlayerKind",
    "Rules",
    "check_win",
    "grow",
    "launch_attack",
    "launch_orders",
    "map_arrays",
    "max_troops",
    "new_game",
    "no_bots",
    "retreat",
    "run_ticks",
    "set_territory",
    "spawn_disk_offsets",
    "spawn_distance",
    "tick",
]
