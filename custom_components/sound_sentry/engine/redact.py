"""Hide credentials in URLs (and in text that may quote URLs) before they reach a log line or an exception."""

from __future__ import annotations

import re

REDACTED = "****"

# Query parameters that carry secrets in camera and stream URLs (matched case-insensitively, whole name).
CREDENTIAL_QUERY_KEYS = frozenset(
    {
        "password",
        "pass",
        "passwd",
        "pwd",
        "token",
        "access_token",
        "key",
        "apikey",
        "api_key",
        "auth",
        "user",
        "username",
        "secret",
        "sig",
        "signature",
    }
)

# "scheme://" then the user-info: everything up to the last "@" before the path, query or fragment. The
# user-info may itself contain "/" when a password was pasted unescaped, so the authority is not cut at "/";
# over-redacting a host is better than leaking half a password.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s?#]*@)")
_QUERY_CREDENTIAL = re.compile(
    r"(?P<prefix>[?&;](?P<key>[A-Za-z0-9_.-]+)=)(?P<value>[^&;#\s]*)",
)


def _replace_query_credential(match: re.Match[str]) -> str:
    if match["key"].lower() in CREDENTIAL_QUERY_KEYS and match["value"]:
        return match["prefix"] + REDACTED
    return match[0]


def redact_credentials(text: str) -> str:
    """Return `text` with the user-info and credential query values of every URL in it replaced by ****.

    Works on a bare URL as well as on a message that quotes one, so it can clean strings from other
    libraries (FFmpeg errors name the URL they failed on).
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}:{REDACTED}@", text)
    return _QUERY_CREDENTIAL.sub(_replace_query_credential, text)


def redact_url(url: str) -> str:
    """Return `url` safe to log: user:password@ and credential query parameters become ****."""
    return redact_credentials(url)
