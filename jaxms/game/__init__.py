"""The territory game as pure JAX functions: state, rules, spawning, one tick.

    from jaxms import game
    state = game.new_game(key, game_map, kinds=["human", "human"], spawns=[(230, 180), (241, 180)])
    state = game.launch_attack(state, attacker=1, target=0, troops=5000)   # target 0 = unowned land
    state = game.run_ticks(state, game.map_arrays(game_map), n=100)
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
