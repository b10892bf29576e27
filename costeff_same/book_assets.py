"""A Sphinx extension of the book's build: each of a page's scripts included once.

With Sphinx 7.4, the inline configuration scripts that ``sphinx-thebe`` and
``sphinx-togglebutton`` add while documents are read reach the page twice; the second
``const THEBE_JS_URL`` is a JavaScript syntax error in the console of every page.
``_config.yml`` names this module in ``sphinx.extra_extensions``.
"""

from __future__ import annotations

from typing import Any


def _each_script_once(app, pagename: str, templatename: str, context: dict[str, Any], doctree) -> None:
    """Drop the repeats from the page's ``script_files`` (same file or body, same attributes; an
    inline script's file is ``None`` or ``""`` depending on who added it)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def setup(app) -> dict[str, Any]:
    """Sphinx's entry point: run after every other ``html-page-context`` handler."""
    app.connect("html-page-context", _each_script_once, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
