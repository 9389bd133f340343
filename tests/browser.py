"""The report as a browser shows it: headless Chromium (Debian's ``chromium``) loads a copy
of the page with a probe script first in <head>, which records console errors, failed
resource loads and, after the load event, each image's natural size and the numbers in the
tables; ``--dump-dom`` returns the page with the probe's findings in it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

PROBE = """<script>
window.__probe = {errors: [], failed: []};
const originalError = console.error;
console.error = (...args) => { window.__probe.errors.push(args.map(String).join(' ')); originalError(...args); };
window.addEventListener('error', e => {
  if (e.target && e.target !== window) window.__probe.failed.push(e.target.src || e.target.href || String(e.target));
  else window.__probe.errors.push(String(e.message));
}, true);
window.addEventListener('load', () => {
  const p = window.__probe;
  p.images = [...document.images].map(i => ({
    src: i.getAttribute('src'), width: i.naturalWidth, height: i.naturalHeight, complete: i.complete
  }));
  p.tables = [...document.querySelectorAll('table')].map(t =>
    [...t.querySelectorAll('td')].filter(td => /^[-+]?\\d+(\\.\\d+)?/.test(td.textContent.trim())).length);
  const out = document.createElement('pre');
  out.id = '__probe';
  out.textContent = JSON.stringify(p);
  document.body.appendChild(out);
});
</script>"""
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def probe(page: Path, profile: Path) -> dict:
    """What the browser saw on ``page`` (a copy with the probe is written beside it)."""
    probed = page.with_name(f".probe-{page.name}")
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    try:
        result = subprocess.run(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                probed.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        probed.unlink()
    found = re.search(r'<pre id="__probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the probe did not report (chromium exit {result.returncode}):\n{result.stderr[-2000:]}"
    return json.loads(
        found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    )


def screenshot(page: Path, out: Path, profile: Path, width: int = 1200, height: int = 9000) -> Path:
    """A full-page PNG: rendered into a tall window, the blank space below the page cut off."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={out.resolve()}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(out).convert("L"))
    used = np.nonzero((pixels < 250).any(axis=1))[0]
    Image.open(out).crop((0, 0, width, min(height, int(used[-1]) + 40 if len(used) else height))).save(out)
    return out


def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (CI keeps the folder)."""
    return Path(os.environ.get("SR3BENCH_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
