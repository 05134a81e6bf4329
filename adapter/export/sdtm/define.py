"""Define-XML 2.1 for the SDTM datasets written, built with odmlib (never XML by hand).

Datasets (ItemGroupDef with class, structure, keys and the .xpt leaf), variables
(ItemDef with length, label and origin), code lists from the shipped CDISC CT subset
(each used codelist whole, NCI codes as nci:ExtCodeID aliases, sponsor-extended
values marked def:ExtendedValue), value-level metadata for LB/VS results by test
(ValueListDef with one WhereClauseDef per --TESTCD) and for TSVAL by parameter (its CT
response codelist), and the derivations (MethodDef:
AGE, --DY, --LOBXFL, EPOCH, --SEQ, USUBJID, reference dates, standard results, SE/SV).
Origins: collected from the source data, assigned by the sponsor (codes, names),
protocol (trial design) or derived (the methods). Tests validate the output against
the Define-XML 2.1 schema odmlib bundles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import odmlib.define_2_1.model as define

from adapter.export.sdtm.model import Dataset, SdtmResult
from adapter.export.sdtm.terms import ControlledTerms, Variable

DEFINE_FILE = "define.xml"
ASSIGNED_SUFFIXES = ("TESTCD", "TEST", "CAT", "SPEC", "LOINC", "TSTDTL", "DECOD", "CLASCD", "DOSFRQ", "DOSFRM")
ASSIGNED = ("ARMCD", "ACTARMCD", "AGEU", "ETCD", "ELEMENT", "TAETORD", "VISITNUM", "VISIT", "VISITDY", "COUNTRY",
            "SUBJID", "SITEID")  # fmt: skip
INTEGER = re.compile(r"(SEQ|DY|^AGE|TAETORD)$")
CLASSES = {
    **dict.fromkeys(("TS", "TA", "TE", "TV", "TI"), "TRIAL DESIGN"),
    **dict.fromkeys(("DM", "SE", "SV"), "SPECIAL PURPOSE"),
    **dict.fromkeys(("EX", "EC", "CM", "PR"), "INTERVENTIONS"),
    "DS": "EVENTS",
    **dict.fromkeys(("LB", "VS", "RS", "MB", "RE"), "FINDINGS"),
    "SUPPDM": "RELATIONSHIP",
}
STRUCTURES = {
    "TS": "One record per trial summary parameter value",
    "TA": "One record per planned Element per Arm",
    "TE": "One record per planned Element",
    "TV": "One record per planned Visit per Arm",
    "TI": "One record per I/E criterion",
    "DM": "One record per subject",
    "SE": "One record per actual Element per subject",
    "SV": "One record per actual visit per subject",
    "DS": "One record per disposition status or protocol milestone per subject",
    "EX": "One record per administration per subject",
    "EC": "One record per collected administration per subject",
    "CM": "One record per medication administration per subject",
    "LB": "One record per lab test per time point per visit per subject",
    "VS": "One record per vital sign measurement per time point per visit per subject",
    "RS": "One record per assessment per visit per subject",
    "MB": "One record per microbiology test per visit per subject",
    "RE": "One record per respiratory test per visit per subject",
    "PR": "One record per recorded procedure per visit per subject",
    "SUPPDM": "One record per supplemental qualifier per subject",
}
METHODS = {
    "AGE": "AGE = whole years from BRTHDTC to RFSTDTC; with a birth year alone, "
           "the year of RFSTDTC minus the birth year.",
    "DY": "--DY = date of --DTC minus date of RFSTDTC, plus 1 when on or after RFSTDTC (there is no day 0).",
    "LOBXFL": "--LOBXFL = Y on the last record per subject and test with a non-missing --ORRES dated before the first "
              "dose of study treatment (RFXSTDTC, else RFSTDTC).",
    "EPOCH": "EPOCH = SCREENING when --DTC (or --STDTC) is before RFSTDTC, else TREATMENT.",
    "SEQ": "--SEQ = the record's number within the subject in the dataset's key order.",
    "USUBJID": "USUBJID = STUDYID, SITEID and SUBJID joined by hyphens.",
    "RF": "RFSTDTC/RFENDTC = first and last dose of any treatment recorded (else the participation period); "
          "RFXSTDTC/RFXENDTC = first and last dose of study treatment in EX.",
    "STRES": "Standard result: the FHIR Observation value in the standard UCUM unit, its unit as CDISC UNIT.",
    "SESV": "Element and visit dates: SE from consent, RFSTDTC and the end of participation; "
            "SV from the first and last record dated at the visit.",
    "ARMNRS": "ARMNRS from ResearchSubject status and arms per SDTMIG 3.4 DM assumptions.",
}  # fmt: skip


def _text(text: str) -> define.Description:
    description = define.Description()
    description.TranslatedText.append(define.TranslatedText(_content=text, lang="en"))
    return description


def origin(domain: str, name: str) -> tuple[str, str, str | None]:
    """(def:Origin Type, Source, method key) of a variable."""
    suffix = name[len(domain):] if name.startswith(domain) else name
    derived = {"AGE": "AGE", "DY": "DY", "STDY": "DY", "ENDY": "DY", "LOBXFL": "LOBXFL", "EPOCH": "EPOCH",
               "SEQ": "SEQ", "USUBJID": "USUBJID", "RFSTDTC": "RF", "RFENDTC": "RF", "RFXSTDTC": "RF",
               "RFXENDTC": "RF", "STRESC": "STRES", "STRESN": "STRES", "STRESU": "STRES", "STNRLO": "STRES",
               "STNRHI": "STRES", "ARMNRS": "ARMNRS"}  # fmt: skip
    if name in ("STUDYID", "DOMAIN"):
        return "Assigned", "Sponsor", None
    if CLASSES.get(domain) == "TRIAL DESIGN":
        return ("Derived", "Sponsor", "SEQ") if name == "TSSEQ" else ("Protocol", "Sponsor", None)
    for key in (name, suffix):
        if key in derived:
            return "Derived", "Sponsor", derived[key]
    if domain in ("SE", "SV") and re.search(r"(STDTC|ENDTC)$", name):
        return "Derived", "Sponsor", "SESV"
    if suffix in ASSIGNED_SUFFIXES or name in ASSIGNED:
        return "Assigned", "Sponsor", None
    return "Collected", "Investigator", None


def build_define(
    result: SdtmResult, lengths: Mapping[str, Mapping[str, int]], ct: ControlledTerms, *, study_id: str,
    created: str,
) -> define.ODM:
    """The Define-XML 2.1 document (an odmlib ODM object) for the datasets of ``result``."""
    odm = define.ODM(FileOID=f"DEF.{study_id}", AsOfDateTime=created, CreationDateTime=created, ODMVersion="1.3.2",
                     FileType="Snapshot", Originator="trialfhir", SourceSystem="trialfhir", Context="Submission")
    study = define.Study(OID=f"ST.{study_id}")
    study.GlobalVariables = define.GlobalVariables(
        StudyName=define.StudyName(_content=study_id), ProtocolName=define.ProtocolName(_content=study_id),
        StudyDescription=define.StudyDescription(_content=f"SDTM datasets of {study_id}"),
    )
    mdv = define.MetaDataVersion(OID=f"MDV.{study_id}", Name=f"{study_id} SDTM", DefineVersion="2.1.0",
                                 Description=f"SDTMIG 3.4 tabulation datasets of {study_id}")
    mdv.Standards = define.Standards()
    mdv.Standards.Standard.append(define.Standard(OID="STD.SDTMIG", Name="SDTMIG", Type="IG", Version="3.4",
                                                  Status="Final"))
    mdv.Standards.Standard.append(define.Standard(OID="STD.CT", Name="CDISC/NCI", Type="CT", PublishingSet="SDTM",
                                                  Version=ct.version, Status="Final"))
    used_codelists: set[str] = set()
    used_methods: set[str] = set()
    for name, dataset in result.datasets.items():
        mdv.ItemGroupDef.append(_dataset(mdv, dataset, lengths[name], ct, used_codelists, used_methods))
        if name in ("TS", "LB", "VS"):
            _value_level(mdv, dataset, lengths[name], ct, used_codelists)
    for code in sorted(used_codelists):
        mdv.CodeList.append(_codelist(ct, code))
    for key in sorted(used_methods):
        mdv.MethodDef.append(define.MethodDef(OID=f"MT.{key}", Name=f"Derivation of {key}", Type="Computation",
                                              Description=_text(METHODS[key])))
    study.MetaDataVersion = mdv
    odm.Study = study
    return odm


def _dataset(mdv: define.MetaDataVersion, dataset: Dataset, lengths: Mapping[str, int], ct: ControlledTerms,
             used_codelists: set[str], used_methods: set[str]) -> define.ItemGroupDef:  # fmt: skip
    spec = dataset.spec
    group = define.ItemGroupDef(
        OID=f"IG.{spec.name}", Name=spec.name, Repeating="No" if spec.name == "DM" else "Yes",
        IsReferenceData="Yes" if CLASSES[spec.name] == "TRIAL DESIGN" else "No", SASDatasetName=spec.name,
        Domain=spec.name.removeprefix("SUPP"), Purpose="Tabulation", Structure=STRUCTURES[spec.name],
        ArchiveLocationID=f"LF.{spec.name}",
        StandardOID="STD.SDTMIG", Description=_text(spec.label),
    )  # fmt: skip
    group.Class = define.Class(Name=CLASSES[spec.name])
    group.leaf = define.leaf(ID=f"LF.{spec.name}", href=f"{spec.name.lower()}.xpt",
                             title=define.title(_content=f"{spec.name.lower()}.xpt"))
    for order, variable in enumerate(spec.variables, start=1):
        kind, source, method = origin(spec.name, variable.name)
        item_oid = f"IT.{spec.name}.{variable.name}"
        key = spec.keys.index(variable.name) + 1 if variable.name in spec.keys else None
        group.ItemRef.append(define.ItemRef(ItemOID=item_oid, Mandatory="Yes" if variable.core == "Req" else "No",
                                            OrderNumber=order, KeySequence=key,
                                            MethodOID=f"MT.{method}" if method else None))
        if method:
            used_methods.add(method)
        mdv.ItemDef.append(_item(item_oid, variable, lengths[variable.name], kind, source))
        codelist = ct.variables.get(variable.name)
        if codelist:
            mdv.ItemDef[-1].CodeListRef = define.CodeListRef(CodeListOID=f"CL.{codelist}")
            used_codelists.add(codelist)
    return group


def _item(oid: str, variable: Variable, length: int, kind: str, source: str) -> define.ItemDef:
    name = variable.name
    if name.endswith("DTC"):
        data_type, size = "partialDatetime", None  # ISO 8601 at the precision collected
    elif variable.type == "Num":
        data_type, size = ("integer" if INTEGER.search(name) else "float"), 8
    else:
        data_type, size = "text", length
    item = define.ItemDef(OID=oid, Name=name, DataType=data_type, Length=size, SASFieldName=name,
                          Description=_text(variable.label))
    # Define-XML 2.1 gives a Source only for collected and assigned values.
    item.Origin.append(define.Origin(Type=kind, Source=source if kind in ("Collected", "Assigned") else None))
    return item


def _value_level(mdv: define.MetaDataVersion, dataset: Dataset, lengths: Mapping[str, int], ct: ControlledTerms,
                 used_codelists: set[str]) -> None:  # fmt: skip
    """One value-level entry per test: LBORRES/VSORRES by --TESTCD, TSVAL by TSPARMCD (with its response codelist)."""
    p = dataset.spec.name
    if p == "TS":
        by, names, target, origin_type, source = "TSPARMCD", "TSPARM", "TSVAL", "Protocol", None
    else:
        by, names, target, origin_type, source = f"{p}TESTCD", f"{p}TEST", f"{p}ORRES", "Collected", "Investigator"
    tests = sorted({(str(r[by]), str(r[names])) for r in dataset.rows})
    if not tests:
        return
    value_list = define.ValueListDef(OID=f"VL.{p}.{target}")
    for order, (testcd, test) in enumerate(tests, start=1):
        where = f"WC.{p}.{by}.{testcd}"
        check = define.RangeCheck(Comparator="EQ", SoftHard="Soft", ItemOID=f"IT.{p}.{by}")
        check.CheckValue.append(define.CheckValue(_content=testcd))
        clause = define.WhereClauseDef(OID=where)
        clause.RangeCheck.append(check)
        mdv.WhereClauseDef.append(clause)
        ref = define.ItemRef(ItemOID=f"IT.{p}.{target}.{testcd}", OrderNumber=order, Mandatory="No")
        ref.WhereClauseRef.append(define.WhereClauseRef(WhereClauseOID=where))
        value_list.ItemRef.append(ref)
        item = define.ItemDef(OID=f"IT.{p}.{target}.{testcd}", Name=target, DataType="text",
                              Length=lengths[target], SASFieldName=target, Description=_text(f"{test}: value"))
        item.Origin.append(define.Origin(Type=origin_type, Source=source))
        codelist = ct.ts_responses.get(testcd) if p == "TS" else None
        if codelist:
            item.CodeListRef = define.CodeListRef(CodeListOID=f"CL.{codelist}")
            used_codelists.add(codelist)
        mdv.ItemDef.append(item)
    mdv.ValueListDef.append(value_list)
    parent = next(i for i in mdv.ItemDef if f"IT.{p}.{target}" == i.OID)
    parent.ValueListRef = define.ValueListRef(ValueListOID=value_list.OID)


def _codelist(ct: ControlledTerms, code: str) -> define.CodeList:
    source = ct.codelists[code]
    codelist = define.CodeList(OID=f"CL.{code}", Name=source.name, DataType="text", StandardOID="STD.CT")
    for value, term_code in source.terms.items():
        item = define.EnumeratedItem(CodedValue=value, ExtendedValue="Yes" if value in source.extended else None)
        if term_code and value not in source.extended:
            item.Alias.append(define.Alias(Context="nci:ExtCodeID", Name=term_code))
        codelist.EnumeratedItem.append(item)
    codelist.Alias.append(define.Alias(Context="nci:ExtCodeID", Name=code))
    return codelist


def write_define(odm: define.ODM, folder: Path) -> Path:
    """Write the document as ``define.xml`` in ``folder``."""
    path = folder / DEFINE_FILE
    odm.write_xml(str(path))
    return path
