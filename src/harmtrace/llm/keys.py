"""The API key: read from the environment only, and never shown.

The key is sent in the Authorization header and nowhere else; :func:`redact_key` removes it
(and anything shaped like a key) from server messages before they are logged or stored.
"""

from __future__ import annotations

import os
import re

from harmtrace.llm.errors import LLMConfigError

_KEYLIKE = re.compile(r"\b(sk|key|tok)-[A-Za-z0-9_*.\-]{6,}")


def read_api_key(env_name: str | None) -> str | None:
    """The key from the named environment variable; a clear error when it is unset."""
    if env_name is None:
        return None
    key = os.environ.get(env_name, "")
    if not key.strip():
        raise LLMConfigError(
            f"the API key variable {env_name} is not set: export {env_name}=<your key> "
            "(or set api_key_env to the variable that holds it, or to null for a server "
            "that needs no key); the key is read from the environment only"
        )
    return key.strip()


def redact_key(text: str, key: str | None) -> str:
    """``text`` without ``key`` or anything shaped like one."""
    if key:
        text = text.replace(key, "***")
    return _KEYLIKE.sub(lambda m: f"{m.group(1)}-***", text)
