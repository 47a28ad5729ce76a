"""Build the book: a static HTML site of the notebooks as stored, readable offline (``make site``).

    python scripts/build_site.py            # build/site/index.html
    python scripts/build_site.py --out DIR

Sphinx with MyST-NB renders each notebook with its stored outputs (nothing is executed). The pages under docs/book/
are the book's own text. This script lays out a source folder under build/ and runs Sphinx on it:

* each notebook, with its badge cell (remote badge images) replaced by launch buttons made by scripts/make_badges.py
  from ``[project.urls]`` in pyproject.toml: Open in Colab, Launch Binder, and the notebook's source on GitHub;
* in notebook 04, after the trajectory explorer's static figure, its time slider as pre-rendered frames with a
  scrubber (``TrajectoryExplorer.animation_html``), from the same training run the notebook makes;
* the chapter table of the landing page, from README.md's notebook table;
* the API reference, one section per nodeutils module, from the docstrings;
* the references cited in the chapters, collected from each notebook's References cell;
* MathJax 3, from the npm package ``mathjax`` (taken with ``npm pack`` once, kept under build/), so that math is
  typeset without a network.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_badges  # noqa: E402

BOOK = ROOT / "docs" / "book"
BUILD = ROOT / "build"
MATHJAX_VERSION = "3.2.2"
# The parts of MathJax's es5 build the pages load: the TeX-to-HTML component, its fonts, and the TeX extensions it
# loads on demand.
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")
TRAJECTORY_CELL = "TrajectoryExplorer(trajectories)"  # the code cell of notebook 04 whose view gets a scrubber
FRAMES_ID = "trajectory-frames"


class SiteError(RuntimeError):
    """The book cannot be built from what is in the repository."""


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def launch_buttons(path: str, owner: str, name: str) -> str:
    """Raw HTML: Colab, Binder and source links for the notebook at ``path`` (relative to the repository root)."""
    links = [("colab", make_badges.colab_url(owner, name, path), "Open in Colab"),
             ("binder", make_badges.binder_url(owner, name, path), "Launch Binder"),
             ("source", make_badges.source_url(owner, name, path), "Source on GitHub")]
    anchors = "\n".join(f'<a class="launch-button" data-launch="{kind}" href="{url}">{label}</a>'
                        for kind, url, label in links)
    return f'<div class="launch-buttons" data-notebook="{path}">\n{anchors}\n</div>\n'


def chapter_notebook(nb: dict, path: str, owner: str, name: str, frames_html: str | None = None) -> dict:
    """The notebook as the book shows it: launch buttons instead of badges, no widget state, optional frames."""
    nb = copy.deepcopy(nb)
    nb.get("metadata", {}).pop("widgets", None)
    cells = [c for c in nb["cells"] if not make_badges._is_badge_cell(c)]
    buttons = {"cell_type": "markdown", "metadata": {}, "source": launch_buttons(path, owner, name)}
    title = _text(cells[0]) if cells and cells[0]["cell_type"] == "markdown" else ""
    if title.startswith("# "):  # right under the title line; the rest of that cell follows the buttons
        heading, _, rest = title.partition("\n")
        cells[0:1] = [{"cell_type": "markdown", "metadata": {}, "source": heading}, buttons,
                      *([{"cell_type": "markdown", "metadata": {}, "source": rest}] if rest.strip() else [])]
    else:
        cells.insert(0, buttons)
    if frames_html is not None:
        hits = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and TRAJECTORY_CELL in _text(c)]
        if len(hits) != 1:
            raise SiteError(f"{path}: expected one code cell containing {TRAJECTORY_CELL!r}, found {len(hits)}")
        note = {"cell_type": "markdown", "metadata": {},
                "source": ("**The time slider, on this page.** In JupyterLab the explorer above has a time slider; "
                           "here every time step is pre-rendered from the same trajectories "
                           "(`TrajectoryExplorer.animation_html()`): drag the scrubber or press play.")}
        # A code cell with only an HTML output and its input hidden: MyST-NB passes the HTML through unchanged.
        frames = {"cell_type": "code", "execution_count": None, "metadata": {"tags": ["remove-input"]},
                  "source": "trajectory_view.animation_html()",
                  "outputs": [{"output_type": "display_data", "metadata": {},
                               "data": {"text/html": f'<div class="trajectory-frames" id="{FRAMES_ID}">\n'
                                                     f'{frames_html.strip()}\n</div>\n'}}]}
        cells[hits[0] + 1:hits[0] + 1] = [note, frames]
    for c in cells:
        c.pop("id", None)
    nb["cells"] = cells
    nb["nbformat_minor"] = min(nb.get("nbformat_minor", 4), 4)  # cells without ids
    return nb


def trajectory_frames() -> str:
    """Notebook 04's trajectory view at every time step, from the run the notebook makes (seed 0, 1,500 images)."""
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from nodeutils import load_mnist, train
    from nodeutils.probing import hidden_trajectories, predict
    from nodeutils.widgets import TrajectoryExplorer

    torch.set_num_threads(1)
    train_loader, test_loader = load_mnist(128, 0.9, subset=1500)
    history = train("class", loaders=(train_loader, test_loader), progress=False, log=None)
    images, truth, _ = predict(history.model, test_loader)
    return TrajectoryExplorer(hidden_trajectories(history.model, images, truth, n_times=21)).animation_html()


def chapter_table(notebooks: list[Path]) -> str:
    """The landing page's chapter list: README.md's notebook table, with links to the chapters."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    _, body, _ = make_badges._between(readme, make_badges.TABLE_START, make_badges.TABLE_END, "notebook table")
    described = dict(re.findall(r"^\|\s*`([^`]+\.ipynb)`\s*\|(.*?)\|", body, flags=re.MULTILINE))
    rows = []
    for p in notebooks:
        if p.name not in described:
            raise SiteError(f"README.md's notebook table has no row for {p.name} (run `make badges` after adding one)")
        rows.append(f"| [{p.stem}](chapters/{p.name}) | {described[p.name].strip()} |")
    return "| chapter | what it teaches |\n| --- | --- |\n" + "\n".join(rows)


def collected_references(notebooks: list[Path]) -> str:
    """Every item of the notebooks' References cells, once, with the chapters that cite it."""
    cited: dict[str, list[str]] = {}
    for p in notebooks:
        nb = json.loads(p.read_text(encoding="utf-8"))
        cells = [_text(c) for c in nb["cells"] if c["cell_type"] == "markdown"
                 and _text(c).lstrip().startswith("## References")]
        for cell in cells:
            for item in re.split(r"\n(?=\* )", cell.split("\n", 1)[1].strip()):
                item = " ".join(line.strip() for line in item.splitlines()).removeprefix("* ").strip()
                if item:
                    cited.setdefault(item, []).append(p.stem[:2])
    return "\n".join(f"* {item} (chapters {', '.join(chs)})" if len(chs) > 1 else f"* {item} (chapter {chs[0]})"
                     for item, chs in cited.items())


def public_modules() -> list[str]:
    """The package's public modules, as dotted names under ``nodeutils``: each module, each subpackage, and the
    subpackage's modules after it (``exercises``, ``exercises.notebook01``, ...)."""
    package = ROOT / "nodeutils"
    modules = [p.stem for p in package.glob("*.py") if not p.stem.startswith("_")]
    for init in package.glob("*/__init__.py"):
        sub = init.parent.name
        if not sub.startswith("_"):
            modules += [sub] + [f"{sub}.{p.stem}" for p in init.parent.glob("*.py") if not p.stem.startswith("_")]
    return sorted(modules)


def api_page() -> str:
    """One autodoc section per module of the package (reStructuredText: autodoc writes reST)."""
    modules = public_modules()
    title = "API reference"
    parts = [f"{title}\n{'=' * len(title)}\n",
             "Generated from the docstrings of each ``nodeutils`` module. The most used names are also importable "
             "from ``nodeutils`` itself (``from nodeutils import load_mnist, train``).\n"]
    for m in modules:
        heading = f"``nodeutils.{m}``"
        parts.append(f"{heading}\n{'-' * len(heading)}\n\n.. automodule:: nodeutils.{m}\n")
    return "\n".join(parts)


def mathjax(dest: Path) -> None:
    """MathJax's es5 parts the pages need, from the npm package (fetched once into build/)."""
    cache = BUILD / "npm"
    tarball = cache / f"mathjax-{MATHJAX_VERSION}.tgz"
    if not tarball.exists():
        if shutil.which("npm") is None:
            raise SiteError("npm is needed once to fetch MathJax (`apt-get install npm`), or put "
                            f"mathjax-{MATHJAX_VERSION}.tgz from the npm registry into {cache}")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", "--silent", f"mathjax@{MATHJAX_VERSION}", "--pack-destination", str(cache)],
                       check=True, stdout=subprocess.DEVNULL)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            rel = member.name.removeprefix("package/es5/")
            if member.isfile() and member.name.startswith("package/es5/") and any(
                    rel == part or rel.startswith(part + "/") for part in MATHJAX_PARTS):
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
    license_file = tar_member_text(tarball, "package/LICENSE")
    (dest / "LICENSE").write_text(license_file)


def tar_member_text(tarball: Path, name: str) -> str:
    with tarfile.open(tarball) as tar:
        return tar.extractfile(name).read().decode()


def stage(src: Path) -> None:
    """Lay out the Sphinx source folder: the book's pages, the chapters and the generated pages."""
    owner, name = make_badges.repository(ROOT / "pyproject.toml")
    notebooks = sorted((ROOT / make_badges.NOTEBOOKS).glob("*.ipynb"))
    if not notebooks:
        raise SiteError("no notebooks in notebooks/")
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(BOOK, src)
    shutil.copytree(ROOT / "docs" / "images", src / "images")
    (src / "chapters").mkdir()
    for p in notebooks:
        nb = json.loads(p.read_text(encoding="utf-8"))
        frames = None
        if any(c["cell_type"] == "code" and TRAJECTORY_CELL in _text(c) for c in nb["cells"]):
            started = time.perf_counter()
            frames = trajectory_frames()
            print(f"build_site: trajectory frames for {p.name} ({len(frames) / 1e6:.2f} MB of HTML, "
                  f"{time.perf_counter() - started:.0f} s)", flush=True)
        chapter = chapter_notebook(nb, f"{make_badges.NOTEBOOKS}/{p.name}", owner, name, frames)
        (src / "chapters" / p.name).write_text(json.dumps(chapter, indent=1, ensure_ascii=False), encoding="utf-8")
    for page, marker, text in [("index.md", "<!-- chapter table (scripts/build_site.py) -->", chapter_table(notebooks)),
                               ("references.md", "<!-- chapter references (scripts/build_site.py) -->",
                                collected_references(notebooks))]:
        body = (src / page).read_text(encoding="utf-8")
        if body.count(marker) != 1:
            raise SiteError(f"docs/book/{page} needs the line {marker!r} once")
        (src / page).write_text(body.replace(marker, text), encoding="utf-8")
    (src / "api.rst").write_text(api_page(), encoding="utf-8")
    mathjax(src / "_static" / "mathjax")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=BUILD / "site", help="where the HTML goes (default build/site)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    src = BUILD / "book-src"
    try:
        stage(src)
    except (SiteError, make_badges.BadgeError) as e:
        print(f"build_site: {e}", file=sys.stderr)
        return 2
    if args.out.exists():
        shutil.rmtree(args.out)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "auto", "-d", str(BUILD / "doctrees"),
           str(src), str(args.out)]
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode:
        return result.returncode
    (args.out / ".nojekyll").touch()  # GitHub Pages: serve _static/ and friends as they are
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"build_site: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} "
          f"({size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
