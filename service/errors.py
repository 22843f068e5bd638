"""Every error a person sees: JSON with the field and the reason in Chinese and English.

Bad input is a 422 and changes nothing; an action the rules of procedure forbid is a 403/409; the
database or Temporal being unreachable is a 503 with a clear message. No request gives a 500.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError  # no free connection in time
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from rules.messages import field_path, reason_zh

log = structlog.get_logger("api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, zh: str, en: str, field: str | None = None, extra: dict | None = None):
        self.status, self.code, self.zh, self.en, self.field, self.extra = status, code, zh, en, field, extra or {}
        super().__init__(en)

    def body(self) -> dict[str, Any]:
        body = {"error": self.code, "reason_zh": self.zh, "reason_en": self.en}
        if self.field is not None:
            body["field"] = self.field
        return body | self.extra


def invalid(field: str, zh: str, en: str) -> ApiError:
    return ApiError(422, "validation_error", zh, en, field=field,
                    extra={"errors": [{"field": field, "reason_zh": zh, "reason_en": en}]})


def not_found(what_zh: str, what_en: str) -> ApiError:
    return ApiError(404, "not_found", f"{what_zh}不存在", f"{what_en} not found")


FORBIDDEN = ApiError(403, "forbidden", "您没有权限执行此操作", "You are not allowed to do this")
UNAUTHENTICATED = ApiError(401, "unauthenticated", "请先登录", "Sign in first")

_STATUS_TEXT = {
    400: ("请求无效", "Bad request"),
    401: ("请先登录", "Sign in first"),
    403: ("您没有权限执行此操作", "You are not allowed to do this"),
    404: ("资源不存在", "Not found"),
    405: ("不支持该请求方法", "Method not allowed"),
    413: ("请求内容过大", "Request too large"),
    415: ("不支持的内容类型", "Unsupported media type"),
}


def _validation_body(exc: RequestValidationError) -> dict[str, Any]:
    errors = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if p not in ("body", "query", "path", "header", "form")]
        errors.append({"field": field_path(tuple(loc)), "reason_zh": reason_zh(err), "reason_en": err["msg"]})
    first = errors[0] if errors else {"field": "(body)", "reason_zh": "输入无效", "reason_en": "Invalid input"}
    return {"error": "validation_error", **first, "errors": errors}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_validation_body(exc), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        zh, en = _STATUS_TEXT.get(exc.status_code, ("请求失败", str(exc.detail)))
        return JSONResponse({"error": "http_error", "reason_zh": zh, "reason_en": en}, status_code=exc.status_code)

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeoutError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
        return JSONResponse({"error": "database_unavailable", "reason_zh": "数据库暂时不可用，请稍后再试；已提交的申请不会丢失",
                             "reason_en": "The database is unavailable for now; try again shortly. Nothing filed is lost"},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RPCError)
    async def _temporal(request: Request, exc: RPCError) -> JSONResponse:
        log.warning("temporal_unavailable", path=request.url.path, error=str(exc))
        return JSONResponse({"error": "workflow_service_unavailable", "reason_zh": "流程服务暂时不可用，请稍后再试",
                             "reason_en": "The workflow service is unavailable for now; try again shortly"},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Still logged with its traceback; the person gets a 503 they can retry rather than a 500.
        log.exception("unexpected_error", path=request.url.path)
        return JSONResponse({"error": "temporarily_unavailable", "reason_zh": "服务暂时无法处理该请求，请稍后再试",
                             "reason_en": "The service could not handle this request just now; try again shortly"},
                            status_code=503, headers={"Retry-After": "5"})
