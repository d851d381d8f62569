"""One-line structured logs: `time level logger request_id=... message key=value ...`."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}


# Capability tokens travel in a few URLs by design (emailed links, signed attachment names):
# whoever reads the log must not be able to follow them. The path's segment after each prefix
# is replaced, wherever the path appears in a line (the request line, Django's "Not Found: ..."
# warnings, a traceback). API keys ("prl_" + 8 visible characters + "_" + secret) keep their
# visible prefix, which names the key in the dashboard; bearer credentials lose their value.
_CAPABILITY_PATH = re.compile(
    r"(/accounts/confirm-email/|/accounts/password/reset/key/|/tenants/invitations/"
    r"|/widget/attachments/)[^/\s\"'?#]+"
)
_API_KEY = re.compile(r"\b(prl_[0-9a-f]{8})_[A-Za-z0-9_-]+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',]+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with capability tokens in URLs, API keys and bearer credentials replaced."""
    text = _CAPABILITY_PATH.sub(r"\1" + REDACTED, text)
    text = _API_KEY.sub(r"\1_" + REDACTED, text)
    return _BEARER.sub(r"\1" + REDACTED, text)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _value(value: object) -> str:
    text = str(value)
    if not text or any(ch in text for ch in ' ="\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class LineFormatter(logging.Formatter):
    """logfmt-style lines; extra={...} fields are appended as key=value pairs."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = {
            "ts": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                fields[key] = value
        line = " ".join(f"{key}={_value(value)}" for key, value in fields.items())
        if record.exc_info:
            # Keep the one-line promise: the traceback goes on as an escaped field.
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return redact(line)
