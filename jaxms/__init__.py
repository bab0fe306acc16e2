"""jaxms: reinforcement learning for OpenFront-style territory games on large maps, in JAX.

Importing `jaxms` is cheap (no JAX import); the map layer is NumPy only.
"""

from jaxms.maps import GameMap, MapError, load_map

__version__ = "0.1.0"



def __getattr__(name: str):
    # `jaxms.make_env` imports JAX on first use only.
    if name == "make_env":
        from jaxms.env import make_env

        return make_env
    raise AttributeError(f"module 'jaxms' has no attribute {name!r}")


__all__ = ["GameMap", "MapError", "__version__", "load_map", "make_env"]
