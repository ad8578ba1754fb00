"""Shared fixtures: the repository paths, code taken from the notebook, and the real MNIST files."""
import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "MNIST_project.ipynb"
sys.path.insert(0, str(REPO))  # for `import predict`


def notebook_cells(kind="code"):
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return [cell for cell in cells if cell["cell_type"] == kind]


def cell_source(cell):
    return "".join(cell["source"])


def notebook_definitions(marker):
    """Run the notebook code cell that contains `marker` (a definition) and return its namespace.

    The notebook must stand alone in Colab, so it imports no module of ours; the tests take its helpers from it.
    """
    matches = [cell_source(c) for c in notebook_cells() if marker in cell_source(c)]
    assert len(matches) == 1, f"expected one notebook cell containing {marker!r}, found {len(matches)}"
    namespace = {"gzip": gzip, "np": np, "Path": Path}
    exec(compile(matches[0], f"{NOTEBOOK.name}:{marker}", "exec"), namespace)
    return namespace


@pytest.fixture(scope="session")
def idx():
    """The notebook's IDX reader: read_idx, load_mnist_idx, MnistDataError, IDX_FILES."""
    return notebook_definitions("def load_mnist_idx(")


@pytest.fixture(scope="session")
def mnist_dir():
    """The folder of the real MNIST files: $MNIST_DATA_DIR, or ../shared/data/mnist beside the repository."""
    configured = os.environ.get("MNIST_DATA_DIR")
    folder = Path(configured) if configured else REPO.parent / "shared" / "data" / "mnist"
    if not configured and not folder.is_dir():
        pytest.skip("the MNIST files are not here: set MNIST_DATA_DIR to their folder")
    assert folder.is_dir(), f"MNIST_DATA_DIR={folder} is not a folder"
    return folder


@pytest.fixture(scope="session")
def mnist(idx, mnist_dir):
    return idx["load_mnist_idx"](mnist_dir)
