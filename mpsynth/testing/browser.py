"""Headless Chromium (Debian's package) driven over the DevTools protocol, a websocket opened with
aiohttp (a dev dependency), so a test can click through a page as a reviewer does and read what
the page shows."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp


def chromium() -> str | None:
    return shutil.which("chromium")


def require_chromium(check: str) -> None:
    """Under `make test` (which installs Debian's chromium and sets MPSYNTH_REQUIRE_BROWSER) a
    missing browser fails the test; elsewhere the test says plainly that it did not run."""
    import pytest

    if chromium():
        return
    message = f"the {check} check did not run: Debian's chromium is not installed"
    if os.environ.get("MPSYNTH_REQUIRE_BROWSER"):
        pytest.fail(message)
    pytest.skip(message + " (make test installs it)")


class Page:
    """One tab of a headless Chromium: navigate, run JavaScript, take a screenshot."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 900) -> None:
        self.profile, self.size = profile, (width, height)
        self.ids = itertools.count(1)

    async def __aenter__(self) -> Page:
        self.process = subprocess.Popen(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--window-size={self.size[0]},{self.size[1]}",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self.http = aiohttp.ClientSession()
        async with self.http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t["type"] == "page")
        self.socket = await self.http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        width, height = self.size  # the viewport itself, not the window around it
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return self

    async def __aexit__(self, *_) -> None:
        await self.socket.close()
        await self.http.close()
        self.process.terminate()
        self.process.wait(timeout=30)

    async def send(self, method: str, **params) -> dict:
        number = next(self.ids)
        await self.socket.send_str(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads((await self.socket.receive(timeout=60)).data)
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        deadline = time.monotonic() + 60
        while await self.js("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not finish loading")
            await asyncio.sleep(0.1)

    async def wait_for(self, expression: str, timeout_s: float = 30.0):
        """The first truthy value of a JavaScript expression, polled (a page that re-renders on
        an event has not necessarily done so when the call that fired it returns)."""
        deadline = time.monotonic() + timeout_s
        while not (value := await self.js(expression)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{expression} stayed false for {timeout_s} s")
            await asyncio.sleep(0.05)
        return value

    async def js(self, expression: str):
        """The value of a JavaScript expression in the page (an exception in it fails the test)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
