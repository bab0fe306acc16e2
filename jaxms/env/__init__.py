"""The RL environment around the game: gymnax-style reset/step, actions and masks, reward, auto-reset.

    import jaxms
    env = jaxms.make_env(jaxms.load_map("continents_128"), num_bots=10)
    obs, state = env.reset(jax.random.key(0), env.default_params)

Importing `jaxms.env` is cheap: the JAX-free modules (`contract`, `config`) import no JAX, and the names
below that need JAX are imported on first use.
"""

from __future__ import annotations

from jaxms.lazy import lazy_getattr

_LAZY = {
    "DIRECTION_NAMES": "jaxms.env.contract", "INTENSITIES": "jaxms.env.contract",
    "NUM_ACTIONS": "jaxms.env.contract", "WAIT": "jaxms.env.contract", "ObsConfig": "jaxms.env.contract",
    "EnvConfig": "jaxms.env.config",
    "decode_action": "jaxms.env.actions", "direction_targets": "jaxms.env.actions",
    "EnvParams": "jaxms.env.territory", "EnvState": "jaxms.env.territory",
    "TerritoryEnv": "jaxms.env.territory", "check_action": "jaxms.env.territory",
    "make_env": "jaxms.env.territory", "JaxVectorEnv": "jaxms.env.vector",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = sorted(_LAZY)
