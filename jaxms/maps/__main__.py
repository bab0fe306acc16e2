"""`python -m jaxms.maps`: list, describe, render and convert maps.

    python -m jaxms.maps list [--maps-dir DIR]
    python -m jaxms.maps info SPEC
    python -m jaxms.maps show SPEC --out map.png [--max-size 2048]
    python -m jaxms.maps save SPEC --out DIR          (OpenFront map folder)
    python -m jaxms.maps save SPEC --out terrain.png  (terrain image, OpenFront generator convention)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from jaxms.maps.openfront import read_manifest, save_openfront_folder
from jaxms.maps.png import write_terrain_png
from jaxms.maps.procedural import GENERATORS
from jaxms.maps.render import save_map_png
from jaxms.maps.spec import MAPS_DIR_ENV, SPEC_FORMS, find_maps, load_map, maps_dirs
from jaxms.maps.types import MapError


def _add_maps_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--maps-dir", action="append", default=None, metavar="DIR",
                        help=f"folder of OpenFront map folders (or an OpenFront checkout); repeatable; "
                             f"searched before ${MAPS_DIR_ENV}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jaxms.maps", description="List, describe, render and "
                                     "convert jaxms maps. " + SPEC_FORMS + ".")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="list built-in generators and maps found in maps directories")
    _add_maps_dir(listing)

    info = commands.add_parser("info", help="print a map's size, land, terrain and nations")
    info.add_argument("spec", help="map spec, e.g. continents_1024 or australia@4x")
    _add_maps_dir(info)

    show = commands.add_parser("show", help="render a map to a PNG")
    show.add_argument("spec", help="map spec, e.g. continents_1024 or australia:915,290,1024,1024")
    show.add_argument("--out", required=True, type=Path, help="output PNG path")
    show.add_argument("--max-size", type=int, default=2048,
                      help="shrink so the longer side is at most this many pixels (0: full size)")
    show.add_argument("--no-nations", action="store_true", help="do not mark nation spawn points")
    _add_maps_dir(show)

    save = commands.add_parser("save", help="write a map as an OpenFront folder (or a terrain .png)")
    save.add_argument("spec", help="map spec")
    save.add_argument("--out", required=True, type=Path,
                      help="output folder (OpenFront format) or a path ending in .png (terrain image)")
    save.add_argument("--name", default=None, help="name written to the manifest")
    _add_maps_dir(save)
    return parser


def _list(maps_dir: list[str] | None) -> None:
    print("built-in generators (spec KIND_SIZE[_sSEED], SIZE = N or WxH, 16..16384):")
    for generator in GENERATORS.values():
        print(f"  {generator.name + '_N':<14} {generator.description}")
    dirs = maps_dirs(maps_dir)
    if not dirs:
        print(f"\nno maps directory given (use --maps-dir DIR or set {MAPS_DIR_ENV})")
        return
    print("\nmaps directories: " + ", ".join(str(d) for d in dirs))
    found = find_maps(dirs)
    if not found:
        print("  no OpenFront map folders (folders with manifest.json) found there")
    for name, folder in sorted(found.items()):
        try:
            manifest = read_manifest(folder)
            full = manifest.get("map", {})
            detail = (f"{full.get('width')}x{full.get('height')}, {full.get('num_land_tiles', 0):,} land, "
                      f"{len(manifest.get('nations') or [])} nations; scales @1x @4x @16x")
        except MapError as error:
            detail = f"unreadable: {error}"
        print(f"  {name:<20} {detail}  ({folder})")


def _check_out(out: Path, folder_output: bool) -> None:
    """MapError naming `--out` unless it can be written (checked before loading the map)."""
    parent = out.parent if str(out.parent) else Path(".")
    if not folder_output and out.is_dir():
        raise MapError(f"--out {out}: is a folder; give a file name ending in .png")
    if folder_output and out.exists() and not out.is_dir():
        raise MapError(f"--out {out}: is a file; give a folder to write the OpenFront map into, or a path "
                       "ending in .png")
    if not parent.exists():
        raise MapError(f"--out {out}: the folder {parent} does not exist; create it first or write elsewhere")
    if not parent.is_dir():
        raise MapError(f"--out {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise MapError(f"--out {out}: the folder {parent} is not writable; write elsewhere")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            _list(args.maps_dir)
            return 0
        if args.command in ("show", "save"):
            _check_out(args.out, folder_output=args.command == "save" and args.out.suffix.lower() != ".png")
        game_map = load_map(args.spec, maps_dir=args.maps_dir)
        if args.command == "info":
            print(game_map.summary())
        elif args.command == "show":
            if args.max_size < 0:
                raise MapError(f"--max-size must be 0 (full size) or a positive pixel count, got "
                               f"{args.max_size}")
            path = save_map_png(game_map, args.out, max_size=args.max_size or None,
                                show_nations=not args.no_nations)
            print(game_map.summary())
            print(f"wrote {path}")
        elif args.command == "save":
            if args.out.suffix.lower() == ".png":
                path = write_terrain_png(game_map, args.out)
            else:
                path = save_openfront_folder(game_map, args.out, name=args.name)
            print(f"wrote {path}")
    except MapError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the disk filled, the folder went away while writing
        print(f"error: could not write {getattr(args, 'out', '')}: {error.strerror or error} "
              f"({error.filename or 'a file'})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
