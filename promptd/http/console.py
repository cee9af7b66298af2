"""The prompt console at `/ui` (README "The prompt console"): a read-only page
that uses promptd's own JSON endpoints. Its three files are read once, kept in
memory and served with validators; nothing in them comes from outside this
origin, and the Content-Security-Policy says so to the browser."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

from promptd.compiler.fields import clip
from promptd.errors import NotFound
from promptd.http.envelope import Exchange
from promptd.state import AppState

STATIC = Path(__file__).with_name("static")

# Scripts and styles only from the page's own files, calls only to its own origin,
# no inline code, no plugins, no framing, no form posts elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Asset:
    __slots__ = ("body", "content_type", "etag", "cache_control")

    def __init__(self, body: bytes, content_type: str, cache_control: str) -> None:
        self.body = body
        self.content_type = content_type
        self.etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
        self.cache_control = cache_control


def _load() -> dict[str, Asset]:
    """The page names its script and stylesheet with a content hash (`?v=`), so
    they can be cached for good; the page itself is revalidated every time."""
    js = (STATIC / "console.js").read_bytes()
    css = (STATIC / "console.css").read_bytes()
    assets = {
        "console.js": Asset(js, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"),
        "console.css": Asset(css, "text/css; charset=utf-8", "public, max-age=31536000, immutable"),
    }
    page = (STATIC / "console.html").read_text()
    page = page.replace("{{js}}", assets["console.js"].etag.strip('"')).replace(
        "{{css}}", assets["console.css"].etag.strip('"')
    )
    assets[""] = Asset(page.encode(), "text/html; charset=utf-8", "no-cache")
    return assets


_ASSETS: dict[str, Asset] | None = None


def assets() -> dict[str, Asset]:
    global _ASSETS
    if _ASSETS is None:
        _ASSETS = _load()
    return _ASSETS


def _serve(request: web.Request, asset: Asset) -> web.Response:
    headers = {**_SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": asset.cache_control}
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})


async def page(request: web.Request, state: AppState, exchange: Exchange) -> web.StreamResponse:
    return _serve(request, assets()[""])


async def asset(request: web.Request, state: AppState, exchange: Exchange) -> web.StreamResponse:
    found = assets().get(request.match_info["asset"])
    if found is None or not request.match_info["asset"]:
        raise NotFound(f"GET {clip(request.path)}: no such console file", code="not_found")
    return _serve(request, found)
