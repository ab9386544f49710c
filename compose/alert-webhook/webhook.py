"""Stand-in for a real alert receiver: logs every Alertmanager webhook notification, one line per alert.

compose/alertmanager/alertmanager.yml posts to http://alert-webhook:5001/ (a placeholder): in the
compose stack this tiny service answers there, so `docker compose logs -f alert-webhook` shows what
would be delivered. Replace the URL in alertmanager.yml with your real receiver (see docs/alerts.md).
Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = min(int(self.headers.get("content-length") or 0), MAX_BODY)
        try:
            payload: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        for alert in payload.get("alerts", []):
            labels = alert.get("labels", {})
            summary = alert.get("annotations", {}).get("summary", "")
            print(
                f"[{payload.get('receiver', '?')}] {alert.get('status', '?').upper():8} "
                f"{labels.get('alertname', '?')} severity={labels.get('severity', '?')} "
                f"source={labels.get('source', '-')}: {summary}",
                flush=True,
            )
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:  # healthcheck
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: Any) -> None:  # the alert lines are the log
        return


def main() -> None:
    port = int(os.environ.get("PORT", "5001"))
    print(f"alert-webhook listening on :{port}", file=sys.stderr, flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
