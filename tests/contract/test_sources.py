"""Every reference a user can follow points inside the repository: no file cites the design brief
or the research notes the kit was built from (they are not shipped; docs/architecture.md and
docs/contracts.md "Sources" state what was taken from them), and every relative link in the docs
names a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"DESIGN\.md|DESIGN\s*§|research/|\.\./shared|[Rr]esearch\s*§|Azure\s*§")
"""A citation of a document that is not in the repository."""
SCANNED = ("README.md", "docs", "contracts", "conformance", "harness", "reference_impl", "tests", "bench", ".ci")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".json", ".toml", ""}
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _files() -> list[Path]:
    out = []
    for name in SCANNED:
        path = ROOT / name
        candidates = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        out += [p for p in candidates if p.suffix in SUFFIXES and "__pycache__" not in p.parts]
    return sorted(out)


def test_no_file_cites_a_document_outside_the_repository():
    me = Path(__file__).resolve()
    hits = []
    for path in _files():
        if path.resolve() == me:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}")
    assert not hits, "citations of documents that are not in the repository:\n" + "\n".join(hits)


def test_the_sources_sections_exist():
    assert "\n## Sources\n" in (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    assert "\n## Sources\n" in (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_every_relative_link_in_the_docs_names_an_existing_file():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for target in LINK.findall(line):
                if "://" in target or target.startswith("mailto:"):
                    continue
                if not (page.parent / target).exists():
                    broken.append(f"{page.relative_to(ROOT)}:{n}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)
