"""Build small trial packages in a temporary folder for reader and mapper tests."""

from __future__ import annotations

from pathlib import Path

ARMS = ("Secretome-MSCs", "Control")
SUBJECTS_HEADER = "subject_id,site_id,sex,birth_year,arm_assigned,arm_actual,consent_date,status,start_date,end_date"
MEASUREMENTS_HEADER = "subject_id,visit,test_code,value,unit,collected_at,ref_low,ref_high,flag"
ADMINISTRATIONS_HEADER = "subject_id,product_code,dose,dose_unit,route,start,end,status,not_given_reason"
SUBJECT_ROWS = (
    "S1,J,M,1970,Secretome-MSCs,Secretome-MSCs,2020-07-01,completed,2020-07-01,2020-07-29",
    "S2,N,F,,Control,,2020-07-02,enrolled,2020-07-02,",
)
DESCRIPTOR = """\
format: trialfhir-package/1
study:
  nct_id: NCT04753476
  arms: ["Secretome-MSCs", "Control"]
local_code_system: https://example.org/fhir/CodeSystem/sponsor
sites:
  - {id: J, name: Jakarta site, time_zone: Asia/Jakarta}
  - {id: N, name: Site without a time zone}
visits:
  - {code: SCR, name: Screening, day: 0}
  - {code: D7, name: Day 7, day: 7}
"""


def write_package(
    folder: Path,
    *,
    subjects: str | bytes | None = None,
    measurements: str | bytes | None = None,
    administrations: str | bytes | None = None,
    descriptor: str = DESCRIPTOR,
) -> Path:
    """A package in ``folder``; each CSV defaults to a valid header with the two subjects (or no rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.yaml").write_text(descriptor, encoding="utf-8")
    files = {
        "subjects.csv": subjects if subjects is not None else csv(SUBJECTS_HEADER, *SUBJECT_ROWS),
        "measurements.csv": measurements if measurements is not None else csv(MEASUREMENTS_HEADER),
        "administrations.csv": administrations if administrations is not None else csv(ADMINISTRATIONS_HEADER),
    }
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


def csv(header: str, *rows: str) -> str:
    return "\n".join((header, *rows)) + "\n"


def measurements(*rows: str) -> str:
    return csv(MEASUREMENTS_HEADER, *rows)


def administrations(*rows: str) -> str:
    return csv(ADMINISTRATIONS_HEADER, *rows)
