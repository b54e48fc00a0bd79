"""Request bodies of the services."""

from __future__ import annotations

import json
from typing import Any

from ..errors import UserError


def load_json(body: bytes) -> Any:
    """A request body as JSON, or a clear error."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"the request body is not valid JSON: {exc}") from None
