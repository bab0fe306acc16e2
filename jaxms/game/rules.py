"""Game constants (OpenFront's engine, April 2026) in one frozen dataclass.

`Rules` is static configuration: it is hashable, passed to jit as a static argument, and changing it
recompiles. Values are the engine's defaults (`../shared/reference/openfront-rules.md` §3-§5, §7, §8).
"""

from __future__ import annotations

import dataclasses
import enum


class PlayerKind(enum.IntEnum):
    """Who controls a player slot. Slot 0 is unowned land (terra nullius) and has kind NONE."""

    NONE = 0
    HUMAN = 1  # the RL agent, or a scripted human in scenarios
    TRIBE = 2
    NATION = 3


class Difficulty(enum.IntEnum):
    """Nation difficulty; public free-for-all games use MEDIUM."""

    EASY = 0
    MEDIUM = 1
    HARD = 2
    IMPOSSIBLE = 3


@dataclasses.dataclass(frozen=True)
class Rules:
    """Every constant of the land game. Defaults are the engine's."""

    # Spawning (§3): a disk (x - cx + 0.5)^2 + (y - cy + 0.5)^2 <= 16 around the centre: 52 tiles.
    spawn_disk_radius_sq: float = 16.0
    spawn_min_distance: int = 30  # Manhattan distance between random spawn centres (scaled on small maps)
    start_troops_human: float = 25_000.0
    start_troops_tribe: float = 10_000.0
    start_troops_nation: tuple[float, float, float, float] = (12_500.0, 18_750.0, 25_000.0, 31_250.0)

    # Troops (§4): max = 2 (tiles^0.6 * 1000 + 50000) + 250000 * city levels, by kind.
    max_troops_tile_exponent: float = 0.6
    max_troops_tile_factor: float = 1000.0
    max_troops_base: float = 50_000.0
    city_max_troops_per_level: float = 250_000.0
    tribe_max_troops_divisor: float = 3.0
    nation_max_troops_factor: tuple[float, float, float, float] = (0.5, 0.75, 1.0, 1.25)
    # Growth per tick: (10 + T^0.73 / 4) (1 - T / M), times a kind factor.
    growth_base: float = 10.0
    growth_exponent: float = 0.73
    growth_divisor: float = 4.0
    tribe_growth_factor: float = 0.6
    nation_growth_factor: tuple[float, float, float, float] = (0.9, 0.95, 1.0, 1.05)
    gold_per_tick: float = 100.0
    tribe_gold_per_tick: float = 50.0

    # Attacks (§5): per terrain class (plains, highland, mountain).
    terrain_loss: tuple[float, float, float] = (80.0, 100.0, 120.0)  # "mag"
    terrain_cost: tuple[float, float, float] = (16.5, 20.0, 25.0)  # "speed"
    terrain_priority: tuple[float, float, float] = (1.0, 1.5, 2.0)  # g in the frontier priority
    budget_jitter_max: int = 4  # r = U{0..4} in the per-tick budget
    unowned_budget_factor: float = 2.0
    player_budget_factor: float = 3.0
    player_budget_ratio_clamp: tuple[float, float] = (0.01, 0.5)
    human_vs_tribe_loss_factor: float = 0.8
    large_defender_midpoint: float = 150_000.0
    large_defender_scale: float = 50_000.0  # the sigmoid's rate is ln 2 / scale
    large_attacker_tiles: float = 100_000.0
    large_attacker_loss_exponent: float = 0.35
    large_attacker_cost_exponent: float = 0.6
    annihilation_tiles: int = 100
    retreat_ticks: int = 20
    retreat_keep_vs_player: float = 0.75

    # Structures (§6): cities and defense posts; nations build them (game/structures.py).
    city_cost_base: float = 125_000.0  # cost min(max, base 2^levels owned)
    city_cost_max: float = 1_000_000.0
    city_build_ticks: int = 20
    defense_post_cost_step: float = 50_000.0  # cost min(max, step (posts owned + 1))
    defense_post_cost_max: float = 250_000.0
    defense_post_build_ticks: int = 50
    defense_post_radius: int = 30  # Euclidean: a post covers its owner's tiles with dy^2 + dx^2 <= 30^2
    defense_post_loss_factor: float = 5.0  # attacker losses on covered tiles ("mag" x5)
    defense_post_cost_factor: float = 3.0  # budget cost of covered tiles ("speed" x3)
    # Whether posts act on conquest at all (False: they are built and captured but protect nothing, which
    # also skips the per-tick cover computation).
    defense_posts: bool = True
    structure_min_distance: int = 15
    tiles_per_structure: int = 1500  # above one structure per this many tiles, nations upgrade instead
    defense_posts_per_city: float = 0.25
    structures_per_nation: int = 8  # structure slots in a game: this many per nation

    # Win (§8): checked every 10 ticks; more than 80% of the land wins.
    win_check_interval: int = 10
    win_land_share: float = 0.8
    max_ticks: int = 100_000  # the env truncates an episode here (nobody wins)
    # The game's timer (WinCheckExecution): at this many ticks after the spawn phase the leader (most land)
    # wins. The engine's default is its hard limit of 170 minutes (102,000 ticks of 100 ms); 0: no timer.
    max_timer_ticks: int = 102_000

    # The agent's directed attacks (env actions): tiles in the chosen direction count this much older.
    focus_age_bonus: int = 8

    # Vectorised conquest: each tick's budget is spent in this many rounds, the frontier recomputed between
    # them, so concave corners fill within a tick as the engine's heap does (see game/conquest.py).
    conquest_substeps: int = 2

    def __post_init__(self) -> None:
        if self.conquest_substeps < 1:
            raise ValueError(f"conquest_substeps must be >= 1, got {self.conquest_substeps}")
        if self.spawn_min_distance < 0:
            raise ValueError(f"spawn_min_distance must be >= 0, got {self.spawn_min_distance}")
        if self.defense_post_radius < 0:
            raise ValueError(f"defense_post_radius must be >= 0, got {self.defense_post_radius}")
        if self.defense_post_loss_factor <= 0 or self.defense_post_cost_factor <= 0:
            raise ValueError("defense_post_loss_factor and defense_post_cost_factor must be > 0, got "
                             f"{self.defense_post_loss_factor} and {self.defense_post_cost_factor}")
        if self.max_timer_ticks is None:
            object.__setattr__(self, "max_timer_ticks", 0)
        if not isinstance(self.max_timer_ticks, int) or self.max_timer_ticks < 0:
            raise ValueError(f"max_timer_ticks must be an integer >= 0 (0: no timer), got "
                             f"{self.max_timer_ticks!r}")
        if not 0.5 <= self.win_land_share <= 1.0:
            raise ValueError(f"win_land_share must be in [0.5, 1], got {self.win_land_share}")
