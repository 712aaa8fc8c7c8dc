"""Conversations as curation sees them: one list of {role, content} messages, and its flat text."""

from __future__ import annotations

from typing import Any


def render(messages: list[dict[str, Any]]) -> str:
    """The flat text of a conversation, one `Role: content` block per message."""
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)
