"""URLs a user hands us: checked before a run starts, and never recorded with their credentials.

A base URL may carry `user:password@` (a proxy, a private vLLM). Everything the run writes or logs
(report.json/html, state.db, LLM step records, warnings) goes through `redact_url`, so the password
stays in the user's settings and nowhere else.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from cinerl.core.errors import UserError

# scheme://user:pass@host -- also inside longer text (an exception message, a log line)
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")


def redact_url(url: str | None) -> str | None:
    """The URL with any user name and password replaced by `***`; text around a URL is kept, so
    a message that quotes one can be passed whole. None stays None."""
    if not url:
        return url
    return _USERINFO.sub(lambda m: m.group("scheme") + "***@", str(url))


def check_url(url: str | None, what: str = "--llm-base-url") -> str | None:
    """The URL stripped, or a UserError saying what is wrong with it: an http(s) scheme, a host,
    a valid port, no spaces. Checked before the run starts so a typo is not 30 fallbacks."""
    if url is None:
        return None
    text = str(url).strip()
    shown = redact_url(text)
    if not text or any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise UserError(f"{what} {shown!r} is not a URL (it is empty or has spaces)")
    try:
        parts = urlsplit(text)
        parts.port  # raises ValueError on a port that is not a number in range
    except ValueError as e:
        raise UserError(f"{what} {shown!r} is not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https"):
        raise UserError(f"{what} {shown!r} must start with http:// or https://")
    if not parts.hostname:
        raise UserError(f"{what} {shown!r} has no host name")
    return text


def same_endpoint(a: str | None, b: str | None) -> bool:
    """Whether two base URLs name one server and path (credentials, case of the host, a default
    port and a trailing '/' aside): a key goes only to the endpoint it was configured for."""
    if not a or not b:
        return False
    try:
        pa, pb = urlsplit(a.strip()), urlsplit(b.strip())
        default = {"http": 80, "https": 443}
        key_a = (pa.scheme, pa.hostname, pa.port or default.get(pa.scheme), pa.path.rstrip("/"))
        key_b = (pb.scheme, pb.hostname, pb.port or default.get(pb.scheme), pb.path.rstrip("/"))
    except ValueError:
        return False
    return key_a == key_b


def host_of(url: str | None) -> str:
    try:
        return (urlsplit(url or "").hostname or "").lower()
    except ValueError:
        return ""


class RedactingFilter:
    """A logging filter that takes credentials out of every URL in a record's message, whoever
    logged it (our modules, httpx, openai)."""

    def filter(self, record) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is logging's problem, not ours
            return True
        clean = redact_url(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
