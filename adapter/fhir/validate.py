"""Check resources against the ``fhir.resources.R4B`` models (structure and datatypes).

R4B is wire-identical to R4 for the resources this project writes (see
ARCHITECTURE.md); the models catch wrong element names, types and cardinalities.
They do not check terminology bindings or invariants: the FHIR server's
``$validate`` does that, in the integration tests.
"""

from __future__ import annotations

from typing import Any

import pydantic
from fhir.resources.R4B import get_fhir_model_class

from adapter.errors import MappingError


def r4b_problems(resource: dict[str, Any]) -> list[str]:
    """What the R4B model of ``resource``'s type finds wrong with it, as ``path: message`` lines."""
    kind = resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(kind))
    except ValueError:  # fhir.resources' answer to a name that is no R4B resource
        return [f"resourceType: unknown resource type {kind!r}"]
    try:
        model.model_validate(resource)
    except pydantic.ValidationError as error:
        return [f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}" for problem in error.errors()]
    return []


def check_r4b(resource: dict[str, Any]) -> None:
    """Raise ``MappingError`` naming the resource and the first element the R4B model rejects."""
    problems = r4b_problems(resource)
    if problems:
        element, _, reason = problems[0].partition(": ")
        raise MappingError(
            reason + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            record_id=f"{resource.get('resourceType')}/{resource.get('id')}",
            element=element,
            value=None,
        )
