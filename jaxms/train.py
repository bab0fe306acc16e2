"""Train an agent: `python -m jaxms.train --map continents_128 [--obs multi|single] ...` (see --help).

Every setting of the run is a flag, generated from the fields of `jaxms.config.TrainConfig` (run, env,
observation, network, PPO); `--config FILE` reads them from a JSON or TOML file (flat flag names, or
[run] / [env] / [network] / [ppo] sections), and flags given on the command line win. The run lives in
`<output-dir>/<name>_<timestamp>/` (config.json, TensorBoard events, checkpoints/, best/, final/).

`--continue-from RUN` resumes a run exactly, with the run's own settings, to the run's own total; with
`--total-timesteps N` it runs to N env steps instead (a linear learning-rate schedule is spread over the new
total). `--device`, `--maps-dir`, `--max-minutes` and where it runs (`--devices`, `--coordinator`,
`--num-processes`, `--process-id`) may be given too; any other setting is fixed by the run and refused.

`--devices N|all` trains data-parallel on N devices of this machine (the env batch split over them, the
same global batch and results as on one); `--coordinator HOST:PORT --num-processes K --process-id I
--devices all` in each of K processes (one per machine) trains over all their devices, process 0 logging,
evaluating and writing the run folder (see README, "Several devices and machines").

Ctrl-C or SIGTERM saves a checkpoint and exits (before the first update: exits at once,
leaving no run folder); a second one aborts.

This module is the command line only; the run is assembled and trained by `jaxms.run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from jaxms.config import TrainConfig, build_config, explain, flags, read_config_file
from jaxms.settings import Leaf

SECTIONS = {"run": "run", "env": "environment", "network": "network", "ppo": "PPO"}


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m jaxms.train`: `--config` and one flag per TrainConfig setting."""
    parser = argparse.ArgumentParser(prog="python -m jaxms.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON or TOML file of settings (flag names with - or _, or [run], [env], "
                             "[network], [ppo] sections); flags given here win")
    defaults = TrainConfig()
    groups: dict[str, argparse._ArgumentGroup] = {}
    for flag, leaf in flags().items():
        title = "observation" if leaf.path[:2] == ("env", "obs") else SECTIONS[leaf.path[0]]
        group = groups.get(title) or groups.setdefault(title, parser.add_argument_group(f"{title} settings"))
        default = defaults
        for name in leaf.path:
            default = getattr(default, name)
        shown = ",".join(default) if isinstance(default, tuple) else default
        # Help that says its default in words ("default by device: ...") is not given a second one.
        prose = "default" in leaf.help
        help_text = leaf.help + ("" if default is None or prose else f" (default: {shown})")
        metavar = {bool: "true|false", tuple: "A,B,..."}.get(
            leaf.kind, None if leaf.choices else flag.upper().replace("-", "_"))
        choices = leaf.choices if leaf.kind is not tuple else None
        group.add_argument(f"--{flag}", dest=flag, type=_converter(leaf), default=None, choices=choices,
                           metavar=metavar, help=help_text.replace("%", "%%"))
    return parser


def _converter(leaf: Leaf):
    def convert(text: str) -> Any:
        try:
            return leaf.from_text(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = leaf.kind.__name__  # argparse names the type in its "invalid ... value" message
    return convert


def config_from_args(argv: list[str] | None) -> TrainConfig:
    """TrainConfig from a config file (if any) overridden by flags. Bad values exit with a message naming
    the flag (or the file and its key). With `--continue-from RUN`, only the settings that may change on
    resume (`jaxms.run.RESUME_SETTINGS`) may be given: the run's own config is read by `main`."""
    return _parse(argv)[0]


def _parse(argv: list[str] | None) -> tuple[TrainConfig, dict]:
    """(config, the settings given explicitly by path: flags and config-file keys)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings: dict[tuple[str, ...], Any] = {}
    names: dict[tuple[str, ...], str] = {}
    try:
        if args.config is not None:
            settings, names = read_config_file(args.config)
        for flag, leaf in flags().items():
            value = getattr(args, flag)
            if value is not None:
                settings[leaf.path], names[leaf.path] = value, f"--{flag}"
        config = build_config(settings)
        if config.run.device == "mps" and settings.get(("run", "backend")) == "jax":
            raise ValueError(f"{names[('run', 'backend')]} jax with --device mps: JAX has no working Metal "
                             "backend, mps trains with the PyTorch path; leave the backend out or give "
                             "--backend torch")
        if config.run.continue_from:
            from jaxms.run import RESUME_SETTINGS, fixed_settings_message

            fixed = [names[p] for p in settings if p not in RESUME_SETTINGS]
            if fixed:
                raise ValueError(fixed_settings_message(fixed, config.run.continue_from))
        return config, settings
    except ValueError as error:
        parser.error(explain(error, names))
        raise  # unreachable: parser.error exits


def main(argv: list[str] | None = None) -> int:
    """The command line; returns its exit status: 0 done (or stopped by Ctrl-C / SIGTERM after saving), 1
    training stopped (non-finite loss, a checkpoint not written), 2 bad input, 130 interrupted before the
    first update (nothing kept) or aborted."""
    config, given = _parse(argv)
    try:
        from jaxms.run import RESUME_SETTINGS, TrainingStopped, resume_config, train
    except KeyboardInterrupt:
        return 130
    if config.run.coordinator:  # JAX's distributed runtime starts before anything else uses JAX
        from jaxms.distributed import initialize

        initialize(config.run.coordinator, config.run.num_processes, config.run.process_id)
    try:
        if config.run.continue_from:  # the run's own settings, with what may change on resume
            changes = {path[-1]: value for path, value in given.items()
                       if path in RESUME_SETTINGS and path != ("run", "continue_from")}
            config = resume_config(config.run.continue_from, **changes)
        train(config)
    except (ValueError, FileNotFoundError) as error:  # bad maps (MapError), settings or paths
        print(f"error: {explain(error)}", file=sys.stderr)
        return 2
    except TrainingStopped as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopped before a checkpoint could be saved (a new run leaves no folder)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
