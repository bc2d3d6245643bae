"""A small DOM read with html.parser, enough to check the report's structure."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Callable, Iterator

VOID = {"meta", "br", "img", "input", "hr", "link", "col", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list["Node"] = field(default_factory=list)
    parent: "Node | None" = None
    texts: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        parts = list(self.texts)
        return "".join(parts)

    def iter(self) -> Iterator["Node"]:
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, pred: Callable[["Node"], bool]) -> list["Node"]:
        return [n for n in self.iter() if pred(n)]

    def by_id(self, html_id: str) -> "Node":
        found = self.find_all(lambda n: n.attrs.get("id") == html_id)
        assert len(found) == 1, f"expected exactly one element with id {html_id!r}, found {len(found)}"
        return found[0]

    def next_sibling(self) -> "Node | None":
        assert self.parent is not None
        siblings = self.parent.children
        i = siblings.index(self)
        return siblings[i + 1] if i + 1 < len(siblings) else None


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):  # type: ignore[override]
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.stack[-1])
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):  # type: ignore[override]
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return
        raise AssertionError(f"end tag </{tag}> closes nothing open")

    def handle_data(self, data):  # type: ignore[override]
        for node in self.stack:
            node.texts.append(data)


def parse(html: str) -> Node:
    """The document as a tree; unbalanced markup fails the test."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    open_tags = [n.tag for n in builder.stack[1:] if n.tag not in ("html", "body", "p", "li")]
    assert not open_tags, f"elements never closed: {open_tags}"
    return builder.root
