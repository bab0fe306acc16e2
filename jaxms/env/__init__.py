"""The RL environment around the game: gymnax-style reset/step, actions and masks, reward, auto-reset.

    import jaxms
    env = jaxms.make_env(jaxms.load_map("continents_128"), num_bots=10)
    obs, state = env.reset(jax.random.key(0), env.default_params)
"""

from jaxms.env.actions import DIRECTION_NAMES, INTENSITIES, NUM_ACTIONS, decode_action, direction_targets
from jaxms.env.territory import EnvParams, EnvState, TerritoryEnv, check_action


def make_env(game_map, **kwargs) -> TerritoryEnv:
    """A `TerritoryEnv` on `game_map` (a GameMap or a map spec string for `jaxms.load_map`)."""
    if isinstance(game_map, str):
        from jaxms.maps import load_map

        game_map = load_map(game_map)
    return TerritoryEnv(game_map, **kwargs)


def __getattr__(name: str):
    # The gymnasium wrapper is imported on first use, so `import jaxms.env` never imports gymnasium.
    if name == "JaxVectorEnv":
        from jaxms.env.vector import JaxVectorEnv

        return JaxVectorEnv
    raise AttributeError(f"module 'jaxms.env' has no attribute {name!r}")


__all__ = ["DIRECTION_NAMES", "INTENSITIES", "NUM_ACTIONS", "EnvParams", "EnvState", "JaxVectorEnv",
           "TerritoryEnv", "check_action", "decode_action", "direction_targets", "make_env"]
