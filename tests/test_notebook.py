"""examples/notebook.ipynb runs in a real Jupyter kernel and shows the whole
answer in the cell's final output."""

from __future__ import annotations

from pathlib import Path

import pytest

from holysse.testing import FakeServer

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebook.ipynb"
#: The request and server settings of the notebook's first cell.
BODY = {"model": "fake-1", "messages": [{"role": "user", "content": "Why do streams get cut?"}], "seed": 1}


def test_the_example_notebook_renders_the_full_answer(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the test extra (nbformat) is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the test extra (nbclient) is not installed")
    pytest.importorskip("ipykernel", reason="the test extra (ipykernel) is not installed")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nbclient.NotebookClient(notebook, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    with FakeServer(answer_chars=600) as reference:
        expected = reference.expected_text(BODY)
    displayed = [cell for cell in notebook.cells if cell.cell_type == "code" and "stream.display()" in cell.source]
    assert len(displayed) == 1
    outputs = displayed[0].outputs
    assert [output.output_type for output in outputs] == ["display_data", "display_data"]
    answer, status = outputs[0].data, outputs[1].data
    assert answer["text/markdown"] == answer["text/plain"] == expected
    assert status["text/plain"].startswith("✓ ") and "1 reconnects" in status["text/plain"]
    printed = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.outputs)
    assert "identical to the server's full answer: True" in printed
