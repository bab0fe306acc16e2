"""The RL environment around the game, with gymnax's API.

    env = TerritoryEnv(load_map("continents_128"), num_bots=10)
    params = env.default_params
    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)   # auto-resets when done

The agent is player 1 (a human-kind player) against `num_bots` tribes and, if asked, the map's nations.
One env step is an action followed by `ticks_per_step` game ticks with the scripted bots.

Static configuration (shapes, the map's players, the reward's form) lives on the env object and is
hashable; numbers that may change between runs without recompiling live in `EnvParams`, a pytree passed to
every call (gymnax's convention), together with the pool of start positions used by auto-reset.

Auto-reset: a fresh game is a full pass over the map per player (spawning), which under `vmap` would
run on every step of every env (a `cond` on a batched flag computes both branches). Instead, `EnvParams`
holds a pool of `reset_pool_size` start positions made once (with their first observations); an env that
ends copies one, chosen at random, and draws a new game key, so bots decide differently each episode.
`reset_pool_size=0` resets with a full fresh game instead (slower, every start distinct).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxms.env import spaces
from jaxms.env.actions import NUM_ACTIONS, action_mask, apply_action, direction_targets
from jaxms.env.observe import MinimalObserver, ObsConfig, make_observer
from jaxms.game.bots import scripted_bots
from jaxms.game.loop import tick
from jaxms.game.rules import Difficulty, PlayerKind, Rules
from jaxms.game.spawn import MAX_PLAYERS, make_game, spawn_distance, structure_capacity
from jaxms.game.state import GameState, MapArrays, map_arrays
from jaxms.maps import GameMap

AGENT = 1
REWARDS = ("share", "rank")
# What reaching `max_steps` means. "truncate": the episode is cut for training's sake while the game would
# go on (reported as truncated, so PPO bootstraps from the value of the last observation). "lose": the game
# is timed: the agent must win within `max_steps`, and a game not won by then is over and lost (terminated,
# with the loss reward); the observation's "time" feature is then steps taken / max_steps, so the agent
# knows how long it has left.
TIME_LIMITS = ("truncate", "lose")
DIFFICULTIES = {d.name.lower(): d for d in Difficulty}


@struct.dataclass
class EnvParams:
    """Numbers of an env that do not change shapes (a pytree argument of reset/step)."""

    max_steps: jax.Array  # int32[]: an episode is truncated after this many steps
    share_scale: jax.Array  # float32[]: reward per unit change of the agent's share of the land
    win_reward: jax.Array  # float32[]: added on the step the agent wins
    loss_reward: jax.Array  # float32[]: added on the step the agent dies or another player wins
    rank_scale: jax.Array  # float32[]: per-step scale of the rank reward (reward="rank")
    pool_games: GameState  # GameState with a leading axis [K]: start positions for auto-reset
    pool_obs: Any  # observations of the pool positions, leading axis [K]
    pool_memory: Any  # the observer's memory (frame stack) at those positions, leading axis [K]


@struct.dataclass
class EnvState:
    """One environment: the game plus episode bookkeeping."""

    game: GameState
    memory: Any  # the observer's memory (frame stack)
    legal: jax.Array  # bool[9]: legal directions (the mask the agent saw)
    targets: jax.Array  # int32[8]: who each direction attacks
    centre: jax.Array  # float32[2]: (y, x) the directions are measured from
    steps: jax.Array  # int32[]: steps in this episode
    episode_return: jax.Array  # float32[]
    start_share: jax.Array  # float32[]: land share at the episode's start
    # Statistics of the last finished episode (for logging, like PureJaxRL's LogWrapper).
    returned_episode_return: jax.Array  # float32[]
    returned_episode_length: jax.Array  # int32[]
    returned_episode_won: jax.Array  # bool[]
    returned_episode_share: jax.Array  # float32[]: final land share


class TerritoryEnv:
    """The agent against tribes (and optionally nations) on one map. See the module docstring."""

    def __init__(self, game_map: GameMap, num_bots: int = 10, nations: bool = False,
                 nation_difficulty: str = "medium", ticks_per_step: int = 10, max_steps: int = 1000,
                 reward: str = "share", observer=None, rules: Rules = Rules(), reset_pool_size: int = 16,
                 seed: int = 0, agent_autopilot: bool = False, obs: str | ObsConfig | None = None,
                 local_view_size: int | None = None, time_limit: str = "truncate"):
        if not isinstance(game_map, GameMap):
            raise TypeError(f"game_map must be a GameMap (use jaxms.load_map), got {type(game_map).__name__}")
        for name, value, low in (("num_bots", num_bots, 0), ("ticks_per_step", ticks_per_step, 1),
                                 ("max_steps", max_steps, 1), ("reset_pool_size", reset_pool_size, 0)):
            if not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if time_limit not in TIME_LIMITS:
            raise ValueError(f"unknown time_limit {time_limit!r}: accepted are {', '.join(TIME_LIMITS)}")
        if reward not in REWARDS:
            raise ValueError(f"unknown reward {reward!r}: accepted rewards are {', '.join(REWARDS)}")
        if nation_difficulty not in DIFFICULTIES:
            raise ValueError(f"unknown nation difficulty {nation_difficulty!r}: accepted are "
                             f"{', '.join(DIFFICULTIES)}")
        nation_spawns = [(n.x, n.y) for n in game_map.nations] if nations else []
        if 1 + num_bots + len(nation_spawns) > MAX_PLAYERS:
            raise ValueError(f"{1 + num_bots + len(nation_spawns)} players (the agent, {num_bots} bots and "
                             f"{len(nation_spawns)} nations) exceed the maximum of {MAX_PLAYERS}")
        self.game_map = game_map
        # The agent's seat played by the tribe rules (actions are ignored): an evaluation baseline.
        self.agent_autopilot = bool(agent_autopilot)
        self.num_bots = int(num_bots)
        self.ticks_per_step = int(ticks_per_step)
        self.reward = reward
        self.time_limit = time_limit
        self.rules = rules
        # Observations: `obs` ("multi", "single" or an ObsConfig) builds an Observer sized for the map;
        # otherwise `observer`, or the minimal stand-in.
        if obs is not None and observer is not None:
            raise ValueError("give either observer= or obs=, not both")
        if local_view_size is not None and obs is None:
            raise ValueError('local_view_size needs obs="multi" (or an ObsConfig)')
        if obs is not None:
            view = {} if local_view_size is None else {"local_view_size": local_view_size}
            observer = make_observer(obs, (game_map.height, game_map.width), rules, **view)
        self.observer = observer if observer is not None else MinimalObserver()
        self.arrays: MapArrays = map_arrays(game_map, rules)
        kinds = [PlayerKind.HUMAN] + [PlayerKind.TRIBE] * num_bots + [PlayerKind.NATION] * len(nation_spawns)
        self.kind = np.array([PlayerKind.NONE, *kinds], dtype=np.int8)
        self.num_players = len(kinds)
        centres = np.full((self.num_players + 1, 2), -1, dtype=np.int32)
        land = game_map.land
        for i, (x, y) in enumerate(nation_spawns, start=2 + num_bots):
            if land[y, x]:  # a manifest point on water (after a crop or resize) falls back to random
                centres[i] = (y, x)
        self._centres = centres
        self._difficulty = DIFFICULTIES[nation_difficulty]
        self._spawn_distance = spawn_distance(game_map.num_land_tiles, self.num_players, rules)
        self._default_params = self.make_params(jax.random.key(seed), max_steps=max_steps,
                                                pool_size=reset_pool_size)

    # ---------------------------------------------------------------------------------------------------
    # gymnax API
    # ---------------------------------------------------------------------------------------------------

    @property
    def default_params(self) -> EnvParams:
        return self._default_params

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Dict:
        return self.observer.space(self.arrays.shape)

    def reset(self, key: jax.Array, params: EnvParams | None = None) -> tuple[dict, EnvState]:
        """A fresh game (spawn phase included) and its first observation."""
        params = self._default_params if params is None else params
        game = self._new_game(key)
        return self._start(game, params)

    def step(self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams | None = None
             ) -> tuple[dict, EnvState, jax.Array, jax.Array, dict]:
        """Act, run `ticks_per_step` ticks, and auto-reset if the episode ended.

        `info` holds `terminated` and `truncated` separately, `final_observation` (the observation of the
        step that ended the episode, for bootstrapping truncated episodes), `invalid_action` (the action
        was outside 0..44 and was clipped) and the statistics of the last finished episode.
        """
        params = self._default_params if params is None else params
        step_key, reset_key = jax.random.split(key)
        obs, stepped, reward, terminated, truncated, info = self.step_env(step_key, state, action, params)
        done = terminated | truncated
        if self._pool_size(params) > 0:
            index = jax.random.randint(reset_key, (), 0, self._pool_size(params))
            pick = partial(jax.tree.map, lambda leaf: leaf[index])
            game = pick(params.pool_games).replace(key=jax.random.fold_in(reset_key, 1))
            reset_obs, reset_state = self._fresh_state(game, pick(params.pool_obs), pick(params.pool_memory))
        else:
            reset_obs, reset_state = self._start(self._new_game(reset_key), params)
        reset_state = reset_state.replace(
            returned_episode_return=stepped.returned_episode_return,
            returned_episode_length=stepped.returned_episode_length,
            returned_episode_won=stepped.returned_episode_won,
            returned_episode_share=stepped.returned_episode_share)
        new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, stepped)
        new_obs = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_obs, obs)
        info = {**info, "final_observation": obs, "terminated": terminated, "truncated": truncated}
        return new_obs, new_state, reward, done, info

    # ---------------------------------------------------------------------------------------------------
    # Internals
    # ---------------------------------------------------------------------------------------------------

    def _new_game(self, key: jax.Array) -> GameState:
        return make_game(key, self.arrays, jnp.asarray(self.kind), jnp.asarray(self._centres),
                         jnp.int8(self._difficulty), distance=self._spawn_distance,
                         num_structures=structure_capacity(self.kind, self.rules), rules=self.rules)

    def _fresh_state(self, game: GameState, obs, memory) -> tuple[dict, EnvState]:
        targets, legal, centre = direction_targets(game, self.arrays, AGENT)
        share = game.tiles[AGENT] / jnp.maximum(self.arrays.num_land_tiles, 1).astype(jnp.float32)
        zero = jnp.float32(0.0)
        state = EnvState(game=game, memory=memory, legal=legal, targets=targets, centre=centre,
                         steps=jnp.int32(0), episode_return=zero, start_share=share,
                         returned_episode_return=zero, returned_episode_length=jnp.int32(0),
                         returned_episode_won=jnp.bool_(False), returned_episode_share=zero)
        return obs, state

    def _clock(self, steps: jax.Array | int, params: EnvParams) -> jax.Array | None:
        """The observation's "time" feature in a timed game (steps / max_steps); None: the game's own."""
        if self.time_limit != "lose":
            return None
        return jnp.minimum(jnp.asarray(steps, jnp.float32) / jnp.maximum(params.max_steps, 1), 1.0)

    def _start(self, game: GameState, params: EnvParams) -> tuple[dict, EnvState]:
        _targets, legal, _ = direction_targets(game, self.arrays, AGENT)
        obs, memory = self.observer.init(game, self.arrays, action_mask(legal), time=self._clock(0, params))
        return self._fresh_state(game, obs, memory)

    @staticmethod
    def _pool_size(params: EnvParams) -> int:
        return int(jax.tree.leaves(params.pool_games)[0].shape[0]) if params.pool_games is not None else 0

    def make_params(self, key: jax.Array, max_steps: int = 1000, pool_size: int = 16,
                    share_scale: float = 10.0, win_reward: float = 1.0, loss_reward: float = -1.0,
                    rank_scale: float = 0.01) -> EnvParams:
        """EnvParams with a fresh pool of `pool_size` start positions drawn from `key`.

        Raises ValueError when the map cannot hold every player's spawn (too many bots for its land).
        """
        count = max(pool_size, 1)
        obs, states = jax.jit(jax.vmap(self.reset, in_axes=(0, None)))(
            jax.random.split(key, count), _placeholder_params(max_steps))
        spawned = np.asarray(states.game.spawn[:, 1:, 0] >= 0)
        if not spawned.all():
            missing = int((~spawned).sum(axis=1).max())
            raise ValueError(
                f"map {self.game_map.name!r} ({self.game_map.num_land_tiles} land tiles) has no room for "
                f"{self.num_players} spawns ({missing} could not be placed at Manhattan distance "
                f">= {self._spawn_distance} on a full 52-tile disk of land): use fewer bots or a larger map")
        keep = partial(jax.tree.map, lambda leaf: leaf if pool_size > 0 else None)
        return EnvParams(max_steps=jnp.int32(max_steps), share_scale=jnp.float32(share_scale),
                         win_reward=jnp.float32(win_reward), loss_reward=jnp.float32(loss_reward),
                         rank_scale=jnp.float32(rank_scale),
                         pool_games=states.game if pool_size > 0 else None,
                         pool_obs=obs if pool_size > 0 else None,
                         pool_memory=keep(states.memory) if pool_size > 0 else None)

    def step_env(self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams):
        """One step without auto-reset: (obs, state, reward, terminated, truncated, info)."""
        del key  # the game carries its own key; the step key only drives auto-reset
        action = jnp.asarray(action, jnp.int32)
        invalid = (action < 0) | (action >= NUM_ACTIONS)
        action = jnp.clip(action, 0, NUM_ACTIONS - 1)
        if self.agent_autopilot:
            game, attacked = state.game, jnp.bool_(False)
            bots = partial(scripted_bots, autopilot=AGENT)
        else:
            game, attacked = apply_action(state.game, action, state.targets, state.legal, state.centre, AGENT)
            bots = scripted_bots
        illegal_direction = ~state.legal[action // 5]

        def one_tick(game, _):
            return tick(game, self.arrays, self.rules, bots), None

        previous_tiles = game.tiles[AGENT]
        game, _ = jax.lax.scan(one_tick, game, None, length=self.ticks_per_step)
        share = self._share(game)
        # The change in tiles first (an exact integer), so an unchanged territory rewards exactly 0.
        share_change = (game.tiles[AGENT] - previous_tiles) / jnp.maximum(self.arrays.num_land_tiles, 1)
        steps = state.steps + 1
        targets, legal, centre = direction_targets(game, self.arrays, AGENT)
        obs, memory = self.observer.observe(game, self.arrays, action_mask(legal), state.memory,
                                            time=self._clock(steps, params))

        won = game.winner == AGENT
        dead = game.tiles[AGENT] == 0
        terminated = won | dead | (game.winner != 0)
        out_of_time = steps >= params.max_steps
        if self.time_limit == "lose":  # a timed game: over (and lost, unless won) at the limit
            terminated |= out_of_time
            out_of_time = jnp.bool_(False)
        truncated = ~terminated & (out_of_time | (game.tick >= self.rules.max_ticks))
        outcome = jnp.where(won, params.win_reward, jnp.where(terminated, params.loss_reward, 0.0))
        if self.reward == "share":
            reward = params.share_scale * share_change + outcome
        else:
            rank = self._rank(game)
            reward = params.rank_scale * (1.0 - (rank - 1.0) / max(self.num_players - 1, 1)) + outcome
        reward = reward.astype(jnp.float32)
        done = terminated | truncated
        episode_return = state.episode_return + reward
        state = state.replace(
            game=game, memory=memory, legal=legal, targets=targets, centre=centre, steps=steps,
            episode_return=episode_return,
            returned_episode_return=jnp.where(done, episode_return, state.returned_episode_return),
            returned_episode_length=jnp.where(done, steps, state.returned_episode_length),
            returned_episode_won=jnp.where(done, won, state.returned_episode_won),
            returned_episode_share=jnp.where(done, share, state.returned_episode_share))
        info = {
            "invalid_action": invalid, "illegal_direction": illegal_direction, "attacked": attacked,
            "land_share": share, "rank": self._rank(game), "won": won, "dead": dead,
            "returned_episode": done, "returned_episode_returns": state.returned_episode_return,
            "returned_episode_lengths": state.returned_episode_length,
            "returned_episode_won": state.returned_episode_won,
            "returned_episode_share": state.returned_episode_share,
        }
        return obs, state, reward, terminated, truncated, info

    def _share(self, game: GameState) -> jax.Array:
        return game.tiles[AGENT] / jnp.maximum(self.arrays.num_land_tiles, 1).astype(jnp.float32)

    def _rank(self, game: GameState) -> jax.Array:
        """float32 1..P: 1 + players with more tiles than the agent (a dead agent ranks last)."""
        ahead = (game.tiles[1:] > game.tiles[AGENT]).sum()
        return jnp.where(game.tiles[AGENT] > 0, 1.0 + ahead, float(self.num_players)).astype(jnp.float32)

    def __repr__(self) -> str:
        return (f"TerritoryEnv(map={self.game_map.name!r}, {self.game_map.width}x{self.game_map.height}, "
                f"num_bots={self.num_bots}, players={self.num_players}, "
                f"ticks_per_step={self.ticks_per_step}, "
                f"reward={self.reward!r}, time_limit={self.time_limit!r})")


def _placeholder_params(max_steps: int) -> EnvParams:
    """Params for building the pool itself (reset does not read them)."""
    zero = jnp.float32(0.0)
    return EnvParams(max_steps=jnp.int32(max_steps), share_scale=zero, win_reward=zero, loss_reward=zero,
                     rank_scale=zero, pool_games=None, pool_obs=None, pool_memory=None)


def check_action(action: Any, num_envs: int | None = None) -> np.ndarray:
    """Validate actions given from Python (wrappers): integers in 0..44, one per env. Raises ValueError."""
    array = np.asarray(action)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"actions must be integers in 0..{NUM_ACTIONS - 1}, got dtype {array.dtype}")
    if num_envs is not None and array.shape != (num_envs,):
        raise ValueError(f"expected {num_envs} actions (one per env), got shape {array.shape}")
    bad = (array < 0) | (array >= NUM_ACTIONS)
    if bad.any():
        raise ValueError(f"actions must be in 0..{NUM_ACTIONS - 1} (9 directions x 5 intensities), got "
                         f"{array[bad].ravel()[:5].tolist()}")
    return array
