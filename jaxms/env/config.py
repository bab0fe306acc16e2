"""`EnvConfig`: every setting of the RL environment, in one frozen, hashable, JAX-free dataclass.

The map is not a setting: it is an argument (`TerritoryEnv(game_map, config)`), and its arrays travel in
the env params, so one compiled step serves every map of a shape. `Rules` (the game's constants) are the
engine's and are given separately. Numbers that change no shape (reward scales, max_steps) become
`EnvParams` leaves, so changing them does not recompile.
"""

from __future__ import annotations

import dataclasses

from jaxms.env.contract import ObsConfig
from jaxms.settings import check_choice, check_int, check_number, setting

REWARDS = ("share", "rank")
# What reaching `max_steps` means. "truncate": the episode is cut for training's sake while the game would
# go on (reported as truncated, so PPO bootstraps from the value of the last observation). "lose": the game
# is timed: the agent must win within `max_steps`, and a game not won by then is over and lost (terminated,
# with the loss reward); the observation's "time" feature is then steps taken / max_steps. "leader": the
# game's timer, as OpenFront's (Rules.max_timer_ticks): at `max_steps` the game is over and the player with
# the most land wins (terminated; the win reward if that is the agent, else the loss reward); the "time"
# feature is steps taken / max_steps as for "lose".
TIME_LIMITS = ("truncate", "lose", "leader")
NATION_DIFFICULTIES = ("easy", "medium", "hard", "impossible")  # game.rules.Difficulty, lower case


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """The agent (player 1, human kind) against `num_bots` tribes and, if asked, the map's nations."""

    num_bots: int = setting(10, "tribes playing against the agent")
    nations: bool = setting(False, "also spawn the map's nations (reduced nation AI)")
    nation_difficulty: str = setting("medium", "difficulty of the nations", choices=NATION_DIFFICULTIES)
    agent_boats: bool = setting(True, "the agent may send troops by boat (a direction with no land to attack "
                                "but a shore it can reach); false: its directions attack over land only "
                                "(the bots still sail)")
    ticks_per_step: int = setting(10, "game ticks per env step (10: an attack runs ~50 ticks, so the agent "
                                  "re-aims ~5 times; see benchmarks/bench_action_horizon.py)")
    max_steps: int = setting(1000, "env steps before an episode ends (see --time-limit)")
    time_limit: str = setting("truncate", "truncate: max_steps cuts episodes short for training (PPO "
                              "bootstraps the rest of the game); lose: a timed game, lost unless won within "
                              "max_steps (the agent sees the time left); leader: the game's timer, at "
                              "max_steps the player with the most land wins", choices=TIME_LIMITS)
    reward: str = setting("share", "share: change in land share x share_scale, plus the win / loss reward; "
                          "rank: the earlier system's per-step rank reward", choices=REWARDS)
    share_scale: float = setting(10.0, "reward per unit change of the agent's share of the land")
    win_reward: float = setting(1.0, "reward on the step the agent wins")
    loss_reward: float = setting(-1.0, "reward on the step the agent dies, another player wins or a timed "
                                 "game runs out")
    rank_scale: float = setting(0.01, "per-step scale of the rank reward (reward=rank)")
    reset_pool_size: int = setting(16, "start positions made once that finished episodes restart from (0: "
                                   "a fresh game each time, slower)")
    obs: ObsConfig = setting(ObsConfig(), "the observation", cli=False)

    def __post_init__(self) -> None:
        for name, low in (("num_bots", 0), ("ticks_per_step", 1), ("max_steps", 1), ("reset_pool_size", 0)):
            check_int("EnvConfig", name, getattr(self, name), low)
        for name in ("nations", "agent_boats"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"EnvConfig.{name} must be true or false, got {getattr(self, name)!r}")
        check_choice("EnvConfig", "nation_difficulty", self.nation_difficulty, NATION_DIFFICULTIES)
        check_choice("EnvConfig", "time_limit", self.time_limit, TIME_LIMITS)
        check_choice("EnvConfig", "reward", self.reward, REWARDS)
        for name in ("share_scale", "win_reward", "loss_reward", "rank_scale"):
            check_number("EnvConfig", name, getattr(self, name))
        if not isinstance(self.obs, ObsConfig):
            raise ValueError(f"EnvConfig.obs must be an ObsConfig, got {type(self.obs).__name__}")

    def replace(self, **changes) -> EnvConfig:
        return dataclasses.replace(self, **changes)
