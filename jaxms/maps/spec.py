"""`load_map(spec)`: one function from a map spec string to a `GameMap` (what `--map` accepts).

Spec grammar (modifiers apply left to right: scale, then crop, then downsample):

    SPEC   = SOURCE ["@" SCALE] [":" X "," Y "," W "," H] ["~" SIZE]
    SOURCE = KIND "_" SIZE ["_s" SEED]     built-in generator: plains, continents, islands
           | NAME                          an OpenFront map folder found in a maps directory
           | PATH                          an OpenFront map folder, or a terrain .png
    SCALE  = 1x | 4x | 16x                 OpenFront's pre-downscaled files (map.bin, map4x.bin, map16x.bin)
    SIZE   = N | WxH

Examples: `continents_1024`, `islands_512x256_s3`, `australia@4x`, `australia:915,290,1024,1024`
(the earlier system's `australia_1024x1024`), `australia@16x~256x192`, `~/OpenFrontIO/resources/maps/world`.

Maps directories are searched in order: the `maps_dir` argument (or `--maps-dir`), then the entries of
`JAXMS_MAPS_DIR` (separated by the OS path separator). A directory may be a folder of map folders (like
OpenFront's `resources/maps`) or an OpenFront checkout (its `resources/maps` is searched).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from jaxms.maps.openfront import SCALES, is_openfront_folder, read_openfront_folder
from jaxms.maps.png import read_terrain_png
from jaxms.maps.procedural import GENERATORS, generate_map
from jaxms.maps.transform import crop_map, downsample_map
from jaxms.maps.types import GameMap, MapError

MAPS_DIR_ENV = "JAXMS_MAPS_DIR"

SPEC_FORMS = (
    "accepted map specs: a built-in KIND_SIZE[_sSEED] (KIND: plains, continents, islands; SIZE: N or WxH, "
    "e.g. continents_1024, islands_512x256_s3); an OpenFront map name found in --maps-dir / "
    f"{MAPS_DIR_ENV} (e.g. australia); a path to an OpenFront map folder or a terrain .png; each optionally "
    "followed by @1x|@4x|@16x (OpenFront files only), :X,Y,W,H (crop) and ~N or ~WxH (downsample)"
)

_BUILTIN = re.compile(r"^(?P<kind>[a-z]+)_(?P<width>\d+)(?:x(?P<height>\d+))?(?:_s(?P<seed>\d+))?$")
_SIZE = re.compile(r"^(?P<width>\d+)(?:x(?P<height>\d+))?$")


def builtin_names() -> list[str]:
    """Example specs of the built-in generators (any size from 16 to 16384 works)."""
    return [f"{kind}_{size}" for kind in GENERATORS for size in (128, 256, 1024)]


def maps_dirs(maps_dir: str | Path | Sequence[str | Path] | None = None) -> list[Path]:
    """Directories to search for named OpenFront maps: the argument first, then `$JAXMS_MAPS_DIR`."""
    if maps_dir is None:
        explicit: list[str | Path] = []
    elif isinstance(maps_dir, str | Path):
        explicit = [maps_dir]
    else:
        explicit = list(maps_dir)
    from_env = [p for p in os.environ.get(MAPS_DIR_ENV, "").split(os.pathsep) if p]
    dirs = []
    for entry in [*explicit, *from_env]:
        path = Path(entry).expanduser()
        dirs.append(path)
        if (path / "resources" / "maps").is_dir():  # an OpenFront checkout
            dirs.append(path / "resources" / "maps")
    return dirs


def find_maps(dirs: Iterable[Path]) -> dict[str, Path]:
    """OpenFront map folders found directly under `dirs`, by lower-case folder name (first found wins)."""
    found: dict[str, Path] = {}
    for directory in dirs:
        if not directory.is_dir():
            continue
        for child in sorted(directory.iterdir()):
            if is_openfront_folder(child):
                found.setdefault(child.name.lower(), child)
    return found


def _split_modifiers(spec: str) -> tuple[str, str | None, str | None, str | None]:
    """(source, scale, crop, size) of a spec; modifiers are recognised from the right."""
    source, scale, crop, size = spec, None, None, None
    match = re.search(r"~([^~/\\]*)$", source)
    if match and match.start() > 0:
        source, size = source[: match.start()], match.group(1)
    match = re.search(r":([^:/\\@]*)$", source)
    if match and match.start() > 1:  # keep Windows drive letters ("C:") in the source
        source, crop = source[: match.start()], match.group(1)
    match = re.search(r"@([^@/\\]*)$", source)
    if match and match.start() > 0:
        source, scale = source[: match.start()], match.group(1)
    return source, scale, crop, size


def _parse_crop(text: str, spec: str) -> tuple[int, int, int, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4 or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise MapError(f"bad crop {text!r} in map spec {spec!r}: expected :X,Y,WIDTH,HEIGHT with four "
                       "non-negative integers, e.g. australia:915,290,1024,1024")
    x, y, width, height = (int(p) for p in parts)
    return x, y, width, height


def _parse_size(text: str, spec: str, what: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(text)
    if not match:
        raise MapError(f"bad {what} {text!r} in map spec {spec!r}: expected N or WIDTHxHEIGHT, e.g. 512 or "
                       "512x384")
    width = int(match["width"])
    return width, int(match["height"]) if match["height"] else width


def _unknown_source(source: str, spec: str, dirs: list[Path]) -> MapError:
    available = find_maps(dirs)
    candidates = [*GENERATORS, *builtin_names(), *available]
    close = difflib.get_close_matches(source.lower(), candidates, n=4, cutoff=0.6)
    searched = ", ".join(str(d) for d in dirs) if dirs else f"none (pass --maps-dir or set {MAPS_DIR_ENV})"
    lines = [f"unknown map {source!r} (from spec {spec!r})."]
    if close:
        lines.append(f"  did you mean: {', '.join(close)}?")
    lines.append(f"  built-in maps: {', '.join(f'{k}_N' for k in GENERATORS)} for any N from 16 to 16384, "
                 "or WxH, e.g. " + ", ".join(builtin_names()[:3]))
    lines.append(f"  maps directories searched: {searched}")
    if available:
        lines.append(f"  maps found there: {', '.join(sorted(available))}")
    lines.append(f"  {SPEC_FORMS}")
    return MapError("\n".join(lines))


def _load_source(source: str, scale: str | None, spec: str, dirs: list[Path]) -> GameMap:
    builtin = _BUILTIN.fullmatch(source)
    if builtin and builtin["kind"] in GENERATORS:
        if scale is not None:
            raise MapError(f"@{scale} in map spec {spec!r} selects OpenFront's pre-downscaled files and only "
                           "applies to OpenFront map folders; to shrink a built-in map use ~N or ~WxH")
        width = int(builtin["width"])
        height = int(builtin["height"]) if builtin["height"] else width
        return generate_map(builtin["kind"], width, height, seed=int(builtin["seed"] or 0))
    if any(source.startswith(f"{kind}_") for kind in GENERATORS) and not Path(source).exists():
        raise MapError(f"bad built-in map spec {source!r}: expected KIND_SIZE[_sSEED] with SIZE = N or WxH, "
                       f"e.g. {source.split('_')[0]}_1024, {source.split('_')[0]}_512x256_s7")

    path = Path(source).expanduser()
    if source.lower().endswith(".png"):
        if scale is not None:
            raise MapError(f"@{scale} in map spec {spec!r} only applies to OpenFront map folders; to shrink "
                           "an image map use ~N or ~WxH")
        return read_terrain_png(path)
    if not path.exists() and ("/" not in source and os.sep not in source):
        path = find_maps(dirs).get(source.lower(), path)
    if path.is_dir():
        if scale is not None and scale not in SCALES:
            raise MapError(f"bad scale @{scale} in map spec {spec!r}: accepted scales are "
                           f"{', '.join('@' + s for s in SCALES)}")
        return read_openfront_folder(path, scale or "1x")
    if path.exists():
        raise MapError(f"{path} is neither an OpenFront map folder nor a .png terrain image; {SPEC_FORMS}")
    if "/" in source or os.sep in source:
        raise MapError(f"map path {path} does not exist; {SPEC_FORMS}")
    raise _unknown_source(source, spec, dirs)


def load_map(spec: str | Path | GameMap,
             maps_dir: str | Path | Sequence[str | Path] | None = None) -> GameMap:
    """Resolve a map spec (see the module docstring) to a `GameMap`; a `GameMap` is returned as it is.

    Raises:
        MapError: the spec is malformed or names something that is not there; the message says what was
            wrong and which forms are accepted.
    """
    if isinstance(spec, GameMap):
        return spec
    spec = str(spec).strip()
    if not spec:
        raise MapError(f"empty map spec; {SPEC_FORMS}")
    dirs = maps_dirs(maps_dir)
    source, scale, crop, size = _split_modifiers(spec)
    game_map = _load_source(source, scale, spec, dirs)
    if crop is not None:
        game_map = crop_map(game_map, *_parse_crop(crop, spec))
    if size is not None:
        game_map = downsample_map(game_map, *_parse_size(size, spec, "downsample size"))
    return game_map


# A family of built-in maps: KIND_SIZE_sFIRST-LAST (seeds FIRST..LAST inclusive), e.g. continents_256_s0-99.
_FAMILY = re.compile(r"^(?P<base>[a-z]+_\d+(?:x\d+)?)_s(?P<first>\d+)-(?P<last>\d+)(?P<rest>[@:~].*)?$")
POOL_SEPARATOR = "+"
MAX_POOL = 10_000
POOL_FORMS = (
    f"a map pool is several specs joined by '{POOL_SEPARATOR}' (e.g. australia@16x+pangaea@16x) or a "
    "built-in family KIND_SIZE_sFIRST-LAST (seeds FIRST..LAST, e.g. continents_256_s0-99); its maps must "
    "share one shape"
)


def pool_specs(spec: str | Sequence[str]) -> list[str]:
    """The single-map specs of a pool spec (see `load_maps`), without loading anything. Raises MapError."""
    parts = [str(s).strip() for s in spec] if not isinstance(spec, str) else \
        [s.strip() for s in spec.split(POOL_SEPARATOR)]
    if not parts or any(not p for p in parts):
        raise MapError(f"empty map spec in {spec!r}; {POOL_FORMS}")
    specs: list[str] = []
    for part in parts:
        family = _FAMILY.match(part)
        if family is None:
            specs.append(part)
            continue
        first, last = int(family["first"]), int(family["last"])
        if last < first or last - first + 1 > MAX_POOL:
            raise MapError(f"map family {part!r}: seeds {first}-{last} must run upwards and hold at most "
                           f"{MAX_POOL} maps")
        specs.extend(f"{family['base']}_s{seed}{family['rest'] or ''}" for seed in range(first, last + 1))
    return specs


def load_maps(spec: str | Sequence[str | GameMap] | GameMap,
              maps_dir: str | Path | Sequence[str | Path] | None = None) -> list[GameMap]:
    """A map pool: the maps of `spec`, a single map spec, several joined by '+', a built-in family
    (`continents_256_s0-99`), or a sequence of specs / GameMaps. Every map must have the same shape.

    Raises:
        MapError: a spec is malformed or missing, or the maps differ in shape (the message lists them).
    """
    if isinstance(spec, GameMap):
        return [spec]
    items = [spec] if isinstance(spec, str | Path) else list(spec)
    maps: list[GameMap] = []
    for item in items:
        if isinstance(item, GameMap):
            maps.append(item)
        else:
            maps.extend(load_map(one, maps_dir) for one in pool_specs(str(item)))
    if not maps:
        raise MapError(f"empty map pool; {POOL_FORMS}")
    shapes = {(m.width, m.height) for m in maps}
    if len(shapes) > 1:
        listed = ", ".join(f"{m.name} {m.width}x{m.height}" for m in maps[:8])
        raise MapError(f"the maps of a pool must share one shape, got {len(shapes)} shapes: {listed}"
                       f"{', ...' if len(maps) > 8 else ''} (crop or downsample them to one size with "
                       ":X,Y,W,H or ~WxH)")
    return maps
