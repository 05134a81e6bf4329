"""CDISC SDTM (SDTMIG 3.4) from a study's FHIR NDJSON folder: one module per domain group.

``build.build_sdtm`` reads the folder once per resource type and fills the datasets:
``study`` (the study, its subjects and arms), ``design`` (TS, TA, TE, TV, TI),
``special`` (DM, SE, SV, DS), ``interventions`` (EX, CM), ``findings`` (LB, VS, QS, MB).
``check`` holds the conformance rules, ``xpt`` writes the files, ``terms`` loads the
mapping files. docs/export.md lists every variable's source.
"""
