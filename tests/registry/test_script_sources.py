"""What scripts.py sends: each script with the shared functions it reaches and
no others (Lua builds every ``local function`` of a script on each call)."""

from __future__ import annotations

import re

import pytest

from lash_streams.store.scripts import _NAMES, script_source


@pytest.mark.parametrize("name", _NAMES)
def test_a_script_carries_only_the_shared_functions_it_reaches(name: str) -> None:
    source = script_source(name)
    defined = re.findall(r"^local function (\w+)\(", source, re.M)
    assert len(defined) == len(set(defined)), "a function defined twice"
    for function in defined:
        uses = re.findall(rf"\b{function}\b", source)
        assert len(uses) > 1, f"{name}: `{function}` is defined and never called"


def test_the_append_scripts_keep_the_shared_insert() -> None:
    for name in ("append_event-8", "append_batch-4n", "complete_job-10"):
        source = script_source(name)
        assert "local function insert_item(" in source
        assert "local function now_ms(" in source  # reached through stamp()
    assert "local function record_reply(" not in script_source("append_event-8")
    assert "local function record_reply(" in script_source("register_process-1")
