"""Reference notification channel: keeps what the gateway sends, and lists it.

``POST /notifications`` takes one notification (JSON, with ``id``, ``kind``,
``recipient``, ``title``, ``text``, ``link``) and its ``Idempotency-Key`` header, which
must equal its ``id``. A key it has is answered 200 with ``{"duplicate": true}`` and
kept once; a new one is kept (and appended to the store file, so a restart keeps it)
and answered 201. ``GET /notifications[?recipient=&kind=]`` lists them as JSON, with
how many times each was received; ``GET /`` is a page listing them, newest first, the
citizens' ids shortened.

For tests and the demo, ``POST /_sandbox/outage`` with ``{"down": true}`` makes it
answer 503 to every delivery until ``{"down": false}`` (loopback callers only).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

__all__ = ["NotificationStore", "create_app"]

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class NotificationStore:
    """What the channel received, by idempotency key; on disk when given a file."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self.items: dict[str, dict[str, Any]] = {}
        self.received: dict[str, int] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    item = json.loads(line)
                    self.items[item["id"]] = item
                    self.received[item["id"]] = 1

    def add(self, item: dict[str, Any]) -> bool:
        """Keep `item`; whether it was new."""
        key = str(item["id"])
        self.received[key] = self.received.get(key, 0) + 1
        if key in self.items:
            return False
        self.items[key] = item
        if self._path is not None:
            with self._path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(item, ensure_ascii=False) + "\n")
        return True


def _shown_recipient(recipient: dict[str, Any]) -> str:
    if recipient.get("type") == "citizen":
        personal = str(recipient.get("personalId", ""))
        return f"Công dân …{personal[-4:]}"
    return f"Quản trị {recipient.get('organisation', '')}"


def _page(items: list[dict[str, Any]]) -> str:
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td><strong>{}</strong><br>{}</td></tr>".format(
            html.escape(str(i.get("createdAt", ""))),
            html.escape(str(i.get("kind", ""))),
            html.escape(_shown_recipient(i.get("recipient") or {})),
            html.escape(str((i.get("title") or {}).get("vi", ""))),
            html.escape(str((i.get("text") or {}).get("vi", ""))),
        )
        for i in reversed(items)
    )
    return (
        '<!doctype html><html lang="vi"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Kênh thông báo (sandbox)</title>"
        "<style>body{font-family:sans-serif;margin:1.5rem}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.4rem;vertical-align:top;text-align:left}</style>"
        "<h1>Kênh thông báo (sandbox)</h1>"
        f"<p>{len(items)} thông báo đã nhận.</p>"
        "<table><tr><th>Tạo lúc</th><th>Loại</th><th>Người nhận</th><th>Nội dung</th></tr>"
        f"{rows}</table></html>"
    )


def create_app(store: NotificationStore | None = None) -> FastAPI:
    """The sandbox notification channel."""
    kept = store or NotificationStore()
    app = FastAPI(title="Sandbox notification channel", docs_url=None, redoc_url=None)
    app.state.store = kept
    app.state.down = False

    @app.post("/notifications")
    async def receive(request: Request) -> Response:
        if app.state.down:
            return JSONResponse({"error": "down"}, status_code=503)
        try:
            item = await request.json()
        except ValueError:
            return JSONResponse({"error": "not JSON"}, status_code=400)
        key = request.headers.get("idempotency-key")
        if not isinstance(item, dict) or not key or item.get("id") != key:
            return JSONResponse({"error": "Idempotency-Key must be the id"}, status_code=400)
        if not isinstance(item.get("recipient"), dict) or not item.get("kind"):
            return JSONResponse({"error": "kind and recipient needed"}, status_code=400)
        new = kept.add(item)
        return JSONResponse({"id": key, "duplicate": not new}, status_code=201 if new else 200)

    @app.get("/notifications")
    async def listing(recipient: str | None = None, kind: str | None = None) -> Response:
        found = []
        for key, item in kept.items.items():
            to = item.get("recipient") or {}
            if recipient is not None and recipient not in (
                to.get("personalId"),
                to.get("organisation"),
            ):
                continue
            if kind is not None and item.get("kind") != kind:
                continue
            found.append({**item, "received": kept.received.get(key, 0)})
        return JSONResponse(found)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> Response:
        return HTMLResponse(_page(list(kept.items.values())))

    @app.post("/_sandbox/outage")
    async def outage(request: Request) -> Response:
        if request.client is None or request.client.host not in _LOOPBACK:
            return JSONResponse({"error": "loopback only"}, status_code=403)
        body = await request.json()
        app.state.down = bool(body.get("down"))
        return JSONResponse({"down": app.state.down})

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
