"""The one error hierarchy.

`PromptdError` is what the request path raises; `render()` turns it into the
OpenAI-shaped body in exactly one place. `ConfigError` is what loading raises:
a list of one-line problems (`file: path: message`) that the CLI prints as is.
"""

from __future__ import annotations

from typing import Any

import orjson


class PromptdError(Exception):
    """An error promptd answers itself, with an HTTP status and an OpenAI error code."""

    status = 500
    error_type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        code: str,
        param: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
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
    status = 400


class Unauthorized(PromptdError):
    status = 401


class NotFound(PromptdError):
    status = 404


class BodyTooLarge(PromptdError):
    status = 413


class InternalError(PromptdError):
    """A bug in promptd: logged with its traceback; the process keeps serving."""

    status = 500
    error_type = "api_error"

    def __init__(self) -> None:
        super().__init__("internal error in promptd; see its log", code="internal_error")


class UpstreamUnreachable(PromptdError):
    status = 502
    error_type = "api_error"


class UpstreamTimeout(PromptdError):
    status = 504
    error_type = "api_error"


class ConfigError(Exception):
    """Loading failed. `problems` holds one line per problem, ready to print."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
