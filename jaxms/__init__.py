"""jaxms: reinforcement learning for OpenFront-style territory games on large maps, in JAX.

Importing `jaxms` is cheap (no JAX import); the map layer is NumPy only.
"""

from jaxms.maps import GameMap, MapError, load_map

__version__ = "0.1.0"

__all__ = ["GameMap", "MapError", "__version__", "load_map"]
