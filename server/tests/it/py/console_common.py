"""Running a Playwright script of `../js/` against the console: in its own
Chromium profile, bounded in time, and with no browser left behind."""

import os
import shutil
import signal
import subprocess
import tempfile

from video_common import log

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js")
CHROMIUM = "/usr/bin/chromium"


def check_browser(modules):
    for path, what in [
        (CHROMIUM, "Debian's chromium (make deps installs it)"),
        (os.path.join(modules, "playwright-core", "index.mjs"), "playwright-core (make deps installs it)"),
    ]:
        assert os.path.exists(path), f"{path} is missing: {what}"
    assert shutil.which("node"), "node is missing (make deps installs it)"


def kill_chromium_of(profile):
    """SIGKILLs what still runs with the profile dir; how many. The script
    closes its Chromium, which also ends when the script dies (its DevTools
    pipe closes); this makes sure, whatever went wrong."""
    killed = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(profile.encode() in arg for arg in argv if arg.startswith(b"--user-data-dir")):
            try:
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


def run_browser_script(script, modules, args, timeout):
    """Runs `node ../js/<script> MODULES PROFILE ARGS...`, asserting that it
    said `ok: <script>`; returns its output."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        try:
            result = subprocess.run(
                ["node", os.path.join(JS, script), modules, profile, *args],
                capture_output=True, timeout=timeout, text=True,
            )
            output = result.stdout + result.stderr
        except subprocess.TimeoutExpired as e:
            # TimeoutExpired keeps bytes even when the run asked for text.
            printed = [o.decode(errors="replace") if isinstance(o, bytes) else o or "" for o in (e.stdout, e.stderr)]
            output = f"{script} ran over {timeout} s\n" + "".join(printed)
            result = None
        finally:
            left = kill_chromium_of(profile)
    log(output)
    if left:
        log(f"killed {left} Chromium processes left by {script}")
    assert result is not None and result.returncode == 0, f"{script} failed:\n{output}"
    assert f"ok: {script}" in result.stdout.splitlines(), output
    return output
