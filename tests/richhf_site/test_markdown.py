"""render_markdown: guidelines written in Markdown reach raters as HTML that cannot run script."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from richhf_site.markdown import render_markdown


class _Elements(HTMLParser):
    """Collects the real elements and attributes (escaped text is not an element)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


def test_renders_markdown_structure() -> None:
    html = render_markdown("# Title\n\nSome **bold** and *em*.\n\n- one\n- two\n")
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert "<em>em</em>" in html
    assert "<li>one</li>" in html and "<li>two</li>" in html


def test_empty_input_gives_empty_string() -> None:
    assert render_markdown("") == ""
    assert render_markdown("   \n ") == ""


def test_tables_render() -> None:
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<table>" in html and "<td>1</td>" in html


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src='https://evil.example'></iframe>",
        "<div onclick='alert(1)'>hi</div>",
    ],
)
def test_raw_html_is_not_passed_through(source: str) -> None:
    html = render_markdown(source)
    found = elements(html)
    # The source is shown as text inside a paragraph: no element from it survives.
    assert [tag for tag, _ in found] == ["p"], html
    assert found[0][1] == {}


@pytest.mark.parametrize(
    "source",
    [
        "[click](javascript:alert(1))",
        "[click](JAVASCRIPT:alert(1))",
        "[click](  javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
    ],
)
def test_dangerous_link_targets_are_removed(source: str) -> None:
    html = render_markdown(source)
    hrefs = [attrs.get("href") or "" for tag, attrs in elements(html) if tag == "a"]
    for href in hrefs:
        assert not href.strip().lower().startswith(("javascript:", "data:", "vbscript:")), html


def test_links_get_rel_noopener_noreferrer() -> None:
    html = render_markdown("See [the spec](https://example.org/spec).")
    links = [attrs for tag, attrs in elements(html) if tag == "a"]
    assert links == [{"href": "https://example.org/spec", "rel": "noopener noreferrer"}]


def test_images_are_dropped() -> None:
    # Guidelines load nothing from outside (strict CSP); an image would only break.
    html = render_markdown("![x](https://example.org/a.png)")
    assert "img" not in [tag for tag, _ in elements(html)]


def test_text_is_escaped() -> None:
    html = render_markdown("1 < 2 & 3 > 2")
    assert "&lt;" in html and "&amp;" in html and "<2" not in html
