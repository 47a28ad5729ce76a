"""Sphinx configuration of the book (built by scripts/build_site.py into build/site; see `make site`).

The notebooks are rendered as stored (MyST-NB, no execution); math is typeset by a local copy of MathJax placed in
_static/mathjax at build time, so the built folder needs no network.
"""

project = "nodeutils: MNIST with a Neural ODE, in PyTorch"
author = "the nodeutils authors"
copyright = "the nodeutils authors, MIT licence"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

nb_execution_mode = "off"  # the stored outputs are the tested ones
nb_ipywidgets_js = {}  # widget state stays out: its scripts would come from a CDN, and the views are static figures
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_heading_anchors = 3

mathjax_path = "mathjax/tex-chtml.js"  # relative to _static: copied from the npm package at build time
mathjax3_config = {"options": {"enableMenu": False}}  # the menu would load its accessibility modules lazily

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
# ignore-module-all: each name is documented in the module that defines it, not again where it is re-exported
autodoc_typehints = "description"

html_theme = "furo"
html_title = "nodeutils: MNIST with a Neural ODE"
html_static_path = ["_static"]
html_css_files = ["launch.css"]
html_show_sourcelink = False
html_copy_source = False
# Search works from disk too: the index is a script; the result summaries would be fetched, which file:// forbids.
html_show_search_summary = False
