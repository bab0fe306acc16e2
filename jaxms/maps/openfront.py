"""OpenFront map folders: `manifest.json` plus `map.bin`, `map4x.bin`, `map16x.bin`.

Each `.bin` holds one byte per tile, row-major (`y * width + x`), in the layout of `types.pack_tiles`.
The manifest gives width, height and land-tile count per scale and the nations' spawn coordinates in
full-scale pixels. `map4x` halves each side and `map16x` quarters it, so nation coordinates are divided by
2 or 4 to match the scale that is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxms.maps.transform import downsample_map
from jaxms.maps.types import GameMap, MapError, Nation, check_map_size, pack_tiles, unpack_tiles

# scale name -> (manifest key, file name, divisor of full-scale coordinates)
SCALES: dict[str, tuple[str, str, int]] = {
    "1x": ("map", "map.bin", 1),
    "4x": ("map4x", "map4x.bin", 2),
    "16x": ("map16x", "map16x.bin", 4),
}


def is_openfront_folder(path: Path) -> bool:
    return path.is_dir() and (path / "manifest.json").is_file()


def read_manifest(folder: Path) -> dict:
    """The folder's manifest as a dict, with a clear error when it is missing or malformed."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise MapError(f"{folder} is not an OpenFront map folder: it has no manifest.json "
                       "(expected manifest.json, map.bin, map4x.bin, map16x.bin)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise MapError(f"cannot read {manifest_path}: {error}") from error
    if not isinstance(manifest, dict):
        raise MapError(f"{manifest_path} must hold a JSON object, got {type(manifest).__name__}")
    return manifest


def _scale_entry(manifest: dict, key: str, manifest_path: Path) -> tuple[int, int, int]:
    entry = manifest.get(key)
    try:
        return int(entry["width"]), int(entry["height"]), int(entry["num_land_tiles"])
    except (TypeError, KeyError, ValueError) as error:
        raise MapError(f"{manifest_path}: entry {key!r} must be an object with integer width, height and "
                       f"num_land_tiles, got {entry!r}") from error


def _nations(manifest: dict, divisor: int, manifest_path: Path) -> tuple[Nation, ...]:
    nations = []
    for index, raw in enumerate(manifest.get("nations") or []):
        try:
            x, y = raw["coordinates"]
            nations.append(Nation(name=str(raw.get("name", f"nation {index}")), x=int(x) // divisor,
                                  y=int(y) // divisor))
        except (TypeError, KeyError, ValueError) as error:
            raise MapError(f"{manifest_path}: nation {index} must have 'coordinates': [x, y], got {raw!r}"
                           ) from error
    return tuple(nations)


def read_openfront_folder(folder: str | Path, scale: str = "1x") -> GameMap:
    """Load an OpenFront map folder at one scale ('1x', '4x' or '16x').

    The tile bytes are kept as the file has them (land, magnitude, shoreline and ocean bits); the file's
    size and its land-tile count are checked against the manifest.
    """
    folder = Path(folder)
    if scale not in SCALES:
        raise MapError(f"unknown scale {scale!r} for OpenFront map {folder.name}: accepted scales are "
                       f"{', '.join(SCALES)}")
    manifest = read_manifest(folder)
    manifest_path = folder / "manifest.json"
    key, file_name, divisor = SCALES[scale]
    width, height, land_count = _scale_entry(manifest, key, manifest_path)
    check_map_size(width, height, what=f"{folder.name}@{scale}")
    bin_path = folder / file_name
    if not bin_path.is_file():
        raise MapError(f"OpenFront map folder {folder} has no {file_name} (needed for scale {scale}); "
                       f"files present: {', '.join(sorted(p.name for p in folder.iterdir()))}")
    packed = np.fromfile(bin_path, dtype=np.uint8)
    if packed.size != width * height:
        raise MapError(f"{bin_path} has {packed.size:,} bytes but manifest.json says {key} is "
                       f"{width}x{height} = {width * height:,} tiles (one byte per tile)")
    land, magnitude, shoreline, ocean = unpack_tiles(packed.reshape(height, width))
    decoded_land = int(np.count_nonzero(land))
    if decoded_land != land_count:
        raise MapError(f"{bin_path} decodes to {decoded_land:,} land tiles but manifest.json says "
                       f"{key}.num_land_tiles = {land_count:,}: the file and manifest disagree")
    name = str(manifest.get("name") or folder.name)
    return GameMap(
        name=name if scale == "1x" else f"{name}@{scale}",
        land=land,
        magnitude=magnitude,
        shoreline=shoreline,
        ocean=ocean,
        nations=_nations(manifest, divisor, manifest_path),
        source=f"{folder}@{scale}",
    )


def save_openfront_folder(game_map: GameMap, folder: str | Path, name: str | None = None) -> Path:
    """Write `game_map` as an OpenFront map folder (manifest.json, map.bin, map4x.bin, map16x.bin).

    The 4x and 16x files are made by `downsample_map` (water wins a 2x2 block, as in OpenFront). The map
    becomes the folder's full scale, so its nation coordinates are written unchanged.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"name": name or game_map.name}
    for scale, (key, file_name, divisor) in SCALES.items():
        width, height = game_map.width // divisor, game_map.height // divisor
        if scale == "1x":
            scaled = game_map
        elif width < 1 or height < 1:
            raise MapError(f"map {game_map.name!r} ({game_map.width}x{game_map.height}) is too small to "
                           f"write its {scale} file; OpenFront folders need sides of at least 4")
        else:
            scaled = downsample_map(game_map, width, height, allow_small=True)
        pack_tiles(scaled).tofile(folder / file_name)
        manifest[key] = {"width": width, "height": height, "num_land_tiles": scaled.num_land_tiles}
    manifest["nations"] = [{"coordinates": [n.x, n.y], "name": n.name} for n in game_map.nations]
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return folder
