"""Routes: a path pattern to an endpoint, compiled once.

Patterns use aiohttp's syntax: `{name}` matches one path segment, `{name:regex}`
what the regex matches. Static paths are found with one dictionary lookup;
patterns are tried in the order they were added. Paths are matched
percent-decoded; `request.match_info` gets the named parts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptd.http.messages import Request, Response, StreamResponse

Endpoint = Callable[["Request"], Awaitable["Response | StreamResponse"]]

_PART = re.compile(r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<regex>[^{}]+))?\}")


def compile_path(path: str) -> re.Pattern[str]:
    """A route pattern as a regex; a malformed one raises ValueError (at start-up)."""
    if not path.startswith("/"):
        raise ValueError(f"route {path!r} must start with /")
    pattern, end = [], 0
    for part in _PART.finditer(path):
        pattern.append(re.escape(path[end : part.start()]))
        pattern.append(f"(?P<{part['name']}>{part['regex'] or '[^{}/]+'})")
        end = part.end()
    rest = path[end:]
    if "{" in rest or "}" in rest:
        raise ValueError(f"route {path!r}: unbalanced braces")
    pattern.append(re.escape(rest))
    return re.compile("".join(pattern))


class Routes:
    __slots__ = ("_static", "_patterns", "_fallback")

    def __init__(self, fallback: Endpoint) -> None:
        self._static: dict[str, Endpoint] = {}
        self._patterns: list[tuple[re.Pattern[str], Endpoint]] = []
        self._fallback = fallback  # what answers a path no route matches

    def add(self, path: str, endpoint: Endpoint) -> None:
        if "{" in path:
            self._patterns.append((compile_path(path), endpoint))
        elif path in self._static:
            raise ValueError(f"route {path!r} added twice")
        else:
            self._static[path] = endpoint

    def dispatch(self, request: Request) -> Awaitable[Response | StreamResponse]:
        path = request.path
        endpoint = self._static.get(path)
        if endpoint is not None:
            return endpoint(request)
        for pattern, endpoint in self._patterns:
            found = pattern.fullmatch(path)
            if found is not None:
                request.match_info = found.groupdict()
                return endpoint(request)
        return self._fallback(request)
