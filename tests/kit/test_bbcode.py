"""Bitrix24 BBCode read as the text a person sees on the portal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b24mw.emulator.rest.tasks.service import hashtags
from b24mw.kit.bbcode import escape, to_plain, without_hashtags


@pytest.mark.parametrize(
    ("stored", "seen"),
    [
        ("[B]Bold[/B] and [i]italic[/i]", "Bold and italic"),
        ("[U]u[/U][S]s[/S][COLOR=#ff0000]red[/COLOR][SIZE=14]big[/SIZE]", "usredbig"),
        ("[FONT=Times New Roman]serif[/FONT]", "serif"),
        ("[URL=https://example.com/a?b=1]the shop[/URL]", "the shop"),
        ("[URL]https://example.com[/URL]", "https://example.com"),
        ("ask [USER=17]Ivan Petrov[/USER] please", "ask Ivan Petrov please"),
        ("one[BR]two", "one\ntwo"),
        ("[P]first[/P][P]second[/P]", "\nfirst\n\nsecond\n"),
        ("[LIST][*]a[*]b[/LIST]", "\n\n- a\n- b\n"),
        ("[LIST=1][*]a[/LIST]", "\n\n- a\n"),
        ("[QUOTE]quoted[/QUOTE]after", "\nquoted\nafter"),
        ("[CODE][B]raw[/B] &lt;x&gt;[/CODE]", "\n[B]raw[/B] <x>\n"),
        ("Tom &amp; Jerry &quot;&lt;3&gt;&quot; &#91;B&#93;", 'Tom & Jerry "<3>" [B]'),
        ("photo [IMG]https://x/y.png[/IMG] here", "photo  here"),
        ("file [DISK FILE ID=n123] here", "file  here"),
        (
            "[TABLE][TR][TD]SKU-1[/TD][TD]Case[/TD][/TR][TR][TD]x[/TD][/TR][/TABLE]",
            "\n\nSKU-1 | Case\n\nx\n\n",
        ),
        (
            "[SKU-1] stays, [b24mw:ab12] stays, [FOO]unknown[/FOO] stays",
            "[SKU-1] stays, [b24mw:ab12] stays, [FOO]unknown[/FOO] stays",
        ),
        ("[B=x]no bold[/B]", "[B=x]no bold"),
        ("broken [B unclosed and ]stray[ brackets", "broken [B unclosed and ]stray[ brackets"),
    ],
)
def test_markup_reads_as_the_portal_shows_it(stored: str, seen: str) -> None:
    assert to_plain(stored) == seen


def test_tag_names_are_case_insensitive() -> None:
    assert to_plain("[b]x[/B][LiSt][*]y[/list]") == "x\n\n- y\n"


@given(st.text(max_size=400))
def test_any_text_gives_text(text: str) -> None:
    assert isinstance(to_plain(text), str)


@given(st.text(max_size=200))
def test_escaped_text_reads_back_as_written(text: str) -> None:
    plain = text.replace("\r\n", "\n").replace("\r", "\n")
    assert to_plain(escape(text)) == plain


@given(st.text(max_size=300))
def test_text_without_hashtags_makes_no_tag_on_a_portal_and_reads_the_same(text: str) -> None:
    written = without_hashtags(text)
    assert hashtags(written) == []
    assert written.replace("\u2060", "") == text.replace("\u2060", "")
