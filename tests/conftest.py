"""Test harness set-up, once per session: CPU only, JAX's persistent compilation cache, shared map files."""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports JAX: tests always run on the CPU, and compiled programs are cached on disk
# (a git-ignored folder) so repeated runs skip most compilation.
REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# JIT-heavy property tests must not fail on the first example's compile time.
settings.register_profile("jaxms", deadline=None, max_examples=25)
settings.load_profile("jaxms")

# The real OpenFront maps live beside the repository (../shared), never inside it.
SHARED_MAPS_DIR = REPO_ROOT.parent / "shared" / "maps" / "openfront"


@pytest.fixture(scope="session")
def openfront_maps_dir() -> Path:
    """Folder holding the real OpenFront maps (australia, pangaea); skips the test when absent."""
    if not (SHARED_MAPS_DIR / "australia" / "manifest.json").is_file():
        pytest.skip(f"real OpenFront maps not found at {SHARED_MAPS_DIR} (they ship in ../shared, which is "
                    "absent here)")
    return SHARED_MAPS_DIR
