"""The prompt console at `/ui` (README "The prompt console"): a read-only page
that uses promptd's own JSON endpoints. Its three files are read once, kept in
memory and served with validators; nothing in them comes from outside this
origin, and the Content-Security-Policy says so to the browser."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from promptd.compiler.fields import clip
from promptd.errors import NotFound
from promptd.http.envelope import Exchange
from promptd.http.messages import Request, Response, StreamResponse
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


@functools.cache
def _files() -> tuple[Asset, dict[str, Asset]]:
    """The page, and the files it loads by name, read once (when first asked for).
    The page names its script and stylesheet with a content hash (`?v=`), so they
    can be cached for good; the page itself is revalidated every time."""
    immutable = "public, max-age=31536000, immutable"
    files = {
        "console.js": Asset((STATIC / "console.js").read_bytes(), "text/javascript; charset=utf-8", immutable),
        "console.css": Asset((STATIC / "console.css").read_bytes(), "text/css; charset=utf-8", immutable),
    }
    page = (STATIC / "console.html").read_text()
    for placeholder, name in (("{{js}}", "console.js"), ("{{css}}", "console.css")):
        page = page.replace(placeholder, files[name].etag.strip('"'))
    return Asset(page.encode(), "text/html; charset=utf-8", "no-cache"), files


def _serve(request: Request, asset: Asset) -> Response:
    headers = {**_SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": asset.cache_control}
    if asset.etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    return Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})


async def page(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    return _serve(request, _files()[0])


async def asset(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    found = _files()[1].get(request.match_info["asset"])
    if found is None:
        raise NotFound(f"GET {clip(request.path)}: no such console file", code="not_found")
    return _serve(request, found)
