"""Settings as dataclass fields that carry their own help text, choices and flag name.

Every configurable number of jaxms is one field of one frozen dataclass (EnvConfig, ObsConfig,
NetworkConfig, PPOConfig, RunConfig). `setting(...)` declares such a field with its metadata, so the
command line and config files are generated from the fields (`jaxms.config`): a new setting is one edit.
JAX-free.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any


def setting(default: Any, help: str, *, choices: tuple | None = None, flag: str | None = None,
            cli: bool = True) -> Any:
    """A dataclass field with `default` and metadata: `help` (shown by --help), `choices` (accepted values),
    `flag` (the command-line name without dashes when it differs from the field's name, e.g. the earlier
    system's "n-envs" for `num_envs`) and `cli=False` for fields set by another setting, never directly."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "flag": flag,
                                                        "cli": cli})


def check_choice(owner: str, name: str, value: Any, accepted: tuple) -> None:
    """Raise ValueError naming `owner.name` unless `value` is one of `accepted`."""
    if value not in accepted:
        raise ValueError(f"{owner}.{name}={value!r} is not accepted: use one of "
                         f"{', '.join(map(str, accepted))}")


def check_int(owner: str, name: str, value: Any, low: int, high: int | None = None,
              optional: bool = False) -> None:
    """Raise ValueError naming `owner.name` unless `value` is an int in [low, high] (or None if optional)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and
                                                                                value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{owner}.{name} must be an integer {bound}, got {value!r}")


def check_number(owner: str, name: str, value: Any, low: float | None = None, high: float | None = None,
                 low_open: bool = False, optional: bool = False, high_open: bool = False) -> None:
    """Raise ValueError naming `owner.name` unless `value` is a finite real number within the bounds
    (`low_open` / `high_open`: the bound itself is excluded)."""
    if optional and value is None:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high}")
        within = " " + " and ".join(bounds) if bounds else ""
        raise ValueError(f"{owner}.{name} must be a finite number{within}, got {value!r}")


def check_bool(owner: str, name: str, value: Any) -> None:
    """Raise ValueError naming `owner.name` unless `value` is True or False."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}.{name} must be true or false, got {value!r}")


# ---------------------------------------------------------------------------------------------------------
# Walking settings: the leaves of a (nested) settings dataclass, and their values from text or files
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One setting of a nested settings dataclass: where it lives and how it is written.

    `path` is the chain of field names from the root (("ppo", "learning_rate")), `owner` the dataclass
    that declares the field, `kind` its base type (bool, int, float, str or tuple for `tuple[str, ...]`),
    `optional` whether None is accepted, `flag` the command-line / flat config-file name without dashes
    (the `flag` metadata, else the field name with '-' for '_').
    """

    path: tuple[str, ...]
    owner: type
    field: dataclasses.Field
    kind: type
    optional: bool

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def flag(self) -> str:
        return self.field.metadata.get("flag") or self.field.name.replace("_", "-")

    @property
    def help(self) -> str:
        return self.field.metadata.get("help", "")

    @property
    def choices(self) -> tuple | None:
        return self.field.metadata.get("choices")

    @property
    def cli(self) -> bool:
        return self.field.metadata.get("cli", True)

    @property
    def qualname(self) -> str:
        """`Owner.field`, the form component validation messages start with."""
        return f"{self.owner.__name__}.{self.field.name}"

    def accepted(self) -> str:
        """What values are accepted, in words."""
        if self.kind is tuple:
            text = "a list (or comma-separated text) of names" + (
                f" among {', '.join(map(str, self.choices))}" if self.choices else "")
        elif self.choices:
            text = "one of " + ", ".join(map(str, self.choices))
        else:
            text = {bool: "true or false", int: "an integer", float: "a number", str: "text"}[self.kind]
        return text + (" (or none)" if self.optional else "")

    def from_text(self, text: str) -> Any:
        """The value of `text` as given on the command line (ValueError saying what is accepted)."""
        if self.optional and text.strip().lower() in ("none", "null"):
            return None
        try:
            if self.kind is bool:
                lowered = text.strip().lower()
                if lowered not in _TRUE + _FALSE:
                    raise ValueError
                value: Any = lowered in _TRUE
            elif self.kind is tuple:
                value = tuple(part.strip() for part in text.split(",") if part.strip())
            else:
                value = self.kind(text)
        except ValueError:
            raise ValueError(f"expected {self.accepted()}, got {text!r}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """`value` (from a config file or code) if it has this setting's type, normalised (a list or
        comma-separated text becomes a tuple, an int a float where a number is asked); else ValueError."""
        if value is None and self.optional:
            return None
        ok = True
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok and not math.isfinite(value):  # refused for every number setting, whatever its bounds
                raise ValueError(f"expected a finite number (not NaN or infinity), got {value!r}")
            value = float(value) if ok else value
        elif self.kind is str:
            ok = isinstance(value, str)
        elif self.kind is tuple:
            if isinstance(value, str):
                value = tuple(part.strip() for part in value.split(",") if part.strip())
            ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
            value = tuple(value) if ok else value
        if ok and self.choices is not None:
            ok = all(v in self.choices for v in value) if self.kind is tuple else value in self.choices
        if not ok:
            raise ValueError(f"expected {self.accepted()}, got {value!r}")
        return value


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def is_settings_class(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass (strings under `from __future__ import annotations`)."""
    import sys
    import typing

    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def leaves(cls: type, prefix: tuple[str, ...] = ()) -> list[Leaf]:
    """Every setting of the dataclass `cls`, depth first: a field whose type is itself a dataclass is a
    section and is walked into (whatever its `cli`); the others are leaves (those with `cli=False`
    included: callers filter on `Leaf.cli`)."""
    import types
    import typing

    found = []
    hints = field_types(cls)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        if is_settings_class(kind):
            found.extend(leaves(kind, (*prefix, field.name)))
            continue
        optional = False
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            optional, kind = len(args) < len(typing.get_args(kind)), args[0]
        if typing.get_origin(kind) is tuple:
            kind = tuple
        if kind not in (bool, int, float, str, tuple):
            raise TypeError(f"{cls.__name__}.{field.name}: settings of type {kind!r} are not supported")
        found.append(Leaf((*prefix, field.name), cls, field, kind, optional))
    return found
