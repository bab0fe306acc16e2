"""Action and observation spaces with gymnax's interface (`sample(key)`, `contains(x)`, shape, dtype).

Written here rather than imported from gymnax so the package does not depend on gymnax's plotting
extras; `to_gymnasium` converts them for the gymnasium wrapper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


class Discrete:
    """Integers 0..n-1."""

    def __init__(self, n: int):
        self.n = int(n)
        self.shape: tuple[int, ...] = ()
        self.dtype = jnp.int32

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=self.dtype)

    def contains(self, x: Any) -> bool:
        x = np.asarray(x)
        return x.shape == () and np.issubdtype(x.dtype, np.integer) and 0 <= int(x) < self.n

    def __repr__(self) -> str:
        return f"Discrete({self.n})"


class Box:
    """Arrays of a fixed shape and dtype with values in [low, high]."""

    def __init__(self, low: float, high: float, shape: tuple[int, ...], dtype=jnp.float32):
        self.low, self.high, self.shape, self.dtype = low, high, tuple(shape), dtype

    def sample(self, key: jax.Array) -> jax.Array:
        if jnp.issubdtype(self.dtype, jnp.integer):
            return jax.random.randint(key, self.shape, int(self.low), int(self.high) + 1).astype(self.dtype)
        if self.dtype == jnp.bool_:
            return jax.random.bernoulli(key, 0.5, self.shape)
        return jax.random.uniform(key, self.shape, minval=self.low, maxval=self.high).astype(self.dtype)

    def contains(self, x: Any) -> bool:
        x = np.asarray(x)
        return (x.shape == self.shape and x.dtype == np.dtype(self.dtype)
                and bool(np.all(x >= self.low)) and bool(np.all(x <= self.high)))

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    def __repr__(self) -> str:
        return f"Box({self.low}, {self.high}, {self.shape}, {np.dtype(self.dtype).name})"


class Dict:
    """A mapping of named spaces (observations are dicts of arrays)."""

    def __init__(self, spaces: Mapping[str, Box | Discrete]):
        self.spaces = dict(spaces)

    def sample(self, key: jax.Array) -> dict[str, jax.Array]:
        keys = jax.random.split(key, len(self.spaces))
        return {name: space.sample(k) for (name, space), k in zip(self.spaces.items(), keys, strict=True)}

    def contains(self, x: Mapping[str, Any]) -> bool:
        return set(x) == set(self.spaces) and all(self.spaces[k].contains(v) for k, v in x.items())

    @property
    def nbytes(self) -> int:
        """Bytes of one observation (what one stored transition costs in a rollout buffer)."""
        return sum(space.nbytes for space in self.spaces.values())

    def __getitem__(self, name: str) -> Box | Discrete:
        return self.spaces[name]

    def __repr__(self) -> str:
        return "Dict(" + ", ".join(f"{k}: {v}" for k, v in self.spaces.items()) + ")"


def to_gymnasium(space: Discrete | Box | Dict):
    """The equivalent `gymnasium.spaces` object (gymnasium is imported only here)."""
    from gymnasium import spaces as gym_spaces

    if isinstance(space, Discrete):
        return gym_spaces.Discrete(space.n)
    if isinstance(space, Box):
        if space.dtype == jnp.bool_:
            return gym_spaces.MultiBinary(space.shape)
        return gym_spaces.Box(space.low, space.high, space.shape, np.dtype(space.dtype))
    return gym_spaces.Dict({name: to_gymnasium(s) for name, s in space.spaces.items()})
