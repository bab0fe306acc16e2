"""The observation and action contract of the env, in one JAX-free module.

Everything outside env/ that needs to know what an observation holds or what an action means reads it
here: the networks (nn/), rendering, evaluation, the benchmarks, and the PyTorch path (no JAX import).

Actions: Discrete(45) = 9 directions (N, NE, E, SE, S, SW, W, NW, WAIT) x 5 troop intensities; action
`a` is direction `a // 5` with intensity `a % 5` (jaxms/env/actions.py says what a direction attacks).

Observations (dict; see jaxms/env/observe.py for how each channel and feature is computed):
- multi-scale: "global_map", "local_map", "tactical_map" (uint8 [S, S, C] each), "features" (float32 [F]),
  "action_mask" (bool [45]);
- single-scale: "map" (uint8 [G, G, C]), "features", "action_mask".
C = `ObsConfig.num_channels` (stacked frames of `stacked_channels`, then the newest frame's other dynamic
channels, then STATIC_CHANNELS); F = NUM_FEATURES x frame_stack.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from jaxms.settings import check_choice, check_int, setting

AGENT = 1  # the agent's player id (slot 0 is unowned land)

# Actions
DIRECTION_NAMES = ("N", "NE", "E", "SE", "S", "SW", "W", "NW", "WAIT")
NUM_DIRECTIONS = 8  # compass directions; index 8 is WAIT
WAIT = 8  # the WAIT direction
INTENSITIES = (0.15, 0.30, 0.45, 0.60, 0.75)  # share of the agent's troops sent
NUM_ACTIONS = len(DIRECTION_NAMES) * len(INTENSITIES)  # 45
WAIT_ACTION = WAIT * len(INTENSITIES)  # the first of the five WAIT actions (always legal)

# Observations
MODES = ("multi", "single")
VIEW_KEYS = {"multi": ("global_map", "local_map", "tactical_map"), "single": ("map",)}
OBS_KEYS = {mode: (*views, "features", "action_mask") for mode, views in VIEW_KEYS.items()}
DYNAMIC_CHANNELS = ("own", "enemy", "unowned", "own_troops", "enemy_troops", "border", "own_structures",
                    "enemy_structures", "boats")
STATIC_CHANNELS = ("water", "terrain")
CHANNELS = DYNAMIC_CHANNELS + STATIC_CHANNELS
FEATURE_NAMES = ("troops_ratio", "max_troops_log", "troop_growth_per_tile", "land_share", "share_change",
                 "rank", "border_pressure", "troops_per_tile", "time", "threat_distance", "alive_players",
                 "committed_troops", "local_y", "local_x", "tactical_y", "tactical_x", "own_boats",
                 "incoming_boats")
NUM_FEATURES = len(FEATURE_NAMES)
MIN_VIEW, MAX_VIEW = 8, 4096
STRUCTURE_VALUES = {"city": 255, "defense_post": 170, "building": 85}
BOAT_VALUES = {"own": 255, "enemy": 128}  # the "boats" channel: a cell holding a boat in flight
TRANSITION_BUDGET = 737_280  # bytes: 25% of the earlier system's 2.9 MB float32 observation

# Sizes by the map's longest side: (global, local window, local, tactical).
_SIZE_TABLE = ((128, (64, 64, 64, 32)), (256, (64, 128, 64, 32)), (512, (128, 128, 128, 64)),
               (1024, (128, 256, 128, 64)), (math.inf, (128, 512, 128, 64)))
_SIZE_FIELDS = ("global_size", "local_view_size", "local_size", "tactical_size")


@dataclasses.dataclass(frozen=True)
class ObsConfig:
    """Static configuration of the observation (shapes depend on it; hashable).

    View sizes left as None follow the map (`sized`): a config is complete once sized for a map, and the
    observer only ever holds a complete one. Raises ValueError at construction for an unknown mode, a size
    outside 8..4096, a local window smaller than its pooled size (pooling never upsamples), a frame stack
    outside 1..16, or unknown stacked channels. Windows larger than the map are fine: the map is padded.

    | map's longest side | global | local window -> local | tactical |
    | <= 128             | 64     | 64 -> 64              | 32       |
    | <= 256             | 64     | 128 -> 64             | 32       |
    | <= 512             | 128    | 128 -> 128            | 64       |
    | <= 1024            | 128    | 256 -> 128            | 64       |
    | larger             | 128    | 512 -> 128            | 64       |
    """

    mode: str = setting("multi", "multi: global + local + tactical views; single: one global view (the "
                        "baseline)", choices=MODES, flag="obs")
    global_size: int | None = setting(None, "side of the global view (default by map size: 64 up to "
                                      "256x256, else 128)")
    local_view_size: int | None = setting(None, "tiles around the agent in the local view (default by map "
                                          "size; 128/256/512 suit 512/1024/2048 maps)")
    local_size: int | None = setting(None, "side the local window is pooled to (default by map size, at "
                                     "most local_view_size)")
    tactical_size: int | None = setting(None, "tiles of the full-resolution tactical window (default by "
                                        "map size: 32 up to 256x256, else 64)")
    frame_stack: int = setting(4, "frames stacked in each view and in the features")
    stacked_channels: tuple[str, ...] = setting(("own", "enemy"), "dynamic channels kept for every frame "
                                                "(comma-separated; the others are given for the newest "
                                                "frame only)", choices=DYNAMIC_CHANNELS)

    def __post_init__(self) -> None:
        check_choice("ObsConfig", "mode", self.mode, MODES)
        for name in _SIZE_FIELDS:
            check_int("ObsConfig", name, getattr(self, name), MIN_VIEW, MAX_VIEW, optional=True)
        if self.local_view_size is not None and self.local_size is not None \
                and self.local_view_size < self.local_size:
            raise ValueError(f"ObsConfig.local_view_size ({self.local_view_size}) must be >= local_size "
                             f"({self.local_size}): the local window is pooled down, never upsampled")
        check_int("ObsConfig", "frame_stack", self.frame_stack, 1, 16)
        stacked = self.stacked_channels
        stacked = tuple(stacked.split(",")) if isinstance(stacked, str) else tuple(stacked)
        unknown = [c for c in stacked if c not in DYNAMIC_CHANNELS]
        if unknown or len(set(stacked)) != len(stacked):
            raise ValueError(f"ObsConfig.stacked_channels {stacked!r} must be distinct names among "
                             f"{', '.join(DYNAMIC_CHANNELS)}")
        object.__setattr__(self, "stacked_channels", tuple(c for c in DYNAMIC_CHANNELS if c in stacked))

    @property
    def complete(self) -> bool:
        """Every view size is set (the config is sized for a map)."""
        return all(getattr(self, name) is not None for name in _SIZE_FIELDS)

    def sized(self, height: int, width: int) -> ObsConfig:
        """This config with its unset view sizes chosen for a `height` x `width` map (the table above).

        A local window set smaller than the table's pooled local size is pooled to its own size."""
        if min(height, width) < 1:
            raise ValueError(f"map sides must be positive, got {height}x{width}")
        side = max(height, width)
        table = dict(zip(_SIZE_FIELDS, next(sizes for limit, sizes in _SIZE_TABLE if side <= limit),
                         strict=True))
        if self.local_view_size is not None and self.local_size is None:
            table["local_size"] = min(table["local_size"], self.local_view_size)
        return dataclasses.replace(self, **{name: table[name] for name in _SIZE_FIELDS
                                            if getattr(self, name) is None})

    @classmethod
    def for_map(cls, height: int, width: int, mode: str = "multi", **overrides: Any) -> ObsConfig:
        """A complete config for a `height` x `width` map; `overrides` set any field."""
        return cls(mode=mode, **overrides).sized(height, width)

    def _require_complete(self) -> None:
        if not self.complete:
            raise ValueError("this ObsConfig's view sizes follow the map: size it first with "
                             "ObsConfig.sized(height, width) (or ObsConfig.for_map)")

    @property
    def current_channels(self) -> tuple[str, ...]:
        """Dynamic channels given for the newest frame only."""
        return tuple(c for c in DYNAMIC_CHANNELS if c not in self.stacked_channels)

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Names of a view's channels in order, e.g. ("own@t-3", "enemy@t-3", ..., "own@t", ..., "water")."""
        frames = [f"{c}@t-{self.frame_stack - 1 - k}" if k < self.frame_stack - 1 else f"{c}@t"
                  for k in range(self.frame_stack) for c in self.stacked_channels]
        return (*frames, *self.current_channels, *STATIC_CHANNELS)

    @property
    def num_channels(self) -> int:
        return len(self.channel_names)

    @property
    def view_sizes(self) -> dict[str, int]:
        """Side of each view, by observation key."""
        self._require_complete()
        if self.mode == "single":
            return {"map": self.global_size}
        return {"global_map": self.global_size, "local_map": self.local_size,
                "tactical_map": self.tactical_size}

    @property
    def num_features(self) -> int:
        return NUM_FEATURES * self.frame_stack

    def bytes_per_view(self) -> dict[str, int]:
        """Bytes of each observation entry for one env (uint8 views, float32 features, bool mask)."""
        sizes = {name: side * side * self.num_channels for name, side in self.view_sizes.items()}
        return {**sizes, "features": 4 * self.num_features, "action_mask": NUM_ACTIONS}

    @property
    def nbytes(self) -> int:
        """Bytes of one observation (one stored transition) per env."""
        return sum(self.bytes_per_view().values())
