"""Fast JSON responses: pydantic models dumped once and serialised with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response


def json_response(body: BaseModel | dict[str, Any], status_code: int = 200) -> Response:
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")
