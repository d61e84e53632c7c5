"""JSON responses encoded with orjson, and the sandbox's coded errors."""

from typing import Any, Final

import orjson
from fastapi import Response

JSON_MEDIA_TYPE: Final = "application/json"

NOT_FOUND: Final = "KHONG_TIM_THAY"
BAD_ID: Final = "SAI_DINH_DANG"
BAD_FIELD: Final = "TRUONG_KHONG_HOP_LE"
TOO_MANY: Final = "VUOT_GIOI_HAN"
BAD_REQUEST: Final = "YEU_CAU_KHONG_HOP_LE"


def raw_json(content: bytes, status_code: int = 200) -> Response:
    """Already-encoded JSON."""
    return Response(content=content, status_code=status_code, media_type=JSON_MEDIA_TYPE)


def json_response(body: Any, status_code: int = 200) -> Response:
    """``body`` encoded with orjson."""
    return raw_json(orjson.dumps(body), status_code)


def error_response(status_code: int, code: str, message: str, **extra: Any) -> Response:
    """``{"ma_loi": code, "thong_bao": message, **extra}``; never echoes an id value."""
    return json_response({"ma_loi": code, "thong_bao": message, **extra}, status_code)
