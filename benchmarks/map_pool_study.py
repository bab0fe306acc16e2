"""Training on a pool of maps vs on one map, evaluated on held-out maps (issue 13's map pools).

Trains the same agent twice with `make train`'s settings (continents 128x128, 5 tribes, a timed game of 80
steps, quarter-width multi-scale network, 16 envs x 32 steps): once on one map (`continents_128`), once
on a pool (`continents_128_s0-99`: every episode draws one of 100 maps). Both get the same env-step budget
and a reset pool of 256 start positions (so the pool run starts from positions on ~all of its maps). Then
both agents and the baselines (uniform random over legal actions, the tribe AI in the agent's seat) play
`--games` games on maps neither saw (`continents_128_s1000-1049`) and on the single training map.

    python -m benchmarks.map_pool_study [--total-timesteps 40960] [--minutes 12] [--games 50]

Writes benchmarks/results/map_pool_study.{json,md}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common import RESULTS_DIR, write_results
from jaxms.config import TrainConfig
from jaxms.play import evaluate_policies, format_table, network_policy, random_policy
from jaxms.run import build_run, load_game_maps, load_run, train

SETTINGS = dict(num_bots=5, max_steps=80, time_limit="lose", network_width=0.25, n_envs=16, n_steps=32,
                batch_size=128, update_epochs=4, learning_rate=1e-3, lr_schedule="linear",
                reset_pool_size=256, eval_every=0, image_every=0, checkpoint_every=20)


def evaluate_on(config: TrainConfig, policies: dict, games: int, seed: int) -> dict[str, dict]:
    env = build_run(config, maps=load_game_maps(config)).env
    return evaluate_policies(env, env.default_params, policies, games, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", default="continents_128", help="the one training map")
    parser.add_argument("--pool", default="continents_128_s0-99", help="the training pool")
    parser.add_argument("--held-out", default="continents_128_s1000-1049", help="evaluation maps")
    parser.add_argument("--total-timesteps", type=int, default=40_960)
    parser.add_argument("--minutes", type=float, default=12.0, help="training time cap per run")
    parser.add_argument("--games", type=int, default=50)
    parser.add_argument("--output-dir", default="runs/map_pool_study")
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args()

    trained = {}
    for name, spec in (("one map", args.single), ("pool", args.pool)):
        config = TrainConfig().replace(map=spec, total_timesteps=args.total_timesteps,
                                       max_minutes=args.minutes, output_dir=args.output_dir,
                                       name=name.replace(" ", "_"), **SETTINGS)
        run_dir = train(config, quiet=True)
        _, _, network, params = load_run(run_dir / "final")
        trained[name] = (config, network, params)
        print(f"trained on {spec}: {run_dir}", flush=True)

    rows = []
    for where, spec in (("held-out", args.held_out), ("training map", args.single)):
        base = trained["one map"][0].replace(map=spec)
        policies = {f"agent ({name})": network_policy(network, params)
                    for name, (_, network, params) in trained.items()}
        policies.update({"random": random_policy, "tribe AI": "tribe"})
        results = evaluate_on(base, policies, args.games, seed=4242)
        print(f"\n{where}: {spec}\n{format_table(results)}", flush=True)
        for policy, r in results.items():
            rows.append({"evaluated on": f"{where} ({spec})", "policy": policy,
                         "win_rate": round(r["win_rate"], 3),
                         "win_rate_ci": f"[{r['win_rate_ci'][0]:.2f}, {r['win_rate_ci'][1]:.2f}]",
                         "land_share": round(r["land_share"], 3), "rank": round(r["rank"], 2),
                         "games": r["games"]})
    columns = ["evaluated on", "policy", "win_rate", "win_rate_ci", "land_share", "rank", "games"]
    write_results("map_pool_study", rows, columns,
                  f"Trained on one map ({args.single}) vs a pool ({args.pool}), {args.total_timesteps} env "
                  f"steps or {args.minutes:g} minutes each, evaluated on held-out maps ({args.held_out}) and "
                  f"on the training map; {args.games} games per policy",
                  Path(args.out_dir or RESULTS_DIR))


if __name__ == "__main__":
    main()
