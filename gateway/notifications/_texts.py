"""What a notification says, in Vietnamese and English, made when it is delivered.

The outbox keeps the facts (`payload`), never the text: the words are made at each
attempt from the facts and the gateway's origin, so a link follows the gateway.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from gateway.instants import vietnam_time

__all__ = ["link_of", "texts_of"]


def _day(iso: str) -> str:
    return datetime.date.fromisoformat(iso).strftime("%d/%m/%Y")


def _when(iso: str) -> str:
    return vietnam_time(datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")))


def link_of(kind: str, payload: Mapping[str, Any], origin: str) -> str:
    """The page the notification sends its reader to."""
    if kind == "consent_requested":
        return f"{origin}/toi/dong-y"
    if kind == "read_digest":
        day = str(payload["day"])
        return f"{origin}/toi?{urlencode({'from': day, 'to': day})}"
    if kind == "breaker_open":
        return f"{origin}/co-quan/ket-noi/{quote(str(payload['connector']), safe='')}"
    return origin


def texts_of(kind: str, payload: Mapping[str, Any], link: str) -> dict[str, dict[str, str]]:
    """`{"title": {"vi", "en"}, "text": {"vi", "en"}}` of a notification."""
    if kind == "consent_requested":
        names = payload.get("consumerName") or {}
        who_vi = names.get("vi") or payload["consumer"]
        who_en = names.get("en") or payload["consumer"]
        procedure = payload.get("procedureName") or {}
        answer_by = _when(str(payload["answerBy"]))
        return {
            "title": {
                "vi": "Có yêu cầu đồng ý chia sẻ dữ liệu của bạn",
                "en": "A request for your consent to share your data",
            },
            "text": {
                "vi": f"{who_vi} đề nghị bạn đồng ý cho đọc {payload['fieldCount']} mục dữ "
                f"liệu cho thủ tục «{procedure.get('vi') or payload['procedure']}». "
                f"Trả lời trước {answer_by}: {link}",
                "en": f"{who_en} asks for your consent to read {payload['fieldCount']} items "
                f"of your data for the procedure “{procedure.get('en') or payload['procedure']}”. "
                f"Answer by {answer_by}: {link}",
            },
        }
    if kind == "read_digest":
        total = int(payload["count"])
        day = _day(str(payload["day"]))
        by = payload.get("organisations") or []
        list_vi = ", ".join(f"{o.get('vi') or o['code']} ({o['count']})" for o in by)
        list_en = ", ".join(f"{o.get('en') or o['code']} ({o['count']})" for o in by)
        return {
            "title": {
                "vi": f"Dữ liệu của bạn được truy cập {total} lần ngày {day}",
                "en": f"Your data was accessed {total} times on {day}",
            },
            "text": {
                "vi": f"Ngày {day}, dữ liệu của bạn được truy cập {total} lần: {list_vi}. "
                f"Xem ai đã đọc và vì sao: {link}",
                "en": f"On {day} your data was accessed {total} times: {list_en}. "
                f"See who read it and why: {link}",
            },
        }
    if kind == "breaker_open":
        name = payload["connector"]
        since = _when(str(payload["openSince"]))
        return {
            "title": {
                "vi": f"Kết nối {name} không đọc được nguồn dữ liệu",
                "en": f"Connector {name} cannot read its source",
            },
            "text": {
                "vi": f"Cầu dao của kết nối {name} mở từ {since} (hơn "
                f"{payload['minutes']} phút): các trường của nguồn này trả về "
                f"SOURCE_UNAVAILABLE. Kiểm tra nguồn: {link}",
                "en": f"The breaker of connector {name} has been open since {since} (over "
                f"{payload['minutes']} minutes): the source's fields answer "
                f"SOURCE_UNAVAILABLE. Check the source: {link}",
            },
        }
    raise ValueError(f"no text for notifications of kind {kind!r}")
