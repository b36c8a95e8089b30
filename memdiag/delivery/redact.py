"""Keep secrets out of everything memdiag prints, logs or stores.

Every value that came from ``${VAR}`` or a ``*_file`` option (and every option a sink declares
secret) is registered here; any text leaving the delivery code passes through :meth:`redact`.
"""

from __future__ import annotations

import base64
import threading
from urllib.parse import urlsplit  # urllib.parse is light (no sockets, no ssl)

MASK = "***"
#: Shorter strings are not credentials, and masking them would garble every message.
MIN_SECRET_LEN = 4


class Redactor:
    """A set of secret strings, replaced by ``***`` wherever they appear."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        """Register a secret (and the forms it travels in: URL-encoded, base64 in Basic auth)."""
        if not isinstance(value, str) or len(value) < MIN_SECRET_LEN:
            return
        with self._lock:
            self._secrets[value] = _replacement(value)

    def add_basic(self, user: str, password: str) -> str:
        """Register the credentials of a Basic ``Authorization`` header and return its value."""
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.add(password)
        self.add(token)
        return f"Basic {token}"

    def redact(self, text: str) -> str:
        if not text:
            return text
        with self._lock:
            items = sorted(self._secrets.items(), key=lambda kv: -len(kv[0]))
        for secret, repl in items:
            if secret in text:
                text = text.replace(secret, repl)
        return text

    def __contains__(self, value: object) -> bool:
        return value in self._secrets

    def __bool__(self) -> bool:  # an empty redactor is still a redactor
        return True


def _replacement(value: str) -> str:
    """A secret URL keeps its scheme and host so messages still say where; the rest is masked."""
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme and parts.hostname:
            return f"{parts.scheme}://{parts.hostname}/{MASK}"
    return MASK
