"""Keep secrets out of the registry.

Why a separate module: ``run.json`` stores the environment overrides and the argv of a run so that
a person can see exactly what ran, but the registry may sit on a shared server and be pasted into
bug reports. Anything that looks like a secret (a W&B key, a token, a password) is replaced with
``***`` before it is written; the real values only ever live in the processes' environments.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

REDACTED = "***"

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
# Long opaque strings that look like API keys/tokens (hex or base64-ish, 32+ chars), e.g. W&B keys (40 hex).
_SECRET_VALUE = re.compile(r"^(hf_|wandb_|sk-|ghp_|gho_|xox.-)?[A-Za-z0-9_\-]{32,}$")


def is_secret_name(name: str) -> bool:
    """True when an environment variable or option name suggests a secret."""
    return bool(_SECRET_NAME.search(name))


def looks_like_token(value: str) -> bool:
    """True for values shaped like API keys or tokens (paths and plain words are not)."""
    return "/" not in value and bool(_SECRET_VALUE.match(value)) and any(c.isdigit() for c in value)


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """Return ``env`` with secret-looking values replaced by ``***``."""
    return {k: (REDACTED if is_secret_name(k) or looks_like_token(v) else v) for k, v in env.items()}


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Return ``argv`` with the values of secret-named options and token-shaped words redacted."""
    out: list[str] = []
    hide_next = False
    for word in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if word.startswith("-") and is_secret_name(word):
            name, eq, _ = word.partition("=")
            if eq:
                out.append(f"{name}={REDACTED}")
            else:
                out.append(word)
                hide_next = True
            continue
        out.append(REDACTED if looks_like_token(word) else word)
    return out


_URL_SECRET_PARAM = re.compile(r"(token|key|auth|secret|sig|signature|password|access_token)", re.IGNORECASE)
_WEBHOOK_PATHS = (
    re.compile(r"(/services/[^/]+/[^/]+/)[^/?#]+"),  # Slack: /services/T…/B…/<secret>
    re.compile(r"(/api/webhooks/\d+/)[^/?#]+"),  # Discord: /api/webhooks/<id>/<token>
)


def redact_url(url: str) -> str:
    """``url`` as it may be shown or logged: userinfo, secret query values and webhook tokens hidden.

    >>> redact_url("https://user:pw@ntfy.example/topic?auth=abc&x=1")
    'https://***@ntfy.example/topic?auth=***&x=1'
    """
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = urlencode(
        [
            (k, REDACTED if _URL_SECRET_PARAM.search(k) or looks_like_token(v) else v)
            for k, v in parse_qsl(parts.query)
        ],
        safe="*",
    )
    path = parts.path
    for pattern in _WEBHOOK_PATHS:
        path = pattern.sub(lambda m: m.group(1) + REDACTED, path)
    path = "/".join(REDACTED if looks_like_token(seg) else seg for seg in path.split("/"))
    return urlunsplit((parts.scheme, netloc, path, query, ""))
