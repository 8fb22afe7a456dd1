"""uvicorn's access log without query strings: clients put tokens there (`?token=…`).

The access line is `client - "METHOD path HTTP/x" status`, and `path` keeps its query string,
which bypassed the redaction filter of the service logs. The filter keeps the path and
replaces the query with `?…`, for every handler of the `uvicorn.access` logger.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG


class AccessLogWithoutQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2]
            if "?" in path:
                record.args = (*args[:2], path.split("?", 1)[0] + "?…", *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with the query-stripping filter on access lines."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["no_query"] = {"()": AccessLogWithoutQuery}
    config["handlers"]["access"]["filters"] = ["no_query"]
    return config
