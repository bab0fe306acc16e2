"""The notebooks as committed: stripped of outputs, a parameter cell first, only the public API.

(They are run end to end by `make test` itself: `pytest --nbmake notebooks`, each in its own kernel.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ("01_quickstart.ipynb", "02_train_and_evaluate.ipynb", "03_single_vs_multi_scale.ipynb")
STRIP = "clear them before committing (Jupyter: Edit > Clear Outputs of All Cells, or `jupyter nbconvert " \
        "--clear-output --inplace notebooks/*.ipynb`)"


def load(name: str) -> dict:
    return json.loads((NOTEBOOKS / name).read_text())


def test_the_notebooks_are_there():
    assert tuple(sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebooks_hold_no_outputs_or_execution_counts(name):
    notebook = load(name)
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{name}: cell {index} has outputs: {STRIP}"
            assert cell["execution_count"] is None, f"{name}: cell {index} has an execution count: {STRIP}"
    assert "widgets" not in notebook["metadata"], f"{name}: saved widget state in the metadata: {STRIP}"


@pytest.mark.parametrize("name", EXPECTED)
def test_a_parameter_cell_comes_first_with_the_realistic_sizes_beside(name):
    cells = load(name)["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    heading = next(i for i, cell in enumerate(cells) if "".join(cell["source"]).startswith("## Parameters"))
    assert cells[heading + 1] is code[0], f"{name}: the parameter cell follows the Parameters heading"
    assert "realistic" in first and "import jax" not in first, f"{name}: sizes only, realistic ones beside"
    prose = sum(cell["cell_type"] == "markdown" for cell in cells)
    assert prose >= len(code) / 2, f"{name}: prose should explain what the reader sees"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebooks_use_only_the_public_api(name):
    source = "\n".join("".join(cell["source"]) for cell in load(name)["cells"] if cell["cell_type"] == "code")
    imports = re.findall(r"^\s*(?:from\s+(\S+)\s+import\s+(.+)|import\s+(\S+))", source, re.MULTILINE)
    for module, names, plain in imports:
        module = module or plain
        assert not any(part.startswith("_") for part in module.split(".")), (name, module)
        assert not any(n.strip().startswith("_") for n in names.split(",")), (name, module, names)
        if module.split(".")[0] == "benchmarks":  # the benchmark functions: the comparison notebook only
            assert name.startswith("03_"), (name, module)
    assert not re.search(r"\.\b_[a-z]\w*\(", source), f"{name} calls a private function"
