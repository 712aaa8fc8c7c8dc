"""Chat formats normalised to one shape: a list of {role, content, ...} messages.

OpenAI `messages`, ShareGPT `conversations`, Open-Assistant message trees (flattened
root-to-leaf into threads that keep message and tree ids), Human/Assistant transcripts
(hh-rlhf), and chatterbot YAML pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

ROLE_ALIASES = {
    "user": "user", "human": "user", "prompter": "user", "customer": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "chatgpt": "assistant",
    "model": "assistant", "system": "system", "tool": "tool", "function": "tool",
}


class ChatFormatError(ValueError):
    """A record looks like a chat but a message is malformed; the message names the field."""


def normalise_role(role: Any, where: str) -> str:
    if not isinstance(role, str) or role.lower() not in ROLE_ALIASES:
        raise ChatFormatError(
            f"{where}: unknown role {role!r}; expected one of {sorted(set(ROLE_ALIASES))}"
        )
    return ROLE_ALIASES[role.lower()]


def from_openai(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ChatFormatError("field 'messages' must be a non-empty list of {role, content}")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise ChatFormatError(f"messages[{i}] is {type(m).__name__}, expected an object")
        content = m.get("content")
        if not isinstance(content, str):
            raise ChatFormatError(f"messages[{i}].content must be a string, got {type(content).__name__}")
        out.append({"role": normalise_role(m.get("role"), f"messages[{i}].role"), "content": content})
    return out


def from_sharegpt(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ChatFormatError("field 'conversations' must be a non-empty list of {from, value}")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise ChatFormatError(f"conversations[{i}] is {type(m).__name__}, expected an object")
        value = m.get("value")
        if not isinstance(value, str):
            raise ChatFormatError(f"conversations[{i}].value must be a string, got {type(value).__name__}")
        out.append({"role": normalise_role(m.get("from"), f"conversations[{i}].from"), "content": value})
    return out


def oasst_threads(tree: dict[str, Any]) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Every root-to-leaf path of an Open-Assistant message tree, with its ids.

    Deleted messages end a path. Each message keeps its `message_id`, and `synthetic`
    and `model_name` where the tree marks it as model-written.
    """
    root_id = tree.get("message_id")

    def walk(node: dict[str, Any], path: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        if node.get("deleted"):
            if path:
                yield path
            return
        text = node.get("text")
        if not isinstance(text, str):
            raise ChatFormatError(f"message {node.get('message_id')!r}: field 'text' must be a string")
        msg: dict[str, Any] = {
            "role": normalise_role(node.get("role"), f"message {node.get('message_id')!r} role"),
            "content": text,
            "message_id": node.get("message_id"),
        }
        if node.get("synthetic"):
            msg["synthetic"] = True
            msg["model_name"] = node.get("model_name")
        here = [*path, msg]
        replies = [r for r in node.get("replies") or [] if isinstance(r, dict)]
        if not replies:
            yield here
            return
        for r in replies:
            yield from walk(r, here)

    for path in walk(tree, []):
        yield path, {
            "tree_id": root_id,
            "message_ids": [m["message_id"] for m in path],
            "synthetic_messages": sum(1 for m in path if m.get("synthetic")),
        }


# Anthropic HH-style transcripts: "\n\nHuman: ...\n\nAssistant: ...", as in hh-rlhf's chosen/rejected.
_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ ]?")


def is_transcript(text: str) -> bool:
    """A text field that is a Human/Assistant transcript rather than a document."""
    return text.lstrip("\n").startswith("Human:") and "\n\nAssistant:" in text


def from_transcript(text: str) -> list[dict[str, Any]]:
    """The turns of a Human/Assistant transcript as messages (an empty turn stays, empty)."""
    marks = list(_TURN.finditer(text.lstrip("\n")))
    body = text.lstrip("\n")
    out = []
    for m, nxt in zip(marks, [*marks[1:], None], strict=True):
        end = nxt.start() if nxt is not None else len(body)
        out.append({"role": ROLE_ALIASES[m.group(1).lower()], "content": body[m.end():end].strip()})
    return out


def detect(record: dict[str, Any]) -> str | None:
    """Which chat format a JSON record is in, or None for a plain document."""
    if "messages" in record and isinstance(record["messages"], list):
        return "openai"
    if "conversations" in record and isinstance(record["conversations"], list):
        return "sharegpt"
    if "replies" in record and "message_id" in record and "role" in record:
        return "oasst"
    return None
