"""Field references of the scenario, topology and result documents, from their JSON Schemas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scripts.docs.sources import schema

INTROS = {
    "scenario": """# Scenario fields

Every field a scenario file may have, from the lab's JSON Schema (`lab schema scenario`
prints it; [Validate as you type](../how-to/editor-validation.md) lets an editor check a
file against it). `<node>` stands for a node of the scenario's topology, `[]` for each
entry of a list. How to write one: [Write a scenario](../how-to/write-a-scenario.md).
""",
    "topology": """# Topology fields

Every field a topology file may have, from the lab's JSON Schema (`lab schema topology`
prints it). `<node>` stands for a node's name, `[]` for each entry of a list. How to
write one: [Write a topology](../how-to/topologies.md).
""",
    "result": """# Result fields

Every field of the document `lab run --json FILE` writes, from the lab's JSON Schema
(`lab schema result` prints it). `[]` stands for each entry of a list. The fields in
context: [Reading a run](run-output.md#the-result-document).
""",
}


@dataclass(frozen=True)
class Field:
    path: str
    kind: str
    required: bool
    description: str


def schema_page(kind: str) -> str:
    """The Markdown field reference of one document kind."""
    root = schema(kind)
    rows = ["| field | type | what it is |", "|---|---|---|"]
    for field in _fields(root, root):
        name = f"`{field.path}`" + (" (required)" if field.required else "")
        rows.append(f"| {name} | {_cell(field.kind)} | {_cell(field.description)} |")
    intro = INTROS[kind]
    described = root.get("description", "")
    return f"{intro}\n{described}\n\n" + "\n".join(rows) + "\n"


def _fields(node: dict[str, Any], root: dict[str, Any]) -> list[Field]:
    found: dict[str, Field] = {}
    _walk(node, root, "", False, found, ())
    return list(found.values())


def _walk(
    node: dict[str, Any],
    root: dict[str, Any],
    path: str,
    required: bool,
    found: dict[str, Field],
    refs: tuple[str, ...],
) -> None:
    ref = node.get("$ref")
    if ref in refs:
        return  # a recursive definition: listed once
    resolved = _resolve(node, root)
    refs = (*refs, ref) if ref else refs
    description = _description(node, resolved)
    # A list's entries get a row of their own only when they say something the list's
    # row (`list of ...`) does not.
    if path and path not in found and (description or not path.endswith("[]")):
        found[path] = Field(path, _kind(resolved, root), required, description)
    for branch in resolved.get("oneOf", []) + resolved.get("anyOf", []):
        _walk(branch, root, path, False, found, refs)
    needed = set(resolved.get("required", []))
    for key, child in resolved.get("properties", {}).items():
        _walk(child, root, _join(path, key), key in needed, found, refs)
    extra = resolved.get("additionalProperties")
    if isinstance(extra, dict):
        _walk(extra, root, _join(path, _placeholder(path)), False, found, refs)
    for child in resolved.get("patternProperties", {}).values():
        _walk(child, root, _join(path, _placeholder(path)), False, found, refs)
    items = resolved.get("items")
    if isinstance(items, dict):
        _walk(items, root, f"{path}[]", False, found, refs)


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return _resolve(target, root)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _placeholder(path: str) -> str:
    """The name a map's keys stand for, by the map's own name."""
    last = path.rsplit(".", 1)[-1].removesuffix("[]")
    return {"conditions": "<node>", "nodes": "<node>", "lan_resolvers": "<node>"}.get(
        last, "<name>"
    )


def _description(node: dict[str, Any], resolved: dict[str, Any]) -> str:
    return node.get("description") or resolved.get("description") or ""


def _kind(node: dict[str, Any], root: dict[str, Any]) -> str:
    """A short type: `a` or `b`, integer 1-3600, list of text, mapping, ..."""
    node = _resolve(node, root)
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return " or ".join(f"`{v}`" if v is not None else "null" for v in node["enum"])
    branches = node.get("oneOf", []) + node.get("anyOf", [])
    if branches:
        return " or ".join(dict.fromkeys(_kind(b, root) for b in branches))
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(_simple(k, node, root) for k in kind)
    if kind:
        return _simple(kind, node, root)
    return "any"


def _simple(kind: str, node: dict[str, Any], root: dict[str, Any]) -> str:
    if kind == "array":
        items = node.get("items")
        return f"list of {_kind(items, root)}" if isinstance(items, dict) else "list"
    if kind == "object":
        return "mapping"
    if kind in ("integer", "number"):
        low, high = node.get("minimum"), node.get("maximum")
        if low is not None and high is not None:
            return f"{kind} {low}-{high}"
        if low is not None:
            return f"{kind} >= {low}"
        return kind
    return {"string": "text", "boolean": "true or false", "null": "null"}.get(kind, kind)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
