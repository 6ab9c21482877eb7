"""Open an HTML file in headless Chromium: take a screenshot, collect what went wrong.

Two checks, both of which a broken page fails (see ``test_browser_checks_catch_a_broken_page``):

- :func:`screenshot` runs Chromium with its log on stderr; every message the page writes to
  the console (an uncaught exception, a resource that failed to load) appears there as a
  ``CONSOLE`` line, which :func:`console_messages` returns.
- :func:`probe` renders a copy of the page with a small script first in ``<head>`` that records
  window errors, failed resources and images that did not decode, and dumps the DOM with the
  result; a page whose scripts cannot run at all leaves no result, which counts as a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]

PROBE = """<script>
(function () {
  var problems = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      problems.push("resource failed: " + String(t.src || t.href).slice(0, 60));
    } else {
      problems.push("error: " + e.message);
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    problems.push("unhandled rejection: " + e.reason);
  });
  var consoleError = console.error;
  console.error = function () {
    problems.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    images.forEach(function (im) {
      if (!im.complete || im.naturalWidth === 0) problems.push("image not rendered: " + im.alt);
    });
    var out = document.createElement("pre");
    out.id = "__probe__";
    out.textContent = JSON.stringify({problems: problems, images: images.length});
    document.body.appendChild(out);
  });
})();
</script>"""
PROBE_RESULT = re.compile(r'<pre id="__probe__">(.*?)</pre>', re.S)
CONSOLE_LINE = re.compile(r":CONSOLE[:(]\d*\)?\]\s*(.*)")


def find_chromium() -> str | None:
    """Path of the browser: ``$BENCH_CHROMIUM``, else ``chromium`` or ``chromium-browser``; None if absent."""
    configured = os.environ.get("BENCH_CHROMIUM")
    if configured:
        return shutil.which(configured)  # None when it does not exist: the test says so
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(browser: str, args: list[str], *, timeout: float = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def screenshot(browser: str, page: Path, png: Path, *, size=(1280, 2400)) -> str:
    """Save a screenshot of ``page`` to ``png``; return Chromium's log (stderr)."""
    done = _run(browser, ["--enable-logging=stderr", "--v=0", f"--screenshot={png}",
                          f"--window-size={size[0]},{size[1]}", Path(page).resolve().as_uri()])
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot (status {done.returncode}): "
                           f"{done.stderr[-2000:]}")
    return done.stderr


def console_messages(log: str) -> list[str]:
    """The page's console messages found in a Chromium log."""
    return [match.group(1) for match in map(CONSOLE_LINE.search, log.splitlines()) if match]


def probe(browser: str, page: Path, workdir: Path) -> dict:
    """Render a copy of ``page`` with :data:`PROBE` injected; return its findings.

    Returns
    -------
    dict
        ``{"problems": [...], "images": count}``; ``problems`` holds one line per error and
        is ``["probe did not run"]`` when the page gave no result.
    """
    html = Path(page).read_text(encoding="utf-8")
    head = re.search(r"<head[^>]*>", html, re.I)
    at = head.end() if head else 0
    probed = Path(workdir) / ("probed-" + Path(page).name)
    probed.write_text(html[:at] + PROBE + html[at:], encoding="utf-8")
    done = _run(browser, ["--dump-dom", "--virtual-time-budget=10000", probed.resolve().as_uri()])
    found = PROBE_RESULT.search(done.stdout)
    if not found:
        return {"problems": ["probe did not run"], "images": 0}
    return json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&quot;", '"').replace("&amp;", "&"))
