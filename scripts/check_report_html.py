#!/usr/bin/env python3
"""Open a demo ``report.html`` in headless Chromium, check that every video loads and plays, save a screenshot.

Usage::

    apt-get install -y chromium          # Debian's package; any Chromium/Chrome binary works (--chromium PATH)
    python scripts/check_report_html.py outputs/demo/report.html --screenshot docs/img/report_html.png

It drives the browser over the DevTools protocol (a websocket; ``websockets`` is already a
dependency): for each ``<video>`` it waits until the browser can play it, plays it for a moment
and checks that its clock moved and that it has no error. Prints one JSON object; exits 1 when a
video fails or the page has none, 2 when Chromium cannot be started.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHECK_VIDEOS = """
(async () => {
  const videos = [...document.querySelectorAll('video')];
  const results = [];
  for (const [i, v] of videos.entries()) {
    v.scrollIntoView();
    const ready = await new Promise(resolve => {
      if (v.readyState >= 3) return resolve('canplay');
      v.addEventListener('canplay', () => resolve('canplay'), {once: true});
      v.addEventListener('error', () => resolve('error'), {once: true});
      setTimeout(() => resolve('timeout'), 15000);
    });
    let played = false, error = v.error ? v.error.message || String(v.error.code) : null;
    if (ready === 'canplay') {
      // From the start and without looping, so the clock can only move forward while it plays.
      v.pause(); v.loop = false; v.currentTime = 0;
      try { await v.play(); } catch (e) { error = String(e); }
      await new Promise(r => setTimeout(r, 1200));
      played = v.currentTime > 0.5;
    }
    results.push({index: i, ready, played, error, width: v.videoWidth, height: v.videoHeight,
                  duration: v.duration, current_time: v.currentTime});
  }
  window.scrollTo(0, 0);
  return JSON.stringify(results);
})()
"""


async def _cdp(ws_url: str, screenshot: Path | None) -> list[dict]:
    import websockets

    async with websockets.connect(ws_url, max_size=64 * 2**20) as ws:
        next_id = 0

        async def call(method: str, **params):
            nonlocal next_id
            next_id += 1
            await ws.send(json.dumps({"id": next_id, "method": method, "params": params}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == next_id:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return msg["result"]

        await call("Emulation.setDeviceMetricsOverride", width=1100, height=1500, deviceScaleFactor=1, mobile=False)
        for _ in range(100):  # until the page (several MB of inline video) has loaded
            state = await call("Runtime.evaluate", expression="document.readyState", returnByValue=True)
            if state["result"]["value"] == "complete":
                break
            await asyncio.sleep(0.2)
        result = await call("Runtime.evaluate", expression=CHECK_VIDEOS, awaitPromise=True, returnByValue=True)
        videos = json.loads(result["result"]["value"])
        if screenshot is not None:
            shot = await call("Page.captureScreenshot", format="png")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        return videos


def _page_ws(port_file: Path, proc: subprocess.Popen, deadline: float) -> str:
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with code {proc.returncode}")
        if port_file.is_file() and port_file.read_text().strip():
            port = port_file.read_text().split()[0]
            try:
                targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2).read())
            except OSError:
                time.sleep(0.2)
                continue
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.2)
    raise RuntimeError("chromium did not open its DevTools port in time")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path, help="report.html")
    ap.add_argument("--screenshot", type=Path, help="save a PNG of the page here")
    ap.add_argument("--chromium", default=None, help="browser binary (default: chromium, chromium-browser or google-chrome)")
    args = ap.parse_args(argv)
    binary = args.chromium or next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
                                   None)
    if binary is None or not args.report.is_file():
        print(json.dumps({"error": "no chromium binary (apt-get install -y chromium)" if binary is None
                          else f"{args.report}: no such file"}))
        return 2
    with tempfile.TemporaryDirectory() as profile:
        cmd = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio", "--no-first-run",
               "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0",
               f"--user-data-dir={profile}", args.report.resolve().as_uri()]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ws_url = _page_ws(Path(profile) / "DevToolsActivePort", proc, time.time() + 60)
            videos = asyncio.run(_cdp(ws_url, args.screenshot))
        except RuntimeError as exc:
            print(json.dumps({"error": str(exc)}))
            return 2
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    ok = bool(videos) and all(v["ready"] == "canplay" and v["played"] and not v["error"] for v in videos)
    print(json.dumps({"report": str(args.report), "browser": binary, "videos": videos, "all_play": ok,
                      "screenshot": str(args.screenshot) if args.screenshot else None}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
