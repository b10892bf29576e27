"""The built book, opened in a browser with the network off: what a reader would see broken.

Every page of ``_build/html`` is served from a local HTTP server and opened in headless
Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium) whose proxy is a
closed port, so that anything fetched from the web fails as it would offline. After the
page has loaded and MathJax has typeset it, :func:`check_page` reports

- an image that has not loaded (``naturalWidth`` 0),
- raw TeX in the visible text (a ``$``, a backslash command such as ``\\frac`` or a delimiter
  ``\\(`` ``\\)`` ``\\[`` ``\\]`` that MathJax did not typeset; code excluded),
- an error in the browser console (a failed request among them),
- an internal link whose file or ``#anchor`` does not exist,
- a figure without a caption, or a content image outside a captioned figure or without alt text,
- a table cell that ends in ``...`` (a cut value),
- an unresolved reference or citation (docutils' ``problematic`` nodes, raw ``{cite}`` roles).

``costeff-same check-site`` runs it from the command line; ``tests/test_notebooks.py`` runs it on
the smoke-profile book.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Debian's executables (``make browser`` installs them)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: how long a page may take to load and typeset (seconds)
PAGE_TIMEOUT_S = 30

_RAW_TEX = re.compile(r"\$+|\\[A-Za-z]{2,}|\\[()\[\]]")
_RAW_ROLE = re.compile(r"\{(cite|doc|ref|numref|download|glue)(:[a-z]+)*\}")

#: in the page: wait for MathJax (where the page loads it) to finish typesetting
_WAIT_FOR_MATH = """
const done = arguments[arguments.length - 1];
const start = Date.now();
(function poll() {
  const wants = document.querySelector('script[src*="mathjax"]') !== null;
  const mj = window.MathJax;
  if (document.readyState === "complete" && (!wants || (mj && mj.startup && mj.startup.promise))) {
    (wants ? mj.startup.promise : Promise.resolve()).then(() => done(true), e => done(String(e)));
  } else if (Date.now() - start > arguments[0] * 1000) {
    done(wants ? "MathJax did not start" : "the page did not finish loading");
  } else {
    setTimeout(poll, 100);
  }
})();
"""

#: in the page: everything the checks read, as one JSON-able object
_INSPECT = """
const main = document.querySelector("main") || document.body;
const caption = f => (f && f.querySelector("figcaption")) ? f.querySelector("figcaption").innerText.trim() : "";
const prose = main.cloneNode(true);
prose.querySelectorAll("pre, code, script, style, mjx-container, .MathJax").forEach(e => e.remove());
return {
  images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src, loaded: i.complete && i.naturalWidth > 0,
                                                content: main.contains(i), alt: (i.getAttribute("alt") || "").trim(),
                                                captioned: caption(i.closest("figure")) !== ""})),
  figures: Array.from(main.querySelectorAll("figure")).map(f => ({id: f.id, caption: caption(f)})),
  text: prose.innerText,
  links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href),
  cells: Array.from(main.querySelectorAll("td, th")).map(c => c.innerText.trim()),
  problematic: Array.from(main.querySelectorAll(".problematic")).map(e => e.innerText.trim()),
};
"""


@dataclass(frozen=True)
class Problem:
    """One thing a reader would see broken: the page (path under the site), the check, the detail."""

    page: str
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.check}: {self.detail}"


def pages(html_dir: Path) -> list[str]:
    """The site's pages: every ``*.html`` under ``html_dir`` outside Sphinx's ``_``-folders, as
    paths relative to it (``book/methods.html``).

    Raises:
        FileNotFoundError: when ``html_dir`` has no ``index.html`` (the book is not built).
    """
    html_dir = Path(html_dir)
    if not (html_dir / "index.html").is_file():
        raise FileNotFoundError(f"no built site at {html_dir} (index.html missing); run `make html` first")
    return sorted(str(p.relative_to(html_dir)) for p in html_dir.rglob("*.html")
                  if not any(part.startswith("_") for part in p.relative_to(html_dir).parts))


@contextmanager
def _serve(html_dir: Path) -> Iterator[str]:
    """``html_dir`` on ``http://127.0.0.1:<free port>`` (a thread), its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # one line per request is noise here
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(html_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def browser(window: tuple[int, int] = (1280, 1600)) -> Iterator[object]:
    """Headless Chromium with the web unreachable (its proxy a closed port; loopback is not
    proxied), its console log recorded; a Selenium ``WebDriver``.

    Raises:
        FileNotFoundError: when Debian's ``chromium`` or ``chromedriver`` is missing (``make browser``
            installs them).
    """
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not Path(exe).is_file():
            raise FileNotFoundError(f"{exe} not found; install Debian's chromium and chromium-driver "
                                    "(`make browser`)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for a driver online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={window[0]},{window[1]}", "--proxy-server=http://127.0.0.1:9",
                "--no-first-run", "--disable-background-networking"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(PAGE_TIMEOUT_S + 5)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _anchors(path: Path) -> set[str]:
    """The ids an HTML file defines."""
    return set(re.findall(r'\bid="([^"]+)"', path.read_text(encoding="utf-8", errors="replace")))


def check_page(driver, base: str, html_dir: Path, page: str, screenshot: Path | None = None) -> list[Problem]:
    """Open ``page`` (a path under ``html_dir``, served at ``base``) and report its problems
    (the list in this module's docstring); save a PNG of the viewport to ``screenshot`` if given."""
    driver.get(base + page)
    problems = []
    waited = driver.execute_async_script(_WAIT_FOR_MATH, PAGE_TIMEOUT_S)
    if waited is not True:
        problems.append(Problem(page, "load", str(waited)))
    seen = driver.execute_script(_INSPECT)
    if screenshot is not None:
        driver.save_screenshot(str(screenshot))
    for image in seen["images"]:
        if not image["loaded"]:
            problems.append(Problem(page, "image not loaded", image["src"]))
        if image["content"] and not image["alt"]:
            problems.append(Problem(page, "image without alt text", image["src"]))
        if image["content"] and not image["captioned"]:
            problems.append(Problem(page, "image outside a captioned figure", image["src"]))
    for figure in seen["figures"]:
        if not figure["caption"]:
            problems.append(Problem(page, "figure without caption", figure["id"] or "(no id)"))
    for match in sorted(set(_RAW_TEX.findall(seen["text"]))):
        problems.append(Problem(page, "raw TeX visible", match))
    for match in sorted({m.group(0) for m in _RAW_ROLE.finditer(seen["text"])}):
        problems.append(Problem(page, "unresolved role visible", match))
    for text in seen["problematic"]:
        problems.append(Problem(page, "unresolved reference", text))
    for cell in seen["cells"]:
        if cell.endswith(("...", "\u2026")):
            problems.append(Problem(page, "table cell cut", cell[-60:]))
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            problems.append(Problem(page, "console error", entry.get("message", "")[:300]))
    for href in sorted(set(seen["links"])):
        if not href.startswith(base):
            continue
        parts = urlsplit(href)
        target = html_dir / unquote(parts.path[len(urlsplit(base).path):])
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(Problem(page, "broken link", href[len(base):]))
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _anchors(target):
            problems.append(Problem(page, "broken anchor", href[len(base):]))
    return problems


def check_site(html_dir: Path, only: list[str] | None = None, screenshots: Path | None = None) -> list[Problem]:
    """Every page of the built site (or the pages in ``only``) through :func:`check_page`, in one
    browser; screenshots (``<page>.png``, ``/`` as ``-``) into ``screenshots`` if given.

    Raises:
        FileNotFoundError: no built site, a page of ``only`` missing, or no Chromium (see :func:`browser`).
    """
    html_dir = Path(html_dir).resolve()
    every = pages(html_dir)
    missing = [p for p in only or [] if p not in every]
    if missing:
        raise FileNotFoundError(f"no page {', '.join(missing)} in {html_dir}; pages: {', '.join(every)}")
    if screenshots is not None:
        Path(screenshots).mkdir(parents=True, exist_ok=True)
    problems = []
    with _serve(html_dir) as base, browser() as driver:
        for page in only or every:
            shot = Path(screenshots) / (page.replace("/", "-") + ".png") if screenshots is not None else None
            problems += check_page(driver, base, html_dir, page, shot)
    return problems
