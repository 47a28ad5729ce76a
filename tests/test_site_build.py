"""The book's source as scripts/build_site.py lays it out: launch buttons, frames, chapter table, references.

Sphinx and the browser are not needed here; `make site` and `make test-site` check the built pages.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import build_site  # noqa: E402
import make_badges  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_launch_buttons_open_the_notebook_they_sit_in():
    html = build_site.launch_buttons("notebooks/x.ipynb", "someone", "fork")
    links = dict(re.findall(r'data-launch="(\w+)" href="([^"]+)"', html))
    assert links == {"colab": make_badges.colab_url("someone", "fork", "notebooks/x.ipynb"),
                     "binder": make_badges.binder_url("someone", "fork", "notebooks/x.ipynb"),
                     "source": "https://github.com/someone/fork/blob/main/notebooks/x.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_drops_remote_badges_and_widget_state_and_keeps_every_other_cell(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    chapter = build_site.chapter_notebook(nb, f"notebooks/{path.name}", "o", "r")
    texts = [_text(c) for c in chapter["cells"]]
    assert not any("colab-badge.svg" in t or "badge_logo.svg" in t for t in texts)
    assert "widgets" not in chapter["metadata"]
    assert texts[0].startswith("# ") and "\n" not in texts[0].strip()  # the title line, then the buttons
    assert 'class="launch-buttons"' in texts[1]
    kept = [c for c in nb["cells"] if not make_badges._is_badge_cell(c)]
    assert "".join(texts[:1] + texts[2:]).replace("\n", "") == "".join(_text(c) for c in kept).replace("\n", "")
    code = [c for c in chapter["cells"] if c["cell_type"] == "code"]
    assert [c["outputs"] for c in code] == [c["outputs"] for c in kept if c["cell_type"] == "code"]
    assert nb == json.loads(path.read_text(encoding="utf-8"))  # the stored notebook is not touched


def test_frames_go_right_after_the_trajectory_explorer():
    nb = json.loads((ROOT / "notebooks" / "04_inside_the_ode.ipynb").read_text(encoding="utf-8"))
    chapter = build_site.chapter_notebook(nb, "notebooks/04_inside_the_ode.ipynb", "o", "r", frames_html="<p>F</p>")
    at = next(i for i, c in enumerate(chapter["cells"]) if build_site.TRAJECTORY_CELL in _text(c))
    frames = chapter["cells"][at + 2]
    assert frames["metadata"]["tags"] == ["remove-input"]
    html = frames["outputs"][0]["data"]["text/html"]
    assert html.startswith(f'<div class="trajectory-frames" id="{build_site.FRAMES_ID}"') and "<p>F</p>" in html
    with pytest.raises(build_site.SiteError, match="expected one code cell"):
        build_site.chapter_notebook(json.loads((ROOT / "notebooks" / "01_mnist_neural_ode.ipynb").read_text()),
                                    "notebooks/01_mnist_neural_ode.ipynb", "o", "r", frames_html="<p>F</p>")


def test_chapter_table_lists_every_notebook_in_order_with_its_readme_description():
    table = build_site.chapter_table(NOTEBOOKS)
    rows = table.splitlines()[2:]
    assert [re.search(r"\(chapters/([^)]+)\)", r).group(1) for r in rows] == [p.name for p in NOTEBOOKS]
    assert all(r.count("|") == 3 and r.split("|")[2].strip() for r in rows)


def test_references_are_collected_once_each_with_the_chapters_citing_them():
    refs = build_site.collected_references(NOTEBOOKS).splitlines()
    assert refs and len(refs) == len(set(refs))
    chen = [r for r in refs if "Neural Ordinary Differential Equations" in r]
    assert len(chen) == 1 and "(chapters 01, 02, 03, 04)" in chen[0]


def test_api_page_documents_every_public_module():
    page = build_site.api_page()
    package = ROOT / "nodeutils"
    modules = [p.stem for p in package.glob("*.py") if not p.stem.startswith("_")]
    for sub in sorted(p.parent for p in package.glob("*/__init__.py")):  # subpackages too, and their modules
        modules += [sub.name] + [f"{sub.name}.{p.stem}" for p in sub.glob("*.py") if not p.stem.startswith("_")]
    documented = re.findall(r"^\.\. automodule:: nodeutils\.([\w.]+)$", page, flags=re.MULTILINE)
    assert documented == sorted(modules)  # in order: each subpackage followed by its modules
    assert "exercises" in documented and "exercises.notebook01" in documented
    assert documented.index("exercises") < documented.index("exercises.notebook01")
