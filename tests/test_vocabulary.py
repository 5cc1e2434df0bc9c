"""One home per word: stat keys live in stat_keys.py, failure reasons in outcomes.FailureReason,
the meta keys of a gateway call in gateway/call.py, input rules in inputs.py."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ali1688spider import stat_keys
from ali1688spider.outcomes import FailureReason, FailureRecord

from .crawling import ROOT

PACKAGE = ROOT / "ali1688spider"


def _strings(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module, and the literal start of every f-string."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            found.append((node.lineno, str(node.values[0].value)))
    return found


def _modules(*skip: str) -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py"))
            if not any(path.relative_to(PACKAGE).as_posix().startswith(prefix) for prefix in skip)]


def test_stat_keys_are_named_in_one_module():
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}"
                 for path in _modules("stat_keys.py", "sandbox/") for line, text in _strings(path)
                 if text.startswith(stat_keys.PREFIX)]
    assert not offenders, "name these in ali1688spider/stat_keys.py:\n" + "\n".join(offenders)


def test_failure_reasons_are_one_enum():
    reasons = {str(reason) for reason in FailureReason}
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}"
                 for path in _modules("outcomes.py", "sandbox/", "aop/") for line, text in _strings(path)
                 if text in reasons]
    assert not offenders, "use outcomes.FailureReason:\n" + "\n".join(offenders)


def test_gateway_meta_keys_are_named_in_one_module():
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}"
                 for path in _modules("gateway/call.py", "sandbox/") for line, text in _strings(path)
                 if text.startswith("ali1688_") and text != "ali1688_fatal"]
    assert not offenders, "name request meta keys in ali1688spider/gateway/call.py:\n" + "\n".join(offenders)


def test_the_one_reader_of_failure_counts():
    stats = {"ali1688/failed/gave_up": 2, "ali1688/failed/invalid_reference": 1, "ali1688/products": 5,
             "ali1688/failed/odd": "x", "dupefilter/filtered": 3}
    assert stat_keys.failures_by_reason(stats) == {"gave_up": 2, "invalid_reference": 1, "odd": 0}
    assert stat_keys.count(stats, stat_keys.PRODUCTS) == 5
    assert stat_keys.count(stats, stat_keys.FRESH) == 0
    assert stat_keys.failed(FailureReason.GAVE_UP) == "ali1688/failed/gave_up"


def test_a_failure_document_holds_the_reason_as_text():
    doc = FailureRecord(key="610784549587", reason=FailureReason.GAVE_UP).to_document()
    assert doc["_id"] == "610784549587"
    assert type(doc["reason"]) is str and doc["reason"] == "gave_up"


@pytest.mark.e2e  # starts a Python subprocess
def test_the_enqueue_command_imports_no_spider():
    code = ("import sys; import ali1688spider.commands.enqueue; "
            "print(sorted(m for m in sys.modules if m.startswith(('ali1688spider.spiders', 'redis', 'scrapy_redis'))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
