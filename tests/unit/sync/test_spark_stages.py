"""Which stage of a push on Spark a resource falls in: the one Patient it is or refers to, else before or after."""

from __future__ import annotations

from adapter.engines.spark_package import partition_of
from adapter.sync.spark_push import SHARED, STUDY, stage_of


def _ref(key: str) -> dict[str, str]:
    return {"reference": key}


def test_a_patient_falls_in_its_own_partition_even_when_it_links_another() -> None:
    # Its Observations are in its partition and need it there; docs/scale.md says what this costs a link.
    patient = {"resourceType": "Patient", "id": "alpha", "link": [{"other": _ref("Patient/beta"), "type": "seealso"}]}
    assert partition_of("alpha", 7) != partition_of("beta", 7)  # else this test could not tell them apart
    assert stage_of(patient, 7) == partition_of("alpha", 7)


def test_what_refers_to_one_patient_falls_in_that_patients_partition() -> None:
    observation = {"resourceType": "Observation", "id": "o1", "subject": _ref("Patient/beta"),
                   "extension": [{"url": "x", "valueReference": _ref("ResearchStudy/s")}]}  # fmt: skip
    subject = {"resourceType": "ResearchSubject", "id": "rs", "individual": _ref("Patient/beta"),
               "study": _ref("ResearchStudy/s")}  # fmt: skip
    assert stage_of(observation, 7) == stage_of(subject, 7) == partition_of("beta", 7)


def test_what_refers_to_no_patient_is_pushed_first_and_to_several_last() -> None:
    study = {"resourceType": "ResearchStudy", "id": "s", "sponsor": _ref("Organization/o")}
    group = {"resourceType": "Group", "id": "g", "member": [{"entity": _ref("Patient/a")},
                                                            {"entity": _ref("Patient/b")}]}  # fmt: skip
    assert stage_of(study, 3) == STUDY
    assert stage_of(group, 3) == SHARED
