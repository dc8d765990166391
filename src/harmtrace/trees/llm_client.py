"""The chat client of the ``openai`` tree generator: the LLM grader's client, adapted.

Placeholder until harmtrace.llm (the shared OpenAI-compatible client with its SQLite
cache) is available; :func:`client_for` then builds that client from the generator's
config block.
"""

from __future__ import annotations

from typing import Any

from harmtrace.trees.llm_generator import ChatClient, LLMTreeError


def client_for(spec: Any, options: dict[str, Any]) -> ChatClient:
    raise LLMTreeError(
        "the shared LLM client (harmtrace.llm) is not available in this build; the openai "
        "tree generator cannot run yet"
    )
