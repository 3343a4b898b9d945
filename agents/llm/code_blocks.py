"""Code out of a model's reply: code travels as plain fenced text, never inside JSON strings.

Models wrap code in Markdown fences, add "Here is the fixed code:" before it and an explanation or a usage example
after it, and sometimes forget the fence altogether or stop before closing it (``max_tokens``). ``extract_code_block``
takes the block that is most likely the answer and leaves the prose behind.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n", re.MULTILINE)

_ALIASES = {
    "py": "python", "python3": "python", "js": "javascript", "jsx": "javascript", "ts": "typescript",
    "tsx": "typescript", "rs": "rust", "golang": "go",
}

_PROSE_OPENING = re.compile(
    r"^(sure|certainly|of course|okay|ok|here(?:'s| is| are)|below is|the (?:fixed|corrected|updated|following|code)"
    r"|i(?:'ve| have)|this (?:is|code|function))\b.*[:.!]\s*$", re.IGNORECASE)
_PROSE_CLOSING = re.compile(
    r"^(this|the above|the (?:fix|change|code|function)|explanation|note|in this|i (?:changed|fixed|replaced))\b",
    re.IGNORECASE)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """All fenced blocks as ``(language, body)``, in order; an unclosed last fence runs to the end of the text."""
    blocks: list[tuple[str, str]] = []
    position = 0
    while (opening := _FENCE.search(text, position)) is not None:
        fence = opening.group("fence")
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
        end = closing.search(text, opening.end())
        body = text[opening.end(): end.start() if end else len(text)]
        info = opening.group("info").strip().split()
        language = info[0].lower().lstrip(".") if info else ""
        blocks.append((_ALIASES.get(language, language), body))
        if end is None:
            break
        position = end.end()
    return blocks


def extract_code_block(text: str, language: str | None = None) -> str:
    """The code in a reply: the best fenced block, or the whole reply without its prose when nothing is fenced.

    With several blocks the last one wins (a model's final answer comes last), unless an earlier block is more than
    twice as long (the later one then is a usage example). Blocks tagged with another language than ``language`` are
    passed over when one with the right tag (or no tag) exists. Indentation is kept; surrounding blank lines are not.
    """
    blocks = fenced_blocks(text)
    if not blocks:
        return _without_prose(text)
    wanted = _ALIASES.get(language.lower(), language.lower()) if language else None
    if wanted:
        fitting = [b for b in blocks if b[0] in (wanted, "")]
        blocks = fitting or blocks
    chosen = blocks[-1][1]
    longest = max((body for _, body in blocks), key=len)
    if len(longest.strip()) > 2 * len(chosen.strip()):
        chosen = longest
    return chosen.strip("\n").rstrip()


def _is_prose(line: str) -> bool:
    return bool(_PROSE_CLOSING.match(line)) and len(line.split()) >= 4 and " = " not in line


def _without_prose(text: str) -> str:
    lines = text.strip("\n").splitlines()
    while lines and (_PROSE_OPENING.match(lines[0].strip()) or not lines[0].strip()):
        lines.pop(0)
    for index in range(len(lines) - 1, 0, -1):  # a closing paragraph of prose after a blank line
        if not lines[index - 1].strip() and _is_prose(lines[index]):
            lines = lines[: index - 1]
            break
    code = "\n".join(lines).strip("\n").rstrip()
    if code.count("`") == 2 and code.startswith("`") and code.endswith("`"):
        code = code[1:-1]
    return code
