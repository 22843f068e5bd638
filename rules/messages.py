"""Chinese text for pydantic's validation errors, so a person reads the reason in both languages."""

from __future__ import annotations

from typing import Any

_ZH_BY_TYPE = {
    "missing": "必填项缺失",
    "extra_forbidden": "不允许的字段",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数（金额以分为单位，不能有小数）",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "string_type": "应为文本",
    "string_too_short": "内容太短",
    "string_too_long": "内容太长",
    "string_pattern_mismatch": "格式不正确",
    "date_type": "应为日期（YYYY-MM-DD）",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "greater_than_equal": "数值太小",
    "greater_than": "数值太小",
    "less_than_equal": "数值太大",
    "less_than": "数值太大",
    "enum": "不是允许的取值",
    "literal_error": "不是允许的取值",
    "list_type": "应为列表",
    "too_long": "项目太多",
    "too_short": "项目太少",
    "model_type": "应为对象",
    "dict_type": "应为对象",
    "json_invalid": "不是有效的 JSON",
    "value_error": "取值无效",
}


def field_path(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location) or "(body)"


def reason_zh(error: dict[str, Any]) -> str:
    zh = _ZH_BY_TYPE.get(error["type"], "输入无效")
    ctx = error.get("ctx") or {}
    if error["type"] in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), None)
        if bound is not None:
            return f"{zh}（界限 {bound}）"
    if error["type"] in ("enum", "literal_error") and "expected" in ctx:
        return f"{zh}：{ctx['expected']}"
    return zh
