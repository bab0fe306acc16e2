"""Shared plumbing for benchmark scripts: machine description and writing JSON + markdown results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_description() -> dict:
    """CPU model, core count, memory and Python version of the machine running the benchmark."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=False, cwd=Path(__file__).parent).stdout.strip() or None
    except OSError:
        commit = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb, "python": platform.python_version(),
            "platform": platform.platform(), "commit": commit,
            "date": datetime.now(UTC).isoformat(timespec="seconds")}


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]


def write_results(name: str, rows: list[dict], columns: list[str], title: str,
                  out_dir: Path | None = None,
                  sections: dict[str, tuple[str, list[dict], list[str]]] | None = None) -> tuple[Path, Path]:
    """Write `rows` as `<name>.json` (with the machine) and `<name>.md` (a table); print the table.

    `sections` ({key: (heading, rows, columns)}) adds more tables: each under its heading in the markdown
    and its rows under `key` in the JSON (the main table is left out of the markdown when `rows` is empty).
    """
    out_dir = Path(out_dir or RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_description()
    sections = sections or {}
    json_path = out_dir / f"{name}.json"
    json_path.write_text(json.dumps({"machine": machine, "rows": rows,
                                     **{key: section[1] for key, section in sections.items()}},
                                    indent=2) + "\n")
    lines = [f"# {title}", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB; "
             f"Python {machine['python']}; commit {machine['commit']}; {machine['date']}", ""]
    if rows or not sections:
        lines += _table(rows, columns)
    for heading, section_rows, section_columns in sections.values():
        lines += ["", f"## {heading}", "", *_table(section_rows, section_columns)]
    md_path = out_dir / f"{name}.md"
    md_path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return json_path, md_path


def call_times(fn, *args, repeats: int) -> list[float]:
    """Wall times (s) of `repeats` calls of `fn(*args)`, each blocked on, after one warm-up call."""
    import jax

    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return times


def cpu_and_wall_times(fn, *args, repeats: int):
    """(wall times, CPU times, last result) of `repeats` calls of `fn(*args)`, each blocked on, after one
    warm-up call (a compile, if `fn` is jitted and not compiled yet). CPU time is `time.process_time()`:
    every thread of the process, so it can exceed the wall time where XLA runs work in parallel."""
    import jax

    result = jax.block_until_ready(fn(*args))
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = jax.block_until_ready(fn(*args))
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return walls, cpus, result
