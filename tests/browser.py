"""Headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools protocol, for page tests.

No browser download, no driver: Chromium is started with ``--remote-debugging-port=0`` and a fresh
profile, the port is read from the profile's ``DevToolsActivePort``, and one page target is driven
over a WebSocket (the ``websockets`` package). Every request the page makes is recorded from the
Network domain (:attr:`Chromium.requests`); console messages, exceptions and log entries (CSP
violations among them) are kept as well. Host names other than 127.0.0.1 do not resolve
(``--host-resolver-rules``), so a page that tried to reach out would fail rather than leak; the
recorded requests are what tests assert on.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.infra import stop_process

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, profile: Path, *, width: int = 1400, height: int = 1000, log: Path | None = None) -> None:
        if shutil.which(CHROMIUM) is None:
            raise BrowserError(f"{CHROMIUM} not found: apt-get install chromium")
        self.profile = profile
        self.width, self.height = width, height
        self.log = log or profile.with_suffix(".log")
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: ClientConnection | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> Chromium:
        self.profile.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self._proc = subprocess.Popen(
                [
                    CHROMIUM,
                    *FLAGS,
                    f"--user-data-dir={self.profile}",
                    f"--window-size={self.width},{self.height}",
                    "about:blank",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        port = self._port(timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.loads(response.read())
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ws is not None:
            self._ws.close()
        if self._proc is not None:
            stop_process(self._proc, timeout=10)

    def _port(self, timeout: float) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise BrowserError(f"chromium exited: {self.log.read_text()[-2000:]}")
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            time.sleep(0.1)
        raise BrowserError("chromium did not open its DevTools port")

    # -- the protocol -------------------------------------------------------------------------------

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        """Send one command; keep the events that arrive before its answer."""
        assert self._ws is not None
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self._ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if message.get("id") == message_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append((message["method"], message.get("params", {})))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, *, timeout: float, what: str) -> Any:
        """Poll a JavaScript expression until it is truthy (a guard against a hang, not a speed claim)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {what}: {expression}")
            time.sleep(0.25)

    def navigate(self, url: str, *, timeout: float = 60) -> None:
        self.call("Page.navigate", url=url)
        self.wait_until("document.readyState === 'complete'", timeout=timeout, what=f"{url} loaded")

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """A PNG of the page (its whole height with ``full_page``)."""
        if full_page:
            height = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=self.width,
                height=max(height, self.height),
                deviceScaleFactor=1,
                mobile=False,
            )
            time.sleep(0.5)  # let the resized page settle before the capture
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    # -- what the page did --------------------------------------------------------------------------

    @property
    def requests(self) -> list[str]:
        """Every URL the page requested (documents, scripts, styles, images, fetches), in order."""
        self.evaluate("0")  # collect the events that arrived meanwhile
        return [p["request"]["url"] for m, p in self.events if m == "Network.requestWillBeSent"]

    @property
    def problems(self) -> list[str]:
        """Exceptions, console errors and error log entries (a CSP violation is one)."""
        self.evaluate("0")
        out = []
        for method, params in self.events:
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append(f"console: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url')})")
        return out
