"""`python -m jaxms.maps`: list, info, show, save, and clear errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

from PIL import Image

from jaxms.maps.__main__ import main


def test_list_shows_generators_and_found_maps(capsys, openfront_maps_dir):
    assert main(["list", "--maps-dir", str(openfront_maps_dir)]) == 0
    out = capsys.readouterr().out
    for generator in ("plains_N", "continents_N", "islands_N"):
        assert generator in out
    assert "australia" in out and "2000x1500" in out and "pangaea" in out


def test_show_writes_a_png(tmp_path, capsys):
    out = tmp_path / "map.png"
    assert main(["show", "islands_128x64", "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.size == (128, 64)
    assert "128x64 tiles" in capsys.readouterr().out


def test_save_then_load_folder_and_png(tmp_path, capsys):
    assert main(["save", "continents_64", "--out", str(tmp_path / "folder")]) == 0
    assert main(["info", str(tmp_path / "folder") + "@4x"]) == 0
    assert "32x32 tiles" in capsys.readouterr().out
    assert main(["save", "continents_64", "--out", str(tmp_path / "terrain.png")]) == 0
    assert (tmp_path / "terrain.png").is_file()


def test_bad_spec_exits_2_with_message(capsys):
    assert main(["info", "no_such_map"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown map 'no_such_map'")


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "jaxms.maps", "info", "plains_32"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "32x32 tiles, 1,024 land" in result.stdout
