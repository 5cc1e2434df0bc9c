"""The repository's own documents stay true to the code: every ``PROTOCOL.md §N`` the code and the
tests cite is a section of docs/PROTOCOL.md, and every file path the document names exists."""

from __future__ import annotations

import re

from .crawling import ROOT

PROTOCOL = ROOT / "docs" / "PROTOCOL.md"
CITATION = re.compile(r"PROTOCOL\.md\s*((?:§\d+(?:\s*(?:-|–|and|,)\s*)?)+)")


def sections() -> set[int]:
    return {int(number) for number in re.findall(r"^## §(\d+) ", PROTOCOL.read_text(encoding="utf-8"), re.M)}


def test_every_protocol_citation_names_a_section():
    cited: dict[int, list[str]] = {}
    for path in sorted([*ROOT.joinpath("ali1688spider").rglob("*.py"), *ROOT.joinpath("tests").rglob("*.py")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in CITATION.finditer(line):
                for section in re.findall(r"§(\d+)", match.group(1)):
                    cited.setdefault(int(section), []).append(f"{path.relative_to(ROOT)}:{number}")
    assert cited, "no citation found: the pattern is wrong"
    missing = {section: places for section, places in cited.items() if section not in sections()}
    assert not missing, f"cited sections that docs/PROTOCOL.md lacks: {missing}"


def test_the_files_the_protocol_names_exist():
    text = PROTOCOL.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:ali1688spider/|tests/)?(?:[a-z_]+/)*[a-z_]+\.py)`", text))
    assert named
    package = ROOT / "ali1688spider"
    missing = [name for name in sorted(named)
               if not (ROOT / name).exists() and not (package / name).exists()]
    assert not missing, f"docs/PROTOCOL.md names files that do not exist: {missing}"
