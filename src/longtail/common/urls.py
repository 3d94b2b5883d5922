"""URLs as they may be shown: a ``--store`` URL carries its password (``postgresql://u:PW@h/db``), and
whatever prints it (an error of the CLI, a log line, a driver's message) is read by people and tools
that must not learn it. Every message that names a URL goes through ``redact_url``; a message of
someone else's that may quote part of it goes through ``scrub``."""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
# scheme://user:PASSWORD@host...: the password runs to the last "@" (one typed with a raw "/" or "@"
# is still hidden whole; hiding too much beats showing part of it)
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<secret>.*)@(?P<tail>[^@]*)$", re.S)
# ?password=... / &sslpassword=... (libpq takes any connection option as a query parameter)
_QUERY = re.compile(r"(?P<head>[?&](?:ssl)?pass(?:word)?=)(?P<secret>[^&#\s]*)", re.I)
# the same inside a longer text (quotes and spaces end a URL there)
_IN_TEXT = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*):(?P<secret>[^@\s'\"]*)@")
# key=value connection strings (libpq's other form): password=... or password='...'
_KEYWORD = re.compile(r"(?P<head>\b(?:ssl)?password\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.I)


def redact_url(url: object) -> str:
    """``url`` with every password replaced by ``***`` (a path, or a URL without one, unchanged)."""
    text = str(url)
    match = _USERINFO.match(text)
    if match:
        text = f"{match['head']}:{MASK}@{match['tail']}"
    text = _QUERY.sub(lambda m: m["head"] + MASK, text)
    if "://" not in text:
        text = _KEYWORD.sub(lambda m: m["head"] + MASK, text)
    return text


def redact_text(text: str) -> str:
    """``text`` (an error message) with the password of every ``scheme://user:PW@`` in it hidden: the
    safety net of messages that quote a URL someone forgot to pass through ``redact_url``."""
    text = _IN_TEXT.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _QUERY.sub(lambda m: m["head"] + MASK, text)


def secrets_of(url: object) -> list[str]:
    """The passwords ``url`` holds, as typed and percent-decoded (longest first)."""
    text = str(url)
    found: list[str] = []
    match = _USERINFO.match(text)
    if match:
        found.append(match["secret"])
    found += [m["secret"] for m in _QUERY.finditer(text)]
    if "://" not in text:
        found += [m["secret"].strip("'") for m in _KEYWORD.finditer(text)]
    found += [unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(message: str, url: object) -> str:
    """``message`` (a driver's, which may quote what it could not parse) without ``url``'s passwords."""
    for secret in secrets_of(url):
        message = message.replace(secret, MASK)
    return message
