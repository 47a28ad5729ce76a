"""Check the built book in a real browser (headless Chromium driven by Playwright), with the network blocked.

    python scripts/test_site.py                  # checks build/site (run `make site` first)
    python scripts/test_site.py --site DIR --screenshots DIR

Every page is opened from a local web server (as `python -m http.server` serves it) and every book page once more
from disk (file://). Any request that leaves the machine is refused. The run stops at the first failure:

* a console error, an uncaught exception, a failed request or an HTTP error on any page;
* an image that does not decode (natural width 0);
* a formula left untypeset: a MathJax error, a math element without MathJax output, or raw TeX (``$$``, ``\\frac``,
  ``\\(`` ...) in the page's text outside code;
* an internal link (or its #anchor) that does not resolve;
* a chapter's launch buttons not pointing at its own notebook (URLs from scripts/make_badges.py);
* the trajectory scrubber of chapter 04 not changing the frame, or a page over 2 MB with its images;
* the search page finding nothing for a word the book contains.

The browser is Debian's ``chromium`` (or the executable the environment variable CHROMIUM names).
A full-page screenshot of each book page goes to the screenshots folder (default build/site-screenshots).
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import os
import re
import shutil
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_badges  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
PAGE_LIMIT_BYTES = 2_000_000
RAW_TEX = re.compile(r"\$\$|\\frac|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$[^\s$][^$\n]{0,80}\$")
SEARCH_WORD = "adjoint"

# Text nodes of the page outside code, scripts and typeset math, joined.
VISIBLE_TEXT_JS = """() => {
  const skip = new Set(['SCRIPT', 'STYLE', 'PRE', 'CODE', 'TEXTAREA', 'MJX-CONTAINER', 'NOSCRIPT']);
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    let p = n.parentElement, skipped = false;
    while (p) { if (skip.has(p.tagName)) { skipped = true; break; } p = p.parentElement; }
    if (!skipped) out.push(n.textContent);
  }
  return out.join(' ');
}"""

IMAGES_JS = """async () => Promise.all([...document.images].map(async img => {
  img.loading = 'eager';
  try { await img.decode(); } catch (e) {}
  return [img.currentSrc.slice(0, 120) || img.getAttribute('src'), img.naturalWidth];
}))"""

MATH_JS = """async () => {
  if (!window.MathJax) return {mathjax: false, math: document.querySelectorAll('.math').length};
  await MathJax.startup.promise;
  const math = [...document.querySelectorAll('.math')];
  return {mathjax: true, math: math.length,
          untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
          errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 60))};
}"""


class SiteCheckError(AssertionError):
    """A page of the book fails a check."""


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if tag in ("a", "link", "img", "script") and a.get(key):
                self.hrefs.append(a[key])


@functools.cache
def _parsed(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def check_internal_links(site: Path, pages: list[Path]) -> int:
    """Every relative link, stylesheet, script and image of every page names a file (and anchor) that exists."""
    checked = 0
    for page in pages:
        for href in _parsed(page).hrefs:
            parts = urlsplit(href)
            if parts.scheme or href.startswith("//") or href.startswith("mailto:"):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or not target.is_relative_to(site.resolve()):
                raise SiteCheckError(f"{page.relative_to(site)}: link {href!r} names no file of the site")
            if parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _parsed(target).ids:
                raise SiteCheckError(f"{page.relative_to(site)}: link {href!r}: no #{parts.fragment} in "
                                     f"{target.relative_to(site.resolve())}")
            checked += 1
    return checked


def page_weight(site: Path, page: Path) -> int:
    """Bytes of the page with the images it shows (stylesheets and scripts are shared by every page)."""
    total = page.stat().st_size
    for src in {h for h in _parsed(page).hrefs if h.split("?")[0].endswith((".png", ".jpg", ".jpeg", ".svg", ".gif"))}:
        target = (page.parent / unquote(urlsplit(src).path)).resolve()
        if target.is_file():
            total += target.stat().st_size
    return total


def serve(site: Path) -> tuple[ThreadingHTTPServer, str]:
    """`python -m http.server` in a thread, on a free port."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            if not isinstance(sys.exc_info()[1], ConnectionError):  # the browser closed a page mid-transfer
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class Browser:
    """One Chromium, one context whose only reachable places are the local server and the site's files."""

    def __init__(self, playwright, base: str) -> None:  # noqa: ANN001 - playwright's sync API object
        executable = shutil.which(os.environ.get("CHROMIUM", "chromium"))  # CHROMIUM names another build
        if executable is None:
            raise SystemExit("test_site: Debian's chromium is not installed (`apt-get install -y chromium`), "
                             "or set CHROMIUM to a Chromium or Chrome executable")
        self.browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.base = base
        self.blocked: list[str] = []
        self.context.route("**/*", self._route)

    def _route(self, route) -> None:  # noqa: ANN001
        url = route.request.url
        if url.startswith((self.base, "file://", "data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")

    def open(self, url: str):  # noqa: ANN201 - a playwright Page
        """The page at ``url``, loaded, with every problem it reported while loading."""
        page = self.context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:150]} ({r.failure})"))
        page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        page.goto(url, wait_until="load")
        page.problems = problems
        return page

    def close(self) -> None:
        self.context.close()
        self.browser.close()


def check_page(browser: Browser, url: str, name: str) -> object:
    """Load, images, math: the checks every page gets. Returns the open page."""
    page = browser.open(url)
    try:  # images whose source a script sets (the scrubber's first frame) get a moment for it
        page.wait_for_function("[...document.images].every(i => i.getAttribute('src'))", timeout=5_000)
    except Exception:  # noqa: BLE001, S110 - playwright's TimeoutError: the image check below names the image
        pass
    images = page.evaluate(IMAGES_JS)
    broken = [src or "an <img> without src" for src, width in images if not width]
    if broken:
        raise SiteCheckError(f"{name}: {len(broken)} image(s) did not decode, first {broken[0]!r}")
    math = page.evaluate(MATH_JS)
    if math["math"] and not math["mathjax"]:
        raise SiteCheckError(f"{name}: {math['math']} formulas but MathJax did not load")
    if math.get("untypeset"):
        raise SiteCheckError(f"{name}: formula left untypeset: {math['untypeset'][0]!r}")
    if math.get("errors"):
        raise SiteCheckError(f"{name}: MathJax error in a formula: {math['errors'][0]!r}")
    raw = RAW_TEX.search(page.evaluate(VISIBLE_TEXT_JS))
    if raw:
        text = page.evaluate(VISIBLE_TEXT_JS)
        raise SiteCheckError(f"{name}: raw TeX in the text: ...{text[max(0, raw.start() - 40):raw.end() + 40]!r}...")
    page.wait_for_timeout(50)  # late console messages (fonts, lazy scripts)
    if page.problems:
        raise SiteCheckError(f"{name}: {page.problems[0]}")
    return page


def check_launch_buttons(page, chapter: Path) -> None:  # noqa: ANN001
    owner, name = make_badges.repository(ROOT / "pyproject.toml")
    path = f"{make_badges.NOTEBOOKS}/{chapter.stem}.ipynb"
    if not (ROOT / path).is_file():
        raise SiteCheckError(f"chapter {chapter.name} has no notebook {path}")
    expected = {"colab": make_badges.colab_url(owner, name, path),
                "binder": make_badges.binder_url(owner, name, path),
                "source": make_badges.source_url(owner, name, path)}
    found = page.eval_on_selector_all("a.launch-button", "els => els.map(e => [e.dataset.launch, e.href])")
    if dict(found) != expected or len(found) != len(expected):
        raise SiteCheckError(f"chapter {chapter.name}: launch buttons {found} should be {sorted(expected.items())}")


def check_scrubber(page, name: str) -> None:  # noqa: ANN001
    """Moving the scrubber of the pre-rendered trajectory frames shows another frame."""
    frames = page.locator("#trajectory-frames")
    if frames.count() != 1:
        raise SiteCheckError(f"{name}: no trajectory frames (#trajectory-frames)")
    slider, image = frames.locator("input[type=range]"), frames.locator("img")
    if slider.count() != 1 or image.count() != 1:
        raise SiteCheckError(f"{name}: the trajectory frames have no scrubber or no image")
    slider.scroll_into_view_if_needed()
    seen = []
    box = slider.bounding_box()
    for fraction in (0.02, 0.5, 0.98):
        page.mouse.click(box["x"] + fraction * box["width"], box["y"] + box["height"] / 2)
        seen.append((slider.input_value(), image.get_attribute("src")))
    values, sources = [v for v, _ in seen], [s for _, s in seen]
    if len(set(values)) != 3 or len(set(sources)) != 3:
        raise SiteCheckError(f"{name}: moving the scrubber to 3 places gave frames {values} and "
                             f"{len(set(sources))} distinct image(s)")
    if not all(s and s.startswith("data:image/") for s in sources):
        raise SiteCheckError(f"{name}: the frames are not embedded images")


def check_search(browser: Browser, url: str, how: str) -> None:
    page = browser.open(f"{url}search.html?q={SEARCH_WORD}")
    try:
        page.wait_for_selector("#search-results ul.search li", timeout=15_000)
    except Exception as e:  # noqa: BLE001 - playwright's TimeoutError
        raise SiteCheckError(f"search ({how}): no result for {SEARCH_WORD!r}; {page.problems[:1]}") from e
    page.wait_for_timeout(1_000)  # anything the search page loads after its first results
    if page.problems:
        raise SiteCheckError(f"search ({how}): {page.problems[0]}")
    page.close()


def run(site: Path, screenshots: Path) -> int:
    from playwright.sync_api import sync_playwright

    if not (site / "index.html").is_file():
        raise SystemExit(f"test_site: no book at {site} (run `make site`)")
    started = time.perf_counter()
    all_pages = sorted(p for p in site.rglob("*.html") if "_sources" not in p.parts)
    book_pages = [p for p in all_pages if "_modules" not in p.parts]
    chapters = sorted((site / "chapters").glob("*.html"))
    notebooks = sorted((ROOT / make_badges.NOTEBOOKS).glob("*.ipynb"))
    if [c.stem for c in chapters] != [n.stem for n in notebooks]:
        raise SiteCheckError(f"chapters {[c.stem for c in chapters]} are not the notebooks "
                             f"{[n.stem for n in notebooks]}")
    if screenshots.exists():
        shutil.rmtree(screenshots)
    screenshots.mkdir(parents=True)

    passed = 0
    try:
        links = check_internal_links(site, all_pages)
        print(f"internal links: {links} resolve in {len(all_pages)} pages")
        passed += 1
        for p in book_pages:
            weight = page_weight(site, p)
            if weight > PAGE_LIMIT_BYTES:
                raise SiteCheckError(f"{p.relative_to(site)}: {weight:,} bytes with its images (limit "
                                     f"{PAGE_LIMIT_BYTES:,})")
        passed += 1
        server, base = serve(site)
        with sync_playwright() as playwright:
            browser = Browser(playwright, base)
            try:
                for p in all_pages:
                    rel = p.relative_to(site).as_posix()
                    page = check_page(browser, urljoin(base, rel), f"{rel} (http)")
                    if p in chapters:
                        check_launch_buttons(page, p)
                        if p.stem.startswith("04"):
                            check_scrubber(page, rel)
                    if p in book_pages:
                        shot = screenshots / (rel.replace("/", "__").removesuffix(".html") + ".png")
                        page.screenshot(path=str(shot), full_page=True)
                    page.close()
                    passed += 1
                check_search(browser, base, "http")
                passed += 1
                for p in book_pages:
                    rel = p.relative_to(site).as_posix()
                    page = check_page(browser, p.resolve().as_uri(), f"{rel} (file://)")
                    if p.stem.startswith("04") and p in chapters:
                        check_scrubber(page, f"{rel} (file://)")
                    page.close()
                    passed += 1
                check_search(browser, site.resolve().as_uri() + "/", "file://")
                passed += 1
                if browser.blocked:
                    raise SiteCheckError(f"requests that would leave the machine: {browser.blocked[:3]}")
            finally:
                browser.close()
                server.shutdown()
    except SiteCheckError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        print(f"site: {passed} passed, 1 failed")
        return 1
    shown = screenshots.relative_to(ROOT) if screenshots.is_relative_to(ROOT) else screenshots
    print(f"{len(book_pages)} screenshots in {shown}; {time.perf_counter() - started:.0f} s")
    print(f"site: {passed} passed, 0 failed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "build" / "site")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "build" / "site-screenshots")
    args = parser.parse_args(argv)
    return run(args.site, args.screenshots)


if __name__ == "__main__":
    sys.exit(main())
