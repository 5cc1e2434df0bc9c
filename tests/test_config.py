"""The settings registry (ali1688spider/config.py): one home for every setting, read one way."""

from __future__ import annotations

import ast
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrapy.settings import Settings

from ali1688spider import config
from ali1688spider.__main__ import main

from .crawling import ROOT

PACKAGE = ROOT / "ali1688spider"
NAME = re.compile(r"(ALI1688|MONGO|REDIS)_[A-Z0-9_]+|MAX_IDLE_TIME_BEFORE_CLOSE")


def test_no_module_reads_a_setting_by_its_name():
    """A setting's name as a whole string outside config.py is a read that bypasses the registry
    (``settings.get("ALI1688_QPS")``, ``os.environ["MONGO_URI"]``, ``{"ALI1688_X": …}``): modules
    use ``config.QPS.get(settings)`` and ``config.QPS.name``. Names inside messages are fine."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert not offenders, "read these through ali1688spider.config:\n" + "\n".join(offenders)


def test_the_readme_tables_are_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", readme, re.S)
    assert block, "README.md lost its settings markers"
    assert block.group(1) == config.markdown(), "run: python -m ali1688spider settings --markdown"
    named = set(re.findall(r"`((?:ALI1688|MONGO|REDIS)_[A-Z0-9_]+)`", readme))
    assert named <= set(config.REGISTRY), f"the README names unknown settings: {named - set(config.REGISTRY)}"


def test_settings_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("ALI1688_QPS", raising=False)
    assert config.QPS.get(Settings()) is None  # found while crawling
    assert config.QPS.get(Settings({"ALI1688_QPS": " Auto "})) is None
    assert config.QPS.get(Settings({"ALI1688_QPS": "0"})) == 0.0  # no pacing
    monkeypatch.setenv("ALI1688_QPS", "12.5")
    assert config.QPS.get(Settings()) == 12.5
    assert config.QPS.get(Settings({"ALI1688_QPS": 7})) == 7.0
    assert config.QPS.get(Settings({"ALI1688_QPS": ""})) == 12.5  # empty is unset
    monkeypatch.setenv("MONGO_ENABLED", "false")  # a switch is read from the environment too
    assert config.MONGO_ENABLED.get(Settings()) is False
    assert config.MONGO_ENABLED.get(Settings({"MONGO_ENABLED": True})) is True
    assert config.REDIS_START_URLS_KEY.get(Settings(), {"REDIS_START_URLS_KEY": "x"}) == "%(name)s:start_urls"


@pytest.mark.parametrize(("setting", "bad", "accepts"), [
    (config.QPS, "fast", "auto or a number ≥ 0"),
    (config.QPS, "-1", "auto or a number ≥ 0"),
    (config.QPS, "nan", "auto or a number ≥ 0"),
    (config.QPS_START, "0", "a number > 0"),
    (config.MONGO_BATCH_SIZE, "0", "a whole number ≥ 1"),
    (config.RETRY_TIMES, "2.5", "a whole number ≥ 0"),
    (config.MONGO_FLUSH_SECONDS, "0", "a number > 0"),
    (config.ENABLED, "maybe", "true or false (also 1/0, yes/no, on/off)"),
    (config.FRESH_FOR, "6 hours", config.DURATION_FORMS),
    (config.GATEWAY_URL, "gw.open.1688.com/openapi", "an http(s) URL"),
])
def test_a_refused_value_names_the_setting_and_what_it_accepts(setting, bad, accepts):
    with pytest.raises(config.SettingError) as refused:
        setting.get(Settings({setting.name: bad}))
    assert str(refused.value) == f"{setting.name} must be {accepts}, got {bad!r}"
    with pytest.raises(config.SettingError):
        config.check(Settings({setting.name: bad}))


def test_a_secret_is_never_echoed():
    secret = config.Setting("ALI1688_TEST_SECRET", 0, "", "a number", int, "credentials", secret=True)
    with pytest.raises(config.SettingError) as refused:
        secret.get(Settings({secret.name: "hunter2"}))
    assert "hunter2" not in str(refused.value) and "(hidden)" in str(refused.value)


@given(st.one_of(st.text(), st.binary().map(lambda raw: raw.decode("utf-8", "surrogateescape"))))
def test_any_text_is_a_value_or_one_refusal(text):
    """Every registered setting, given any text: a typed value or a SettingError, nothing else."""
    for setting in config.REGISTRY.values():
        try:
            value = setting.get({setting.name: text})
        except config.SettingError as exc:
            assert str(exc).startswith(f"{setting.name} must be ")
            assert "\n" not in str(exc)
        else:  # a setting without a default (ALI1688_QPS: auto) gives None or a number
            assert isinstance(value, (float, type(None)) if setting.default is None else type(setting.default))


def test_settings_command_hides_secrets_and_passwords(monkeypatch, capsys):
    monkeypatch.setenv("ALI1688_APP_SECRET", "s3cr3t-value")
    monkeypatch.setenv("MONGO_URI", "mongodb://user:pa55word@db.example:27017")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t-value" not in out and "pa55word" not in out
    assert "mongodb://user:***@db.example:27017" in out
    assert len(out.splitlines()) == len(config.REGISTRY)
    monkeypatch.setenv("ALI1688_QPS", "lots")
    assert main(["settings"]) == 2
    assert "error: ALI1688_QPS must be auto or a number ≥ 0, got 'lots'" in capsys.readouterr().err


def test_writes_are_journaled_unless_switched_off():
    """Durable acks: a queue entry is acked after a write MongoDB acknowledged from its journal."""
    from ali1688spider.store.mongo import MongoStore

    for extra, journal in (({}, True), ({"MONGO_JOURNAL": "false"}, False)):
        store = MongoStore.from_settings(Settings({"MONGO_URI": "mongodb://127.0.0.1:1", **extra}))
        try:
            assert store.products.write_concern.document == {"w": 1, "j": journal}
            assert store.failures.write_concern.document == {"w": 1, "j": journal}
        finally:
            store.close()
