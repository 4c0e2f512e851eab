"""Bitrix24's BBCode as the plain text a person sees.

Task descriptions (``descriptionInBbcode: Y``), task comments and chat
messages are stored as BBCode: ``[LIST][*]SKU-1 | …[/LIST]``, ``[B]…[/B]``,
``[P]…[/P]``, ``[USER=17]Ivan[/USER]``, HTML entities for ``<>&"``.  Whatever
reads meaning out of such text (an order, a hashtag) reads what the person
saw on the screen: markup removed, blocks and list items on lines of their
own, entities decoded, attachments and images left out.

- inline tags (``B I U S COLOR SIZE FONT URL USER``…) vanish, their text stays;
- ``[P]``, ``[QUOTE]``, ``[CODE]``, ``[LIST]``, alignment tags and table rows
  start and end a line; ``[BR]`` is a line break;
- ``[*]`` starts a list item, shown as ``- `` (numbered lists too: the marker
  is what matters to a reader, and it is what an order line starts with);
- table cells of one row are joined by `` | ``;
- ``[CODE]`` content is shown as written (no markup inside it, entities decoded);
- ``[IMG]``, ``[VIDEO]`` and ``[DISK FILE ID=…]`` are not text;
- an unknown tag, or brackets that are no tag, stay as written (that is how
  the portal shows them).

Total: any string gives a string, nothing raises.
"""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"\[(/?)(\*|[A-Za-z]+)(=[^\[\]]*| [^\[\]]*)?\]")
# Tags that take an argument ("[URL=…]", "[IMG WIDTH=… HEIGHT=…]", "[DISK FILE ID=…]");
# on any other name, "[B unclosed and ]" is plain text, as on the portal.
_WITH_ARGUMENT = frozenset(
    {"color", "size", "font", "url", "user", "list", "quote", "spoiler", "img", "disk", "icon"}
)
_INLINE = frozenset(
    {"b", "i", "u", "s", "del", "color", "size", "font", "url", "user", "spoiler", "sup", "sub"}
)
_BLOCK = frozenset({"p", "quote", "list", "left", "center", "right", "justify", "table"})
_ROW = frozenset({"tr"})
_CELL = frozenset({"td", "th"})
_BREAK = frozenset({"br", "hr"})
# Tags whose content is no text a person reads (pictures, players, files).
_HIDDEN = frozenset({"img", "video"})
_SELF_CLOSING_HIDDEN = frozenset({"disk", "icon"})
_CELL_SEPARATOR = " | "
_ITEM_MARKER = "- "


# A portal turns " #word" in a task's title or description into a tag (the
# pattern wants ASCII whitespace, or the start, right before "#").  An
# invisible WORD JOINER there keeps the text as people read it and no tag.
_HASH_AFTER_SPACE = re.compile(r"(^|[ \t\n\v\f\r])#")
_WORD_JOINER = "\u2060"


def without_hashtags(text: str) -> str:
    """``text`` for a task title or description that the portal makes no tags of."""
    return _HASH_AFTER_SPACE.sub(rf"\1{_WORD_JOINER}#", text)


def escape(text: str) -> str:
    """``text`` written so that ``to_plain`` (and the portal) shows it as is."""
    return text.replace("&", "&amp;").replace("[", "&#91;").replace("]", "&#93;")


def _closing(text: str, name: str, start: int) -> re.Match[str] | None:
    return re.compile(rf"\[/{name}\]", re.IGNORECASE).search(text, start)


def to_plain(text: str) -> str:
    """The text of ``text`` as the portal shows it, one visual line a line."""
    out: list[str] = []
    cells_in_row = 0
    position = 0
    while True:
        match = _TAG.search(text, position)
        if match is None:
            out.append(html.unescape(text[position:]))
            break
        out.append(html.unescape(text[position : match.start()]))
        position = match.end()
        closing, name = bool(match.group(1)), match.group(2).lower()
        if match.group(3) and (closing or name not in _WITH_ARGUMENT):
            out.append(html.unescape(match.group(0)))
            continue
        if name == "code" and not closing:
            end = _closing(text, "code", position)
            stop = end.start() if end else len(text)
            out.append("\n" + html.unescape(text[position:stop]) + "\n")
            position = end.end() if end else len(text)
        elif name in _HIDDEN and not closing:
            end = _closing(text, name, position)
            position = end.end() if end else len(text)
        elif name in _SELF_CLOSING_HIDDEN or name in _INLINE or (name in _HIDDEN and closing):
            continue
        elif name == "*":
            out.append("\n" + _ITEM_MARKER)
        elif name in _BREAK or name in _BLOCK or name == "code":
            out.append("\n")
        elif name in _ROW:
            out.append("\n")
            cells_in_row = 0
        elif name in _CELL:
            if not closing:
                out.append(_CELL_SEPARATOR if cells_in_row else "")
                cells_in_row += 1
        else:
            out.append(html.unescape(match.group(0)))
    return "".join(out).replace("\r\n", "\n").replace("\r", "\n")
