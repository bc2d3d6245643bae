"""A real browser opens the HTML report of a real run with a failing cell: headless Chromium
(the Debian package; `.ci/run` installs it) must render the failing cell's timeline with a
non-zero size, report no script or resource errors, and the verdict filter must work.  A
screenshot is saved under the run's results dir.  Skips, saying why, only where no Chromium is
installed.

The page is opened as a copy with a small probe script first in its <head> (it records errors
and, at load, the timeline's size and the filter's effect into a <pre>); ``--dump-dom`` hands the
resulting DOM back."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conformance.htmlreport.render import anchor_of

from .test_plugin_html import CRASH_CELL, run, setup_run

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]
BROWSER_TIMEOUT_S = 90

PROBE = """<script>
window.__probe = {errors: []};
window.addEventListener('error', function (e) {
  var what = e.message || (e.target && (e.target.src || e.target.href)) || 'unknown';
  window.__probe.errors.push('error: ' + what);
}, true);
window.addEventListener('securitypolicyviolation', function (e) { window.__probe.errors.push('csp: ' + e.blockedURI); });
(function () {
  var original = console.error;
  console.error = function () {
    window.__probe.errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
window.addEventListener('load', function () {
  var out = {};
  try {
    var tl = document.getElementById('%(timeline)s');
    var r = tl ? tl.getBoundingClientRect() : null;
    out.found = !!tl;
    out.width = r ? r.width : 0;
    out.height = r ? r.height : 0;
    out.lanes = tl ? tl.querySelectorAll('[data-lane]').length : 0;
    out.frames = tl ? tl.querySelectorAll('.fr').length : 0;
    var cell = document.getElementById('%(cell)s');
    var select = document.querySelector('select[data-filter=verdict]');
    out.visible_before = cell.offsetParent !== null;
    if (!select.querySelector('option[value=pass]')) { select.add(new Option('pass', 'pass')); }  /* a run with no pass */
    select.value = 'pass';
    select.dispatchEvent(new Event('change'));
    out.visible_filtered = cell.offsetParent !== null;
    select.value = '';
    select.dispatchEvent(new Event('change'));
    out.visible_after = cell.offsetParent !== null;
  } catch (exc) {
    window.__probe.errors.push('probe: ' + exc);
  }
  out.errors = window.__probe.errors;
  var pre = document.createElement('pre');
  pre.id = 'browser-probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"chromium did not finish within {BROWSER_TIMEOUT_S}s: {' '.join(cmd)}; "
                                 f"last stderr: {(exc.stderr or b'')[-500:]!r}") from None
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (no `chromium` on PATH nor /usr/bin/chromium); "
                                             ".ci/run installs the Debian package `chromium`")
def test_report_of_a_failing_run_renders_in_chromium(tmp_path):
    setup_run(tmp_path)
    proc = run(tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    run_dir = next((tmp_path / "results").glob("run-*"))
    report = run_dir / "report.html"
    assert report.is_file(), proc.stdout[-2000:]

    cell = anchor_of(CRASH_CELL)
    html = report.read_text(encoding="utf-8")
    probed = run_dir / "report-probed.html"
    probed.write_text(html.replace("<head>", "<head>" + PROBE % {"timeline": f"{cell}-timeline", "cell": cell}, 1),
                      encoding="utf-8")
    dumped = chromium("--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="browser-probe">(.*?)</pre>', dumped.stdout, re.S)
    assert found, f"the probe wrote nothing (exit {dumped.returncode}); stderr tail: {dumped.stderr[-800:]}"
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert probe["errors"] == [], probe["errors"]
    assert probe["found"] and probe["width"] > 300 and probe["height"] > 100, probe
    assert probe["lanes"] >= 4 and probe["frames"] > 0, probe  # 2 incarnations, the fault, calls
    assert probe["visible_before"] and not probe["visible_filtered"] and probe["visible_after"], probe

    shot = run_dir / "browser" / "report.png"
    shot.parent.mkdir()
    taken = chromium(f"--screenshot={shot}", "--window-size=1400,2400", f"{report.as_uri()}#{cell}")
    assert shot.is_file() and shot.stat().st_size > 10_000, f"no screenshot (exit {taken.returncode}): {taken.stderr[-800:]}"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
