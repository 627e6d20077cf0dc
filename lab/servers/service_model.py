"""The service as botocore's models describe it: which operation a request is, whether
its input is valid, and what an error looks like on the wire.

The models are the installed botocore's (`kinesisvideo` 2017-09-30 and
`kinesis-video-signaling` 2019-12-04), the same that boto3 builds its requests from and
parses answers with, so the emulation cannot drift from them. They are loaded on the
first API request: the WebSocket side never needs them.

Validation checks what the service's own front end checks from the model: required
members, lengths, patterns (matched whole, as Java's `matches` does), enums and ranges,
answering `InvalidArgumentException` with the service's wording ("1 validation error
detected: Value 'a b' at 'channelName' failed to satisfy constraint: ..."). A value of the
wrong JSON type is a `SerializationException`, as it is for every rest-json service.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab.core.documents import JsonObject

if TYPE_CHECKING:
    from botocore.model import OperationModel, ServiceModel, Shape  # lazy: see above

SERVICES = ("kinesisvideo", "kinesis-video-signaling")
# Errors of the front end rather than of a model: their status, and their body member.
FRAMEWORK_ERRORS = {"SerializationException": 400, "UnknownOperationException": 404}
# x-amzn-ErrorType of a modelled error, e.g. "ResourceInUseException:https://kinesisvideo.
# amazonaws.com/doc/2017-09-30/" as the service's SDKs show it; botocore keeps the type.
MODEL_NAMESPACE = "https://kinesisvideo.amazonaws.com/doc/{version}/"
FRAMEWORK_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.coral.service/"
# The JSON value each model type arrives as (timestamps and blobs are not in these inputs).
JSON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "long": int,
    "boolean": bool,
    "structure": dict,
    "list": list,
    "map": dict,
}
# Java's Unicode classes in tag patterns, as Python's nearest equivalents in a class.
JAVA_CLASSES = {r"\p{L}": r"\w", r"\p{N}": r"\w", r"\p{Z}": r"\s"}


class ServiceError(Exception):
    """A refused call: its error type (a model's error shape, or a front-end error) and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class Operation:
    """One operation of a model, found by its HTTP method and path."""

    service: str
    name: str
    model: OperationModel

    @property
    def api_version(self) -> str:
        return str(self.model.service_model.api_version)


@functools.cache
def models() -> dict[str, ServiceModel]:
    """The two service models, by botocore service name."""
    # Lazy: botocore (about 0.15 s) only for a run with the emulated service's APIs.
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel  # lazy: see above

    loader = create_loader()
    return {
        name: ServiceModel(loader.load_service_model(name, "service-2"), name) for name in SERVICES
    }


@functools.cache
def _routes() -> dict[tuple[str, str], Operation]:
    routes = {}
    for service, model in models().items():
        for name in model.operation_names:
            operation = model.operation_model(name)
            routes[(operation.http["method"], operation.http["requestUri"])] = Operation(
                service, name, operation
            )
    return routes


def operation_for(method: str, path: str) -> Operation | None:
    """The operation a request is (the models' paths are fixed: no labels in these APIs)."""
    return _routes().get((method, path))


@functools.cache
def _error_shapes() -> dict[str, Shape]:
    return {shape.name: shape for model in models().values() for shape in model.error_shapes}


def error_status(error_type: str) -> int:
    """The HTTP status of an error: the model's httpStatusCode, else the front end's."""
    shape = _error_shapes().get(error_type)
    if shape is not None:
        return int(shape.metadata["error"]["httpStatusCode"])
    return FRAMEWORK_ERRORS.get(error_type, 400)


def error_document(error_type: str, message: str) -> dict[str, str]:
    """The error's JSON body: its shape's message member ("Message" in most, "message" in
    some signaling errors and in the front end's)."""
    shape = _error_shapes().get(error_type)
    members = list(shape.members) if shape is not None else []
    return {members[0] if members else "message": message}


def error_header(error_type: str, api_version: str) -> str:
    """x-amzn-ErrorType for an error answered by an operation of `api_version`."""
    if error_type in FRAMEWORK_ERRORS:
        return f"{error_type}:{FRAMEWORK_NAMESPACE}"
    return f"{error_type}:{MODEL_NAMESPACE.format(version=api_version)}"


def parse_input(operation: Operation, body: bytes) -> JsonObject:
    """The request body as the operation's input; ServiceError unless valid."""
    try:
        document = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ServiceError("SerializationException", "The request body is not JSON.") from None
    if not isinstance(document, dict):
        raise ServiceError("SerializationException", "The request body is not a JSON object.")
    problems = validate(operation.model.input_shape, document)
    if problems:
        plural = "s" if len(problems) > 1 else ""
        raise ServiceError(
            "InvalidArgumentException",
            f"{len(problems)} validation error{plural} detected: " + "; ".join(problems),
        )
    return document


def validate(shape: Shape | None, value: JsonObject, path: str = "") -> list[str]:
    """The constraint violations of a structure's members, in the service's words."""
    problems: list[str] = []
    if shape is None:
        return problems
    for name, member in shape.members.items():
        where = f"{path}{name[0].lower()}{name[1:]}"
        if name not in value or value[name] is None:
            if name in shape.required_members:
                problems.append(
                    f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
                )
            continue
        problems += _member(member, value[name], where)
    return problems


def _member(shape: Shape, value: Any, where: str) -> list[str]:
    kind = shape.type_name
    expected = JSON_TYPES.get(kind)
    wrong_int = kind in ("integer", "long") and isinstance(value, bool)
    if expected is not None and (not isinstance(value, expected) or wrong_int):
        raise ServiceError(
            "SerializationException", f"Unexpected value type at '{where}': expected a {kind}."
        )
    if kind == "structure":
        return validate(shape, value, f"{where}.")
    problems = [
        f"Value {_show(value)} at '{where}' failed to satisfy constraint: Member must {rule}"
        for rule in _broken_rules(shape, value)
    ]
    if kind == "list":
        for index, item in enumerate(value, start=1):
            problems += _member(shape.member, item, f"{where}.{index}.member")
    return problems


def _broken_rules(shape: Shape, value: Any) -> list[str]:
    metadata = shape.metadata
    if shape.type_name in ("integer", "long"):
        size, what = value, "value"
    elif isinstance(value, str | list | dict):
        size, what = len(value), "length"
    else:  # booleans, timestamps, blobs: no range in these models
        size, what = None, ""
    rules = []
    if size is not None and "min" in metadata and size < metadata["min"]:
        rules.append(f"have {what} greater than or equal to {metadata['min']}")
    if size is not None and "max" in metadata and size > metadata["max"]:
        rules.append(f"have {what} less than or equal to {metadata['max']}")
    pattern = _pattern(metadata.get("pattern"))
    if isinstance(value, str) and pattern is not None and not pattern.fullmatch(value):
        rules.append(f"satisfy regular expression pattern: {metadata['pattern']}")
    enum = getattr(shape, "enum", None)
    if isinstance(value, str) and enum and value not in enum:
        rules.append(f"satisfy enum value set: [{', '.join(enum)}]")
    return rules


@functools.cache
def _pattern(java: str | None) -> re.Pattern[str] | None:
    if java is None:
        return None
    python = java
    for java_class, equivalent in JAVA_CLASSES.items():
        python = python.replace(java_class, equivalent)
    try:
        return re.compile(python)
    except re.error:  # a construct Python lacks: leave the value to the other checks
        return None


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return f"'{value}'"
