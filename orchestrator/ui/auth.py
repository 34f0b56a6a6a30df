"""Who may read the operations page and who may steer through it.

The rules, one pure function (:func:`allowed`) over what a request carries:

- A control action (any method but GET/HEAD) needs the token in a header,
  ``X-Segue-Token`` or ``Authorization: Bearer``: a cookie alone never steers,
  so another site cannot make a browser steer a loop (CSRF).
- A read needs nothing on loopback. Bound elsewhere, it needs the token in a
  header, in the ``segue_token`` cookie that a first ``?token=`` sets, or in
  ``?token=`` itself (an ``EventSource`` or a link cannot send a header).
- Static files (the stylesheet and the script) hold no data: never guarded.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Mapping

COOKIE = "segue_token"
HEADER = "x-segue-token"
_READS = frozenset({"GET", "HEAD"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only listens to this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def new_token() -> str:
    """A token for a page started without ``SEGUE_UI_TOKEN`` (loopback only)."""
    return secrets.token_urlsafe(18)


def header_token(headers: Mapping[str, str]) -> str | None:
    """The token a request carries in a header (``headers`` keys lower-case)."""
    if token := headers.get(HEADER):
        return token
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def matches(given: str | None, token: str) -> bool:
    """Whether ``given`` is ``token`` (compared in constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def allowed(
    method: str,
    path: str,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    query: Mapping[str, str],
    *,
    token: str,
    guard_reads: bool,
) -> bool:
    """Whether a request may go on (see the module docstring for the rules)."""
    if path.startswith("/static/"):
        return True
    if matches(header_token(headers), token):
        return True
    if method.upper() not in _READS:
        return False
    if not guard_reads:
        return True
    return matches(cookies.get(COOKIE), token) or matches(query.get("token"), token)
