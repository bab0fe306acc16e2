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

import contextlib
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
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
        if isinstance(t, jax.Array) and not t.committed and isinstance(x, jax.Array) and x.committed:
            # Placed like the template: orbax returns arrays committed to a device, freshly made ones are
            # not, and jit compiles anew for a change of either (a resumed run recompiled its whole chunk).
            x = jnp.asarray(np.asarray(x))
        return jax.random.wrap_key_data(x, impl=jax.random.key_impl(t)) if _is_key(t) else x

    return jax.tree.map(restore_leaf, template, tree, is_leaf=lambda x: x is None)


class CheckpointError(ValueError):
    """A checkpoint could not be read or written; the message names the folder, what went wrong and, when
    reading, what was tried instead."""


class _OtherLayout(Exception):
    """A checkpoint that is readable but holds a state of another layout than the one asked for."""


def layout_difference(stored: Any, expected: Any, shown: int = 4) -> str:
    """What differs between the arrays of a checkpoint's state as read back (`restore_raw`) and a saveable
    template (`to_saveable`): entries missing, extra, or of another shape, a few of each named; "" if
    none."""
    def shapes(tree):  # keyed `a/b/0` alike for a template's dataclasses and the dicts read back
        leaves = jax.tree_util.tree_leaves_with_path(tree)
        return {jax.tree_util.keystr(path, simple=True, separator="/"): tuple(np.shape(leaf))
                for path, leaf in leaves}

    have, want = shapes(stored), shapes(expected)

    def named(keys):
        keys = sorted(keys)
        return ", ".join(keys[:shown]) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")

    parts = []
    if missing := want.keys() - have.keys():
        parts.append(f"it lacks {named(missing)}")
    if extra := have.keys() - want.keys():
        parts.append(f"it has {named(extra)}, which this run's state does not")
    if reshaped := [k for k in want.keys() & have.keys() if want[k] != have[k]]:
        parts.append("shapes differ at "
                     + named(f"{k} (saved {have[k]}, expected {want[k]})" for k in reshaped))
    return "; ".join(parts)


def _reason(error: BaseException) -> str:
    """One short line of `error` (orbax and TensorStore messages run to thousands of characters; their
    beginning says what was done, their end what the system said, e.g. "No space left on device")."""
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) > 200:
        text = text[:80] + " ... " + text[-110:]
    return text if isinstance(error, OSError) else f"{type(error).__name__}: {text}"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


class _QuietOrbax(logging.Filter):
    """Orbax logs a background save's failure from each of its threads, with tracebacks, then raises it
    again on the next save or wait; the Checkpointer reports it there once, as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


class Checkpointer:
    """Save and restore run states under one folder (wraps an orbax CheckpointManager).

    Writing: leftovers of an interrupted save (`*.orbax-checkpoint-tmp*`) are removed when the folder is
    opened; a failed save (also one that failed in orbax's background thread, e.g. a full disk) raises
    CheckpointError once, naming the step folder, and the earlier checkpoints stay. Reading
    (`read_only=True` opens a folder without creating or cleaning it): `restore` / `read_meta` without a
    step take the newest intact checkpoint, reporting (by name) each damaged one skipped.
    """

    def __init__(self, directory: str | Path, keep: int = 3, asynchronous: bool = True,
                 read_only: bool = False, warn=_warn):
        self.directory = Path(directory).absolute()
        self.warn = warn
        self.restored_step: int | None = None  # the step the last restore / read_meta used
        self._pending: int | None = None  # the step of a save that may still be written in the background
        self._failed_steps: set[int] = set()  # their temp folders are removed again once orbax has stopped
        self.read_only = read_only
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=asynchronous and not read_only,
            create=not read_only, cleanup_tmp_directories=not read_only)
        for name in ("absl", "orbax"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, _QuietOrbax) for f in logger.filters):
                logger.addFilter(_QuietOrbax())
        # An interrupted save's leftovers are not steps: removed before writing again (by process 0 alone in
        # a multi-process run, where every process writes its own parts of each checkpoint).
        if not read_only and jax.process_index() == 0:
            for leftover in self.directory.glob("*.orbax-checkpoint-tmp*"):
                shutil.rmtree(leftover, ignore_errors=True)
        try:
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        except (OSError, ValueError) as error:
            raise CheckpointError(f"cannot open the checkpoint folder {self.directory}: {_reason(error)}"
                                  ) from None

    def _failed(self, step: int | None, error: BaseException) -> CheckpointError:
        """The error of a failed save, its temp folder removed (the earlier checkpoints stay)."""
        if step is not None:
            self._failed_steps.add(step)
            self._remove_leftovers(step)
        where = self.directory / str(step) if step is not None else self.directory
        kept = [s for s in self._steps() if s != step]
        last = (f"the last good checkpoint is {self.directory / str(kept[0])}" if kept
                else "no checkpoint is kept")
        return CheckpointError(f"could not write checkpoint {where}: {_reason(error)} ({last})")

    def _remove_leftovers(self, step: int) -> None:
        for leftover in self.directory.glob(f"{step}.orbax-checkpoint-tmp*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def save(self, step: int, state: Any, meta: dict | None = None) -> None:
        """Save `state` (any pytree) and JSON `meta` as `step`; asynchronous unless disabled. Raises
        CheckpointError if this save, or an earlier one still being written, failed."""
        if self.read_only:
            raise CheckpointError(f"{self.directory} was opened for reading only")
        self.wait()
        try:
            self._manager.save(int(step), args=ocp.args.Composite(
                state=ocp.args.StandardSave(to_saveable(state)), meta=ocp.args.JsonSave(meta or {})),
                force=True)
        except Exception as error:
            raise self._failed(int(step), error) from None
        self._pending = int(step)

    def _steps(self) -> list[int]:
        """Finished checkpoint steps, newest first (temp folders of unfinished saves are not steps)."""
        try:
            self._manager.reload()
            return sorted(self._manager.all_steps(), reverse=True)
        except OSError:
            return []

    def latest_step(self) -> int | None:
        steps = self._steps()
        return steps[0] if steps else None

    def _candidates(self, step: int | None) -> list[int]:
        steps = [step] if step is not None else self._steps()
        if not steps:
            raise CheckpointError(f"no checkpoint in {self.directory} (expected numbered step folders "
                                  "written by jaxms.train)")
        return steps

    def _first_intact(self, step: int | None, read: Any) -> Any:
        """`read(step)` of `step`, or (step None) of the newest step it succeeds on, warning about each
        damaged one. Raises CheckpointError naming every folder tried."""
        tried = []
        for candidate in self._candidates(step):
            try:
                result = read(candidate)
            except _OtherLayout as error:  # not damaged: older steps of the run share its layout
                raise CheckpointError(str(error)) from None
            except Exception as error:  # orbax, TensorStore and json raise their own kinds
                folder = self.directory / str(candidate)
                tried.append(f"{folder} ({_reason(error)})")
                if step is None:
                    self.warn(f"checkpoint {folder} is damaged and was skipped: {_reason(error)}")
                continue
            self.restored_step = candidate
            return result
        raise CheckpointError("no intact checkpoint: " + "; ".join(tried))

    def restore(self, template: Any, step: int | None = None) -> tuple[Any, dict]:
        """(state shaped like `template`, meta) of `step` (default: the newest intact one; damaged ones are
        reported and skipped). The step used is `self.restored_step`. Raises CheckpointError."""
        saveable = to_saveable(template)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, saveable)

        def read(s):
            try:
                restored = self._manager.restore(s, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
            except Exception as error:
                # Readable, but laid out otherwise (another jaxms version's state, other settings)?
                try:
                    stored = self._read_raw(s, meta=False)[0]
                except Exception:
                    raise error from None
                if difference := layout_difference(stored, saveable):
                    raise _OtherLayout(
                        f"checkpoint {self.directory / str(s)} holds a state laid out otherwise than this "
                        f"run's ({difference}): it was written by another version of jaxms or for other "
                        "settings, and cannot be resumed by this one") from None
                raise
            return from_saveable(restored.state, template), _meta_dict(restored.meta)

        return self._first_intact(step, read)

    def restore_raw(self, step: int | None = None) -> tuple[Any, dict]:
        """(state as saved: nested dicts of NumPy arrays, meta) of `step` (default: the newest intact)."""

        return self._first_intact(step, self._read_raw)

    def _read_raw(self, step: int, meta: bool = True) -> tuple[Any, dict | None]:
        """(state as saved, meta or None) of `step`; raises what orbax raises."""
        args = {"state": ocp.args.StandardRestore(), **({"meta": ocp.args.JsonRestore()} if meta else {})}
        restored = self._manager.restore(step, args=ocp.args.Composite(**args))
        return restored.state, (_meta_dict(restored.meta) if meta else None)

    def read_meta(self, step: int | None = None) -> dict:
        """The JSON document of `step` (default: the newest intact one), without reading the arrays."""

        def read(s):
            return _meta_dict(self._manager.restore(s, args=ocp.args.Composite(
                meta=ocp.args.JsonRestore())).meta)

        return self._first_intact(step, read)

    def wait(self) -> None:
        """Wait for a save in progress. Raises CheckpointError if it failed (its folder is not kept)."""
        try:
            self._manager.wait_until_finished()
            self._manager.check_for_errors()
        except Exception as error:
            step, self._pending = self._pending, None
            raise self._failed(step, error) from None
        self._pending = None

    def close(self) -> None:
        """Wait for a save in progress and release the folder. Raises CheckpointError as `wait`."""
        try:
            self.wait()
        finally:
            with contextlib.suppress(Exception):  # closing after a failed save must not raise again
                self._manager.close()
            # orbax's other writer threads may still have been writing into a failed save's temp folder
            # when its error was reported; after close() they have stopped
            for step in self._failed_steps:
                self._remove_leftovers(step)


def _meta_dict(meta: Any) -> dict:
    if not isinstance(meta, dict):
        raise ValueError(f"meta/metadata holds {type(meta).__name__}, not a JSON object")
    return dict(meta)


def find_checkpoint(path: str | Path, what: str = "--continue-from") -> tuple[Path, int | None]:
    """(checkpoint folder, step or None for the newest intact) for a run folder, a checkpoints folder or a
    step. `what` names the argument in messages.

    Accepts `runs/NAME`, `runs/NAME/checkpoints`, `runs/NAME/best`, `runs/NAME/final` or
    `runs/NAME/checkpoints/120` (a run folder means its checkpoints/). Raises CheckpointError (a
    ValueError) saying what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} {path}: no such file or folder (give a run folder such as "
                              "runs/NAME_TIMESTAMP, or its checkpoints/, best/ or final/ folder, or one step "
                              "folder in them)")
    if not path.is_dir():
        raise CheckpointError(f"{what} {path}: is a file; give a run folder (runs/NAME_TIMESTAMP) or its "
                              "checkpoints/, best/ or final/ folder")
    if path.name.isdigit():
        return path.parent, int(path.name)
    if (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    if not any(child.name.isdigit() for child in path.iterdir() if child.is_dir()):
        raise CheckpointError(f"{what} {path}: no checkpoint steps found inside (expected numbered folders "
                              "written by jaxms.train, in a run folder's checkpoints/, best/ or final/)")
    return path, None
