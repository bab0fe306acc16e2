"""Checkpoints of whole training runs with orbax: parameters, optimizer, RNG, env states, last observations,
counters and the run's config, so that a resumed run continues exactly where it stopped.

A run folder holds `checkpoints/<update>/` (periodic, asynchronous, the last N kept), `best/<update>/` (the
best evaluation win rate so far) and `final/<update>/`. Each step folder has the state pytree ("state") and
a JSON document ("meta": the config, metrics, the step).

Typed PRNG keys cannot be written as arrays, so they are stored as their raw uint32 data and re-wrapped
on restore, using the structure of a freshly initialised state as the template; empty arrays (orbax
refuses zero-size arrays, e.g. the structure slots of a game without nations) are stored as None and
taken back from the template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


def _is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _saveable_leaf(x: Any) -> Any:
    if _is_key(x):
        return jax.random.key_data(x)
    return None if getattr(x, "size", 1) == 0 else x


def to_saveable(tree: Any) -> Any:
    """The pytree with typed PRNG keys replaced by their raw key data and empty arrays by None."""
    return jax.tree.map(_saveable_leaf, tree)


def from_saveable(tree: Any, template: Any) -> Any:
    """Undo `to_saveable`: re-wrap key data where `template` has typed keys, take empty arrays from it."""

    def restore_leaf(t, x):
        if getattr(t, "size", 1) == 0:
            return t
        return jax.random.wrap_key_data(x, impl=jax.random.key_impl(t)) if _is_key(t) else x

    return jax.tree.map(restore_leaf, template, tree, is_leaf=lambda x: x is None)


class Checkpointer:
    """Save and restore run states under one folder (wraps an orbax CheckpointManager)."""

    def __init__(self, directory: str | Path, keep: int = 3, asynchronous: bool = True):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=asynchronous,
                                               create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, state: Any, meta: dict | None = None) -> None:
        """Save `state` (any pytree) and JSON `meta` as `step`; asynchronous unless disabled."""
        self._manager.save(int(step), args=ocp.args.Composite(
            state=ocp.args.StandardSave(to_saveable(state)), meta=ocp.args.JsonSave(meta or {})), force=True)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, template: Any, step: int | None = None) -> tuple[Any, dict]:
        """(state shaped like `template`, meta) of `step` (default: the latest). Raises FileNotFoundError."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, to_saveable(template))
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        return from_saveable(restored.state, template), dict(restored.meta)

    def read_meta(self, step: int | None = None) -> dict:
        """The JSON document of `step` (default: the latest), without reading the arrays."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored.meta)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def find_checkpoint(path: str | Path) -> tuple[Path, int | None]:
    """(checkpoint folder, step or None for the latest) for a run folder, a checkpoints folder or a step.

    Accepts `runs/NAME`, `runs/NAME/checkpoints`, `runs/NAME/best`, `runs/NAME/final` or
    `runs/NAME/checkpoints/120`. Raises ValueError saying what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"--continue-from {path}: no such file or folder (give a run folder such as "
                         "runs/NAME_TIMESTAMP, or its checkpoints/, best/ or final/ folder)")
    if path.name.isdigit() and path.is_dir():
        return path.parent, int(path.name)
    if (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    if not any(child.name.isdigit() for child in path.iterdir() if child.is_dir()):
        raise ValueError(f"--continue-from {path}: no checkpoint steps found inside (expected numbered "
                         "folders written by jaxms.train)")
    return path, None
