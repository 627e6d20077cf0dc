"""Loading YAML documents and validating them against the lab's JSON Schemas.

Every error names the file and the field, so `lab validate` and `lab run` can
print one line the user can act on. Valid documents (nearly all of them) are checked by
jsonschema-rs, a hundred times faster than jsonschema (0.1 ms instead of 20 for a
result): a matrix validates three documents per cell. Only an invalid one goes through
jsonschema, whose errors say which field is wrong and why.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from lab.core.errors import LabInputError

SCHEMA_NAMES = ("scenario", "topology", "result")
#: A JSON or YAML object as a file, a process or a socket gives it (a scenario's spec, a
#: browser's getStats() entry, a signaling message, an HTTP body, a peer's observations):
#: what is in it is its schema's or its protocol's business, and the code that reads it
#: says which. The run's result is not one of these: it is typed (lab/report/result.py).
JsonObject = dict[str, Any]
#: libyaml's safe loader where PyYAML was built with it: ten times faster.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """Return the JSON Schema shipped in the package for `kind` (scenario, topology, result)."""
    if kind not in SCHEMA_NAMES:
        raise LabInputError(f"unknown schema '{kind}': choose one of {', '.join(SCHEMA_NAMES)}")
    text = resources.files("lab.core.schemas").joinpath(f"{kind}.schema.json").read_text()
    return json.loads(text)


def field_path(path: Any) -> str:
    """Render a jsonschema error path as `peers.viewer.host` or `links[2].addresses`."""
    rendered = ""
    for part in path:
        rendered += f"[{part}]" if isinstance(part, int) else (f".{part}" if rendered else part)
    return rendered or "(top level)"


@cache
def _fast_validator(kind: str) -> Any:
    return jsonschema_rs.Draft202012Validator(load_schema(kind))


def schema_errors(document: Any, kind: str) -> list[str]:
    """All schema violations of `document`, each as 'field: message', most relevant first."""
    if _fast_validator(kind).is_valid(document):
        return []
    import jsonschema  # its errors name the field and the reason best

    validator = jsonschema.Draft202012Validator(load_schema(kind))
    errors = sorted(validator.iter_errors(document), key=jsonschema.exceptions.relevance)
    return [_describe(error) for error in errors]


def _describe(error: Any) -> str:
    import jsonschema  # lazy, as above: only an invalid document pays for it

    best = jsonschema.exceptions.best_match([error])
    if best.context:
        best = jsonschema.exceptions.best_match(best.context)
    message = best.message
    if best.validator == "additionalProperties":
        message = f"unknown field ({message})"
    return f"{field_path(best.absolute_path)}: {message}"


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, naming the file and line on a syntax error."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise LabInputError(f"{path}: no such file") from None
    except OSError as exc:
        raise LabInputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LabInputError(f"{path}:{where}: invalid YAML: {problem}") from None


def load_document(path: Path, kind: str) -> dict[str, Any]:
    """Read and validate a scenario or topology file; raise LabInputError naming file and field."""
    document = read_yaml(path)
    if not isinstance(document, dict):
        raise LabInputError(
            f"{path}: expected a mapping of fields, found {type(document).__name__}"
        )
    errors = schema_errors(document, kind)
    if errors:
        raise LabInputError(f"{path}: {errors[0]}")
    return document
