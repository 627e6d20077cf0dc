"""The command-line reference, walked from the Typer app as Click sees it."""

from __future__ import annotations

import inspect
from enum import Enum
from pathlib import Path
from typing import Any

import typer.main

from scripts.docs.sources import lab_app

INTRO = """# Command line

Every command of `lab`, its arguments and options, as `lab COMMAND --help` prints them.
Exit statuses are in [Reading a run](run-output.md#exit-status). A scenario is given by
bundled name (`enterprise-firewall`) or by path (`./my-office.yaml`) wherever one is
expected.
"""


def cli_page() -> str:
    """The Markdown page for every command, in `lab --help`'s order."""
    root = typer.main.get_command(lab_app())
    context = root.make_context("lab", [], resilient_parsing=True)
    parts = [INTRO, _summary_table(root, context)]
    for name in root.list_commands(context):
        command = root.get_command(context, name)
        if command is not None and not command.hidden:
            parts.append(_command_section(name, command))
    return "\n".join(parts)


def _summary_table(root: Any, context: Any) -> str:
    rows = ["| command | what it does |", "|---|---|"]
    for name in root.list_commands(context):
        command = root.get_command(context, name)
        if command is not None and not command.hidden:
            rows.append(f"| [`lab {name}`](#lab-{name}) | {_cell(_paragraphs(command)[0])} |")
    return "\n".join(rows) + "\n"


def _command_section(name: str, command: Any) -> str:
    lines = [f"## lab {name}", "", "```", f"lab {name} {_usage(command)}".rstrip(), "```", ""]
    for paragraph in _paragraphs(command):
        lines += [paragraph, ""]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if params:
        lines += ["| argument or option | type | default | what it does |", "|---|---|---|---|"]
        lines += [_param_row(p) for p in params]
        lines.append("")
    return "\n".join(lines)


def _paragraphs(command: Any) -> list[str]:
    """The help text's paragraphs, each on one line, as Typer shows them."""
    text = inspect.cleandoc(command.help or "").partition("\f")[0]
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()] or [""]


def _usage(command: Any) -> str:
    """`[OPTIONS] SCENARIO [FILES]...`, as a shell user reads it."""
    pieces = []
    if any(not _is_argument(p) for p in command.params):
        pieces.append("[OPTIONS]")
    for param in command.params:
        if _is_argument(param):
            word = _argument_name(param) + ("..." if param.nargs == -1 else "")
            pieces.append(word if param.required else f"[{word}]")
    return " ".join(pieces)


def _is_argument(param: Any) -> bool:
    return param.param_type_name == "argument"


def _argument_name(param: Any) -> str:
    return (param.metavar or param.name or "").upper().removesuffix("...")


def _param_row(param: Any) -> str:
    names = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
    if _is_argument(param):
        names = f"`{_argument_name(param)}`" + (" ..." if param.nargs == -1 else "")
    help_text = getattr(param, "help", None) or ""
    if param.required:
        help_text = f"{help_text} (required)".strip()
    return f"| {names} | {_type_of(param)} | {_default_of(param)} | {_cell(help_text)} |"


def _type_of(param: Any) -> str:
    """The parameter's type from its annotation, as Typer reads it."""
    if getattr(param, "is_flag", False):
        return "flag"
    annotation = param.type_descriptor.annotation
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    names = {str: "text", int: "integer", float: "number", Path: "path", bool: "flag"}
    if annotation in names:
        return names[annotation]
    inner = getattr(annotation, "__args__", ())
    if inner and inner[0] in names:
        return f"list of {names[inner[0]]}"
    return str(annotation)


def _default_of(param: Any) -> str:
    default = param.default
    if default is None or default is False or default == () or default == "":
        return ""
    if getattr(param, "is_flag", False) and default is True:
        return "on"
    if isinstance(default, list | tuple):
        return ", ".join(f"`{d}`" for d in default)
    return f"`{getattr(default, 'value', default)}`"


def _cell(text: str) -> str:
    """Text for a Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")
