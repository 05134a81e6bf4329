"""The sync journal: what it remembers, where it lives, and the plan it spools."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.errors import ConfigError
from adapter.sync.journal import Journal, Written, journal_path

BASE = "http://127.0.0.1:8080/fhir"


def test_one_file_per_server_and_study(tmp_path: Path) -> None:
    a = journal_path(tmp_path, BASE, "NCT04753476")
    assert a == journal_path(tmp_path, BASE + "/", "NCT04753476")
    assert a.name == "NCT04753476.sqlite" and a.parent.name.startswith("127.0.0.1_8080_fhir-")
    assert journal_path(tmp_path, "http://other/fhir", "NCT04753476") != a
    assert journal_path(tmp_path, BASE, "NCT00000001") != a


def test_records_survive_reopening_and_plan_does_not(tmp_path: Path) -> None:
    path = journal_path(tmp_path, BASE, "NCT1")
    with Journal(path, base_url=BASE, study="NCT1") as journal:
        journal.plan_begin()
        assert journal.plan_add("Patient/p1", 0, "create", "h1", b"{}")
        assert not journal.plan_add("Patient/p1", 0, "create", "h1", b"{}")
        journal.plan_end()
        journal.record([Written("Patient/p1", "h1", "p1", "1", 0), Written("Observation/o1", "h2", "o1", "3", 1)])
    with Journal(path, base_url=BASE, study="NCT1") as journal:
        recorded = journal.recorded("Observation/o1")
        assert recorded is not None and (recorded.hash, recorded.version, recorded.tier) == ("h2", "3", 1)
        assert journal.plan_tiers() == []
        journal.plan_begin()
        journal.plan_add("Patient/p1", 0, "unchanged", "h1", None)
        journal.plan_add("Observation/o2", 1, "create", "h3", b"{}")
        journal.plan_end()
        assert [key for key, _ in journal.removed()] == ["Observation/o1"]
        journal.forget(["Observation/o1"])
        assert journal.count() == 1


def test_plan_levels_and_pages(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite", base_url=BASE, study="NCT1") as journal:
        journal.plan_begin()
        for number in range(5):
            journal.plan_add(f"Observation/o{number}", 1, "create", "h", b"o")
        journal.plan_add("Patient/p1", 0, "create", "h", b"p")
        journal.plan_add("Patient/p2", 0, "unchanged", "h", None)
        journal.plan_end()
        assert journal.plan_tier(["Patient/p1", "Observation/o3"]) == 1
        assert journal.plan_tier(["Patient/unknown"]) == -1
        assert journal.plan_tiers() == [0, 1]
        assert [p.key for p in journal.planned(0)] == ["Patient/p1"]
        assert [p.key for p in journal.planned(1, page=2)] == [f"Observation/o{n}" for n in range(5)]


def test_a_journal_belongs_to_one_server_and_study(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path, base_url=BASE, study="NCT1").close()
    with pytest.raises(ConfigError, match="journal of study 'NCT1', not 'NCT2'"):
        Journal(path, base_url=BASE, study="NCT2")


def test_only_types_of_this_run_can_be_removed(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite", base_url=BASE, study="NCT1") as journal:
        journal.record([Written("ResearchStudy/s", "h", "s", "1", 0), Written("Patient/p", "h", "p", "1", 0),
                        Written("Observation/o", "h", "o", "1", 1)])  # fmt: skip
        journal.plan_begin()
        journal.plan_add("ResearchStudy/s", 0, "unchanged", "h", None)  # a study record pushed on its own
        journal.plan_end()
        assert journal.removed() == []
        journal.plan_begin()
        journal.plan_add("ResearchStudy/s", 0, "unchanged", "h", None)
        journal.plan_add("Patient/p", 0, "unchanged", "h", None)
        journal.plan_add("Observation/o2", 1, "create", "h", b"{}")
        journal.plan_end()
        assert [key for key, _ in journal.removed()] == ["Observation/o"]
