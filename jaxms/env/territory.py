"""The RL environment around the game, with gymnax's API.

    env = make_env(load_map("continents_128"), num_bots=10)          # or TerritoryEnv(game_map, EnvConfig())
    params = env.default_params
    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)   # auto-resets when done

The agent is player 1 (a human-kind player) against `num_bots` tribes and, if asked, the map's nations.
One env step is an action followed by `ticks_per_step` game ticks with the scripted bots.

Static configuration (shapes, the players, the reward's form) is the env's `EnvConfig`, frozen and hashable.
Everything else is `EnvParams`, a pytree passed to every call (gymnax's convention): the reward numbers, the
maps (`EnvMaps`: their arrays are arguments of the compiled step, never constants, so one compiled step
serves every map of a shape), and the pool of start positions used by auto-reset.

A pool of maps: given several maps of one shape (`make_env(["continents_256_s0", ...])` or a family spec
such as "continents_256_s0-99"), every new episode draws its map at random from the pool; `EnvState.map_index`
says which map an episode plays.

The step is four seams, each usable alone (benchmarks time them, tests drive them):
    act       decode the action, order the attack           (state, action) -> game, info
    simulate  `ticks_per_step` game ticks with the bots     (game, arrays) -> game
    observe   directions, action mask and observation       (game, arrays, memory, steps) -> obs, ...
    outcome   reward, termination, truncation               (before, after, arrays, steps) -> reward, ...

Auto-reset: a fresh game is a full pass over the map per player (spawning), which under `vmap` would
run on every step of every env (a `cond` on a batched flag computes both branches). Instead, `EnvParams`
holds a pool of `reset_pool_size` start positions made once (with their first observations); an env that
ends copies one, chosen at random, and draws a new game key, so bots decide differently each episode. The
pool is made on first use of `default_params` (or by `make_params`), not when the env is built.
`reset_pool_size=0` resets with a full fresh game instead (slower, every start distinct).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxms.env import spaces
from jaxms.env.actions import action_mask, apply_action, boat_landings, direction_targets

# Re-exported for older imports: the choice lists live in jaxms.env.config.
from jaxms.env.config import REWARDS, TIME_LIMITS, EnvConfig  # noqa: F401
from jaxms.env.contract import AGENT, NUM_ACTIONS, NUM_DIRECTIONS, ObsConfig
from jaxms.env.observe import make_observer
from jaxms.game import stats
from jaxms.game.bots import scripted_bots
from jaxms.game.control import loop_bound
from jaxms.game.loop import leader, run_ticks
from jaxms.game.rules import Difficulty, PlayerKind, Rules
from jaxms.game.spawn import MAX_PLAYERS, make_game, spawn_distance, structure_capacity
from jaxms.game.state import GameState, MapArrays, map_arrays
from jaxms.maps import GameMap

DIFFICULTIES = {d.name.lower(): d for d in Difficulty}


@struct.dataclass
class EnvMaps:
    """The maps an env draws its episodes from, stacked on a leading axis [M] (M = 1 for a single map)."""

    arrays: MapArrays  # land bool[M, H, W], terrain uint8[M, H, W], spawnable bool[M, H, W], num_land_tiles
    #                    int32[M]
    centres: jax.Array  # int32[M, P + 1, 2]: fixed spawn centres (y, x) of the nations; -1: a random spawn
    spawn_distance: jax.Array  # int32[M]: minimum Manhattan distance between random spawn centres

    @property
    def num_maps(self) -> int:
        return int(self.spawn_distance.shape[0])

    def select(self, index: jax.Array | int) -> tuple[MapArrays, jax.Array, jax.Array]:
        """(arrays, centres, spawn distance) of map `index`: a static slice when the pool holds one map."""
        index = 0 if self.num_maps == 1 else index
        return (jax.tree.map(lambda leaf: leaf[index], self.arrays), self.centres[index],
                self.spawn_distance[index])


@struct.dataclass
class EnvParams:
    """Numbers and maps of an env that do not change shapes (a pytree argument of reset/step)."""

    max_steps: jax.Array  # int32[]: an episode ends after this many steps (see EnvConfig.time_limit)
    share_scale: jax.Array  # float32[]: reward per unit change of the agent's share of the land
    win_reward: jax.Array  # float32[]: added on the step the agent wins
    loss_reward: jax.Array  # float32[]: added on the step the agent dies or another player wins
    rank_scale: jax.Array  # float32[]: per-step scale of the rank reward (reward="rank")
    agent_autopilot: jax.Array  # bool[]: the agent's seat plays by the tribe rules and its actions are
    #                             ignored (the "tribe" baseline); an argument, so one program serves both
    maps: EnvMaps  # the map pool, leading axis [M]
    pool_states: EnvState | None  # fresh episodes with a leading axis [K]: the start positions of auto-reset
    pool_obs: Any  # their first observations, leading axis [K]


@struct.dataclass
class EnvState:
    """One environment: the game plus episode bookkeeping."""

    game: GameState
    map_index: jax.Array  # int32[]: which map of the pool this episode plays
    memory: Any  # the observer's memory (frame stack)
    legal: jax.Array  # bool[9]: legal directions (the mask the agent saw)
    targets: jax.Array  # int32[8]: who each direction attacks
    centre: jax.Array  # float32[2]: (y, x) the directions are measured from
    landings: jax.Array  # int32[8]: boat landing tile (flat index) of each direction that goes by boat; -1
    steps: jax.Array  # int32[]: steps in this episode
    episode_return: jax.Array  # float32[]
    start_share: jax.Array  # float32[]: land share at the episode's start
    # Statistics of the last finished episode (for logging, like PureJaxRL's LogWrapper).
    returned_episode_return: jax.Array  # float32[]
    returned_episode_length: jax.Array  # int32[]
    returned_episode_won: jax.Array  # bool[]
    returned_episode_share: jax.Array  # float32[]: final land share


class TerritoryEnv:
    """The agent against tribes (and optionally nations) on a map or a pool of maps of one shape.

    Args:
        game_map: a GameMap, or a sequence of GameMaps of one shape (a pool; see the module docstring).
        config: the env's settings (`EnvConfig`; its `obs` is the observation config, sized for the map).
        rules: the game's constants (the engine's defaults).
        seed: seed of the start positions in `default_params`.
        agent_autopilot: the agent's seat played by the tribe rules (actions are ignored): a baseline. It
            is `default_params.agent_autopilot`; any env plays it with `params.replace(agent_autopilot=True)`.
        observer: an observer object to use instead of the one `config.obs` describes (tests).
    Raises ValueError for maps of different shapes, too many players, or (when the pool is made) a map
    without room for every spawn.
    """

    def __init__(self, game_map: GameMap | Sequence[GameMap], config: EnvConfig | None = None, *,
                 rules: Rules = Rules(), seed: int = 0, agent_autopilot: bool = False, observer=None):
        config = EnvConfig() if config is None else config
        if not isinstance(config, EnvConfig):
            raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
        game_maps = [game_map] if isinstance(game_map, GameMap) else list(game_map) \
            if isinstance(game_map, Sequence) and not isinstance(game_map, str) else None
        if not game_maps or not all(isinstance(m, GameMap) for m in game_maps):
            raise TypeError("game_map must be a GameMap or a non-empty sequence of GameMaps (use "
                            f"jaxms.load_map / jaxms.maps.load_maps), got {type(game_map).__name__}")
        shapes = sorted({(m.height, m.width) for m in game_maps})
        if len(shapes) > 1:
            listed = ", ".join(f"{m.name} {m.width}x{m.height}" for m in game_maps[:6])
            raise ValueError(f"the maps of a pool must share one shape (one compiled step serves them all), "
                             f"got {len(shapes)} shapes: {listed}{', ...' if len(game_maps) > 6 else ''}")
        nation_counts = {len(m.nations) for m in game_maps} if config.nations else {0}
        if len(nation_counts) > 1:
            raise ValueError("nations=True needs every map of the pool to have the same number of nations, "
                             f"got {sorted(nation_counts)}")
        num_nations = nation_counts.pop()
        num_players = 1 + config.num_bots + num_nations
        if num_players > MAX_PLAYERS:
            raise ValueError(f"{num_players} players (the agent, {config.num_bots} bots and {num_nations} "
                             f"nations) exceed the maximum of {MAX_PLAYERS}")
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.game_maps = game_maps
        self.game_map = game_maps[0]
        self.config = config
        self.rules = rules
        self.seed = int(seed)
        self.agent_autopilot = bool(agent_autopilot)
        if observer is None:
            observer = make_observer(config.obs, shapes[0], rules)
            self.config = config.replace(obs=observer.config)  # sized for the map
        self.observer = observer
        kinds = [PlayerKind.HUMAN] + [PlayerKind.TRIBE] * config.num_bots + [PlayerKind.NATION] * num_nations
        self.kind = np.array([PlayerKind.NONE, *kinds], dtype=np.int8)
        self.num_players = len(kinds)
        self._difficulty = DIFFICULTIES[config.nation_difficulty]
        self._num_structures = structure_capacity(self.kind, rules)
        self.maps = self._stack_maps(game_maps)
        self._default_params: EnvParams | None = None

    # Settings read often, named as before EnvConfig existed.
    num_bots = property(lambda self: self.config.num_bots)
    ticks_per_step = property(lambda self: self.config.ticks_per_step)
    reward = property(lambda self: self.config.reward)
    time_limit = property(lambda self: self.config.time_limit)

    @property
    def arrays(self) -> MapArrays:
        """The first map's arrays, for host-side code (scenarios, rendering). Jitted code reads the map from
        `params.maps` (`map_arrays(params, index)`), never from the env object."""
        return self.maps.select(0)[0]

    def _stack_maps(self, game_maps: list[GameMap]) -> EnvMaps:
        """EnvMaps of `game_maps` (checked: same shape as the env's maps, same number of nations)."""
        per_map, centres, distances = [], [], []
        for game_map in game_maps:
            if (game_map.height, game_map.width) != (self.game_map.height, self.game_map.width):
                raise ValueError(f"map {game_map.name!r} is {game_map.width}x{game_map.height}; this env "
                                 f"plays {self.game_map.width}x{self.game_map.height} maps")
            nation_spawns = [(n.x, n.y) for n in game_map.nations] if self.config.nations else []
            if 1 + self.config.num_bots + len(nation_spawns) != self.num_players:
                raise ValueError(f"map {game_map.name!r} has {len(nation_spawns)} nations; this env's "
                                 f"players need {self.num_players - 1 - self.config.num_bots}")
            fixed = np.full((self.num_players + 1, 2), -1, dtype=np.int32)
            for i, (x, y) in enumerate(nation_spawns, start=2 + self.config.num_bots):
                if game_map.land[y, x]:  # a manifest point on water (after a crop or resize): a random spawn
                    fixed[i] = (y, x)
            per_map.append(map_arrays(game_map, self.rules))
            centres.append(fixed)
            distances.append(spawn_distance(game_map.num_land_tiles, self.num_players, self.rules))
        # One program for the pool: boats are compiled in if any of its maps has water.
        water = any(arrays.water for arrays in per_map)
        per_map = [arrays.replace(water=water) for arrays in per_map]
        return EnvMaps(arrays=jax.tree.map(lambda *leaves: jnp.stack(leaves), *per_map),
                       centres=jnp.asarray(np.stack(centres)),
                       spawn_distance=jnp.asarray(distances, jnp.int32))

    # ---------------------------------------------------------------------------------------------------
    # gymnax API
    # ---------------------------------------------------------------------------------------------------

    @property
    def default_params(self) -> EnvParams:
        """Params of this env's maps and settings, with a reset pool drawn from `seed` (made on first use)."""
        if self._default_params is None:
            self._default_params = self.make_params(jax.random.key(self.seed))
        return self._default_params

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Dict:
        return self.observer.space((self.game_map.height, self.game_map.width))

    def reset(self, key: jax.Array, params: EnvParams | None = None) -> tuple[dict, EnvState]:
        """A fresh game (spawn phase included) on a map of the pool, and its first observation."""
        params = self.default_params if params is None else params
        game, map_index = self._new_game(key, params.maps)
        return self._start(game, map_index, params)

    def step(self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams | None = None
             ) -> tuple[dict, EnvState, jax.Array, jax.Array, dict]:
        """Act, run `ticks_per_step` ticks, and auto-reset if the episode ended.

        `info` holds `terminated` and `truncated` separately, `final_observation` (the observation of the
        step that ended the episode, for bootstrapping truncated episodes), `invalid_action` (the action
        was outside 0..44 and was clipped) and the statistics of the last finished episode.
        """
        params = self.default_params if params is None else params
        step_key, reset_key = jax.random.split(key)
        obs, stepped, reward, terminated, truncated, info = self.step_env(step_key, state, action, params)
        done = terminated | truncated
        pool_size = self._pool_size(params)

        def fresh(reset_key):
            """(obs, state) of a new episode, the finished one's statistics kept."""
            if pool_size > 0:
                # A stored fresh episode (its directions and first observation made with the pool, not
                # here) with a new game key.
                index = jax.random.randint(reset_key, (), 0, pool_size)
                pick = partial(jax.tree.map, lambda leaf: leaf[index])
                reset_state, reset_obs = pick(params.pool_states), pick(params.pool_obs)
                reset_state = reset_state.replace(
                    game=reset_state.game.replace(key=jax.random.fold_in(reset_key, 1)))
            else:
                game, map_index = self._new_game(reset_key, params.maps)
                reset_obs, reset_state = self._start(game, map_index, params)
            return reset_obs, reset_state.replace(
                returned_episode_return=stepped.returned_episode_return,
                returned_episode_length=stepped.returned_episode_length,
                returned_episode_won=stepped.returned_episode_won,
                returned_episode_share=stepped.returned_episode_share)

        def reset(i, carry):  # each env takes the new episode where it is done (under vmap: `done` per env)
            # The new episode reads nothing the loop changes, so XLA would compute it before the loop, on
            # every step; its key passed through a barrier with the loop's counter keeps it in the loop.
            _, key = jax.lax.optimization_barrier((i, reset_key))
            return jax.tree.map(lambda r, s: jnp.where(done, r, s), fresh(key), carry)

        # A loop run once on a step where an episode ended (in a batch: where any did) and never otherwise:
        # the reset (a new game and its observation, or a copy from the pool) and its pass over the state's
        # grids are paid when they happen, not on every step (a select over every leaf, or a conditional,
        # which copies the grids).
        new_obs, new_state = jax.lax.fori_loop(0, loop_bound(done.astype(jnp.int32)), reset, (obs, stepped))
        info = {**info, "final_observation": obs, "terminated": terminated, "truncated": truncated}
        return new_obs, new_state, reward, done, info

    def step_env(self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams):
        """One step without auto-reset: (obs, state, reward, terminated, truncated, info)."""
        del key  # the game carries its own key; the step key only drives auto-reset
        arrays = self.map_arrays(params, state.map_index)
        acted, act_info = self.act(state, action, params.agent_autopilot)
        game = self.simulate(acted, arrays, params.agent_autopilot)
        steps = state.steps + 1
        obs, memory, (targets, legal, centre, landings) = self.observe(game, arrays, state.memory, steps,
                                                                       params)
        reward, terminated, truncated, outcome_info = self.outcome(acted, game, arrays, steps, params)
        done = terminated | truncated
        episode_return = state.episode_return + reward
        state = state.replace(
            game=game, memory=memory, legal=legal, targets=targets, centre=centre, landings=landings,
            steps=steps,
            episode_return=episode_return,
            returned_episode_return=jnp.where(done, episode_return, state.returned_episode_return),
            returned_episode_length=jnp.where(done, steps, state.returned_episode_length),
            returned_episode_won=jnp.where(done, outcome_info["won"], state.returned_episode_won),
            returned_episode_share=jnp.where(done, outcome_info["land_share"], state.returned_episode_share))
        info = {
            **act_info, **outcome_info,
            "returned_episode": done, "returned_episode_returns": state.returned_episode_return,
            "returned_episode_lengths": state.returned_episode_length,
            "returned_episode_won": state.returned_episode_won,
            "returned_episode_share": state.returned_episode_share,
        }
        return obs, state, reward, terminated, truncated, info

    # ---------------------------------------------------------------------------------------------------
    # The seams of a step
    # ---------------------------------------------------------------------------------------------------

    @staticmethod
    def map_arrays(params: EnvParams, map_index: jax.Array | int = 0) -> MapArrays:
        """The arrays of map `map_index` of the pool (a static slice when the pool holds one map)."""
        return params.maps.select(map_index)[0]

    def act(self, state: EnvState, action: jax.Array, autopilot: jax.Array | bool | None = None
            ) -> tuple[GameState, dict[str, jax.Array]]:
        """The agent's action ordered into the game (nothing when the seat is on autopilot: `autopilot`,
        bool[] or a bool, defaults to the env's `agent_autopilot`).

        Returns the game and {"invalid_action": outside 0..44 (clipped), "illegal_direction": a masked
        direction (it orders nothing), "attacked": an attack was ordered}."""
        autopilot = self.agent_autopilot if autopilot is None else autopilot
        action = jnp.asarray(action, jnp.int32)
        invalid = (action < 0) | (action >= NUM_ACTIONS)
        action = jnp.clip(action, 0, NUM_ACTIONS - 1)
        # On autopilot no direction is open to the action, so it orders nothing (the same game values).
        legal = state.legal & ~jnp.asarray(autopilot)
        game, attacked = apply_action(state.game, action, state.targets, legal, state.centre, AGENT,
                                      landing=state.landings)
        return game, {"invalid_action": invalid, "illegal_direction": ~state.legal[action // 5],
                      "attacked": attacked}

    def simulate(self, game: GameState, arrays: MapArrays, autopilot: jax.Array | bool | None = None
                 ) -> GameState:
        """`ticks_per_step` game ticks with the scripted bots (and the agent's seat if on `autopilot`, bool[]
        or a bool, default the env's `agent_autopilot`)."""
        autopilot = self.agent_autopilot if autopilot is None else autopilot
        bots = partial(scripted_bots, autopilot=jnp.where(autopilot, AGENT, 0))
        return run_ticks(game, arrays, self.config.ticks_per_step, self.rules, bots)

    def observe(self, game: GameState, arrays: MapArrays, memory: Any, steps: jax.Array, params: EnvParams
                ) -> tuple[dict, Any, tuple[jax.Array, jax.Array, jax.Array]]:
        """The observation after a step: (obs, the observer's memory, (targets int32[8], legal bool[9],
        centre float32[2], boat landings int32[8]) of the agent's directions)."""
        targets, legal, centre, landings = self._directions(game, arrays)
        obs, memory = self.observer.observe(game, arrays, action_mask(legal), memory,
                                            time=self._clock(steps, params))
        return obs, memory, (targets, legal, centre, landings)

    def _directions(self, game: GameState, arrays: MapArrays):
        """(targets, legal, centre, landings) of the agent's directions, boats included unless the config
        keeps the agent on land (`agent_boats`) or the map has no water: then no landing is searched."""
        targets, legal, centre = direction_targets(game, arrays, AGENT)
        if not (self.config.agent_boats and arrays.water):
            return targets, legal, centre, jnp.full((NUM_DIRECTIONS,), -1, jnp.int32)
        landings, targets, legal = boat_landings(game, arrays, targets, legal, centre, AGENT)
        return targets, legal, centre, landings

    def outcome(self, before: GameState, after: GameState, arrays: MapArrays, steps: jax.Array,
                params: EnvParams) -> tuple[jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """(reward float32[], terminated bool[], truncated bool[], {"land_share", "rank", "won", "dead"}) of a
        step from game `before` (after the action) to `after` (after the ticks)."""
        out_of_time = steps >= params.max_steps
        if self.config.time_limit == "leader":  # the game's timer: at the limit the leader wins
            after = after.replace(winner=jnp.where(out_of_time & (after.winner == 0), leader(after),
                                                   after.winner))
        share = stats.land_share(after, arrays, AGENT)
        rank = stats.rank(after, AGENT)
        won = stats.has_won(after, AGENT)
        dead = after.tiles[AGENT] == 0
        terminated = won | dead | stats.is_over(after)
        if self.config.time_limit in ("lose", "leader"):  # a timed game: over at the limit
            terminated |= out_of_time
            out_of_time = jnp.bool_(False)
        truncated = ~terminated & (out_of_time | (after.tick >= self.rules.max_ticks))
        result = jnp.where(won, params.win_reward, jnp.where(terminated, params.loss_reward, 0.0))
        if self.config.reward == "share":
            # The change in tiles first (an exact integer), so an unchanged territory rewards exactly 0.
            change = (after.tiles[AGENT] - before.tiles[AGENT]) / jnp.maximum(arrays.num_land_tiles, 1)
            reward = params.share_scale * change + result
        else:
            reward = params.rank_scale * (1.0 - (rank - 1.0) / max(self.num_players - 1, 1)) + result
        return (reward.astype(jnp.float32), terminated, truncated,
                {"land_share": share, "rank": rank, "won": won, "dead": dead})

    # ---------------------------------------------------------------------------------------------------
    # Internals
    # ---------------------------------------------------------------------------------------------------

    def _new_game(self, key: jax.Array, maps: EnvMaps) -> tuple[GameState, jax.Array]:
        """A fresh game on a map drawn from the pool (the only map when there is one): (game, map index)."""
        # One map: no draw, so its games use the key exactly as a single-map env always has.
        index = (jnp.int32(0) if maps.num_maps == 1 else
                 jax.random.randint(jax.random.fold_in(key, 0x6D6170), (), 0, maps.num_maps))
        arrays, centres, distance = maps.select(index)
        game = make_game(key, arrays, jnp.asarray(self.kind), centres, jnp.int8(self._difficulty),
                         distance=distance, num_structures=self._num_structures, rules=self.rules)
        return game, index.astype(jnp.int32)

    def _clock(self, steps: jax.Array | int, params: EnvParams) -> jax.Array | None:
        """The observation's "time" feature in a timed game (steps / max_steps); None: the game's own."""
        if self.config.time_limit == "truncate":
            return None
        return jnp.minimum(jnp.asarray(steps, jnp.float32) / jnp.maximum(params.max_steps, 1), 1.0)

    def _start(self, game: GameState, map_index: jax.Array, params: EnvParams) -> tuple[dict, EnvState]:
        """The first observation and state of an episode on `game` (a fresh game on map `map_index`)."""
        arrays = self.map_arrays(params, map_index)
        targets, legal, centre, landings = self._directions(game, arrays)
        obs, memory = self.observer.init(game, arrays, action_mask(legal), time=self._clock(0, params))
        zero = jnp.float32(0.0)
        state = EnvState(game=game, map_index=jnp.asarray(map_index, jnp.int32), memory=memory, legal=legal,
                         targets=targets, centre=centre, landings=landings, steps=jnp.int32(0),
                         episode_return=zero,
                         start_share=stats.land_share(game, arrays, AGENT),
                         returned_episode_return=zero, returned_episode_length=jnp.int32(0),
                         returned_episode_won=jnp.bool_(False), returned_episode_share=zero)
        return obs, state

    @staticmethod
    def _pool_size(params: EnvParams) -> int:
        return int(params.pool_states.steps.shape[0]) if params.pool_states is not None else 0

    def make_params(self, key: jax.Array, game_maps: Sequence[GameMap] | None = None,
                    pool_size: int | None = None, **numbers: float) -> EnvParams:
        """EnvParams with a fresh pool of `pool_size` (default `config.reset_pool_size`) start positions drawn
        from `key`, on `game_maps` (default: the env's maps; others must have the same shape and nations).
        `numbers` override the config's reward numbers and max_steps (share_scale, win_reward, loss_reward,
        rank_scale, max_steps) without recompiling.

        Raises ValueError when a map cannot hold every player's spawn (too many bots for its land).
        """
        pool_size = self.config.reset_pool_size if pool_size is None else pool_size
        accepted = ("max_steps", "share_scale", "win_reward", "loss_reward", "rank_scale")
        unknown = sorted(set(numbers) - set(accepted))
        if unknown:
            raise ValueError(f"make_params: unknown settings {unknown}; accepted are {', '.join(accepted)}")
        settings = self.config.replace(**numbers) if numbers else self.config  # validated by EnvConfig
        maps = self.maps if game_maps is None else self._stack_maps(list(game_maps))
        base = EnvParams(max_steps=jnp.int32(settings.max_steps),
                         share_scale=jnp.float32(settings.share_scale),
                         win_reward=jnp.float32(settings.win_reward),
                         loss_reward=jnp.float32(settings.loss_reward),
                         rank_scale=jnp.float32(settings.rank_scale),
                         agent_autopilot=jnp.bool_(self.agent_autopilot), maps=maps, pool_states=None,
                         pool_obs=None)
        count = max(pool_size, 1)
        obs, states = jax.jit(jax.vmap(self.reset, in_axes=(0, None)))(jax.random.split(key, count), base)
        spawned = np.asarray(states.game.spawn[:, 1:, 0] >= 0)
        if not spawned.all():
            bad = int(np.argmax(~spawned.all(axis=1)))
            game_map = (self.game_maps if game_maps is None else list(game_maps))[int(states.map_index[bad])]
            missing = int((~spawned[bad]).sum())
            distance = int(maps.spawn_distance[int(states.map_index[bad])])
            raise ValueError(
                f"map {game_map.name!r} ({game_map.num_land_tiles} land tiles) has no room for "
                f"{self.num_players} spawns ({missing} could not be placed at Manhattan distance "
                f">= {distance} on a full 52-tile disk of land): use fewer bots or a larger map")
        if pool_size == 0:
            return base
        return base.replace(pool_states=states, pool_obs=obs)

    def __repr__(self) -> str:
        maps = (f"map={self.game_map.name!r}" if len(self.game_maps) == 1
                else f"maps={len(self.game_maps)} ({self.game_maps[0].name!r}, ...)")
        return (f"TerritoryEnv({maps}, {self.game_map.width}x{self.game_map.height}, "
                f"num_bots={self.num_bots}, players={self.num_players}, "
                f"ticks_per_step={self.ticks_per_step}, "
                f"reward={self.reward!r}, time_limit={self.time_limit!r})")


def make_env(game_map: GameMap | Sequence[GameMap] | str, config: EnvConfig | None = None, *,
             rules: Rules = Rules(), seed: int = 0, agent_autopilot: bool = False, observer=None,
             **settings: Any) -> TerritoryEnv:
    """A `TerritoryEnv` on `game_map`: a GameMap, a sequence of GameMaps of one shape (a pool), or a map
    spec for `jaxms.maps.load_maps` (one map, or a pool such as "continents_256_s0-99").

    `settings` are `EnvConfig` fields (num_bots=, max_steps=, reward=, ...) applied over `config`, plus two
    observation shorthands: `obs=` ("multi", the default, or "single", or an ObsConfig) and
    `local_view_size=` (tiles around the agent in the local view).
    """
    import dataclasses

    if isinstance(game_map, str):
        from jaxms.maps import load_maps

        game_map = load_maps(game_map)
    config = EnvConfig() if config is None else config
    if observer is not None and ("obs" in settings or "local_view_size" in settings):
        raise ValueError("give either observer= or obs= / local_view_size=, not both")
    obs_config = config.obs
    if "obs" in settings:
        obs = settings.pop("obs")
        if isinstance(obs, str):
            obs = ObsConfig(mode=obs)
        if not isinstance(obs, ObsConfig):
            raise ValueError(f"obs must be 'multi', 'single' or an ObsConfig, got {obs!r}")
        obs_config = obs
    if settings.get("local_view_size") is not None:
        obs_config = dataclasses.replace(obs_config, local_view_size=settings.pop("local_view_size"))
    settings.pop("local_view_size", None)
    fields = {f.name for f in dataclasses.fields(EnvConfig)} - {"obs"}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise TypeError(f"make_env: unknown settings {unknown}; accepted are EnvConfig's "
                        f"{', '.join(sorted(fields))}, obs and local_view_size")
    config = config.replace(obs=obs_config, **settings)
    return TerritoryEnv(game_map, config, rules=rules, seed=seed, agent_autopilot=agent_autopilot,
                        observer=observer)


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
