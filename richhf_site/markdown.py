"""Markdown to safe HTML for text that staff write and raters read (campaign guidelines).

markdown-it-py parses CommonMark with raw HTML switched off, so ``<script>`` in the source is
shown as text, not run; nh3 (Rust's ammonia) then sanitises the output against an allow-list,
which also drops ``javascript:``/``data:`` links that Markdown link syntax would let through.
Both are well-kept libraries: a hand-written sanitiser is where XSS bugs live.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

# Only what guidelines need: text structure, emphasis, lists, links, code, tables.
_TAGS = {
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
_URL_SCHEMES = {"http", "https", "mailto"}

# "js-default" would turn on raw HTML; "commonmark" keeps html=False and adds tables/strikethrough.
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def render_markdown(text: str) -> str:
    """Return sanitised HTML for ``text`` (Markdown); "" for empty input.

    Raw HTML in the source is escaped, links keep only http(s)/mailto targets and get
    ``rel="noopener noreferrer"``; nothing in the result can run script.
    """
    if not text or not text.strip():
        return ""
    html = _md.render(text)
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
