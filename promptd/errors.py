"""The one error hierarchy.

`PromptdError` is what the request path raises; `render()` turns it into the
OpenAI-shaped body in exactly one place. `ConfigError` is what loading raises:
a list of one-line problems (`file: path: message`) that the CLI prints as is.
"""

from __future__ import annotations

from typing import Any

import orjson


class ErrorCode:
    __slots__ = ("status", "when")

    def __init__(self, status: int, when: str) -> None:
        self.status = status
        self.when = when


# Every error code promptd answers with: its status and when. The README's error
# table and tests/test_docs.py are made from this table; an error with a code
# that is not here cannot be constructed.
ERROR_CODES: dict[str, ErrorCode] = {
    "invalid_json": ErrorCode(
        400, "the body is not a JSON object (or a compressed body does not decode, or nests too deep)"
    ),
    "invalid_prompt_fields": ErrorCode(
        400,
        "prompt fields of the wrong type, conflicting, without a prompt id, or sent to a path that does not compile prompts",
    ),
    "invalid_variables": ErrorCode(
        400,
        'missing / mistyped / not in enum / a media value of the wrong shape; `error.details` lists every problem: `{"variable", "problem", "expected"}`',
    ),
    "malformed_request": ErrorCode(
        400,
        "the HTTP request itself is malformed (request line, a header); logged without its bytes, the connection closed",
    ),
    "invalid_path": ErrorCode(
        400,
        "a `/v1/` path with dot segments (`..`, `%2e`), empty segments or an absolute-form target: refused, never forwarded",
    ),
    "invalid_messages": ErrorCode(400, "`messages` (or `input`) is not an array (prompt requests)"),
    "invalid_model": ErrorCode(400, "`model` is not a string (prompt requests)"),
    "model_required": ErrorCode(400, "neither the prompt version nor the request names a model"),
    "no_upstream_for_model": ErrorCode(400, "no upstream's `models` glob matches the model"),
    "unauthorized": ErrorCode(401, "`auth.api_keys` is set and the bearer key is missing or wrong"),
    "prompt_not_found": ErrorCode(404, "no prompt (or alias) with that id; the message lists what exists"),
    "prompt_version_not_found": ErrorCode(404, "the prompt has no such version (or version alias)"),
    "prompt_environment_not_found": ErrorCode(404, "the prompt has no such environment"),
    "not_found": ErrorCode(
        404, "no such endpoint (anything under `/v1/prompts` included), or a request the `echo` upstream cannot answer"
    ),
    "method_not_allowed": ErrorCode(405, "the path exists but not for this method"),
    "request_timeout": ErrorCode(
        408, "the body did not arrive within `server.client_timeout_s`; the connection is closed"
    ),
    "body_too_large": ErrorCode(413, "the body exceeds `server.max_body_bytes` (refused without reading it whole)"),
    "internal_error": ErrorCode(500, "a bug in promptd; logged with its traceback, the process keeps serving"),
    "upstream_unreachable": ErrorCode(502, "connect failure, or the connection reset before the answer started"),
    "shutting_down": ErrorCode(
        503, "sent as the final SSE event of a stream still open when `shutdown_grace_s` ran out"
    ),
    "upstream_timeout": ErrorCode(504, "`connect_timeout_s` or `read_timeout_s` ran out"),
}


def errors_markdown() -> str:
    lines = ["| status | code | when |", "|---|---|---|"]
    lines += [f"| {entry.status} | `{code}` | {entry.when} |" for code, entry in ERROR_CODES.items()]
    return "\n".join(lines) + "\n"


class PromptdError(Exception):
    """An error promptd answers itself: an OpenAI error code of `ERROR_CODES`,
    which gives its HTTP status (and the error type: `api_error` for 5xx)."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        param: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers
        self.status = ERROR_CODES[code].status
        self.error_type = "api_error" if self.status >= 500 else "invalid_request_error"
        self.message = message
        self.code = code
        self.param = param
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
            "code": self.code,
        }
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}

    def render(self) -> bytes:
        return orjson.dumps(self.to_dict())


class BadRequest(PromptdError):
    pass


class Unauthorized(PromptdError):
    pass


class NotFound(PromptdError):
    pass


class MethodNotAllowed(PromptdError):
    pass


class BodyTooLarge(PromptdError):
    pass


class InternalError(PromptdError):
    """A bug in promptd: logged with its traceback; the process keeps serving."""

    def __init__(self) -> None:
        super().__init__("internal error in promptd; see its log", code="internal_error")


class UpstreamUnreachable(PromptdError):
    pass


class UpstreamTimeout(PromptdError):
    pass


class ConfigError(Exception):
    """Loading failed. `problems` holds one line per problem, ready to print."""

    def __init__(self, problems: list[str], warnings: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.warnings = tuple(warnings)  # found on the way; `validate` shows them beside the problems
