"""Every help text of the `lab` command reads as whole sentences: no line break inside a
paragraph. Typer's rich help keeps a docstring's single line breaks, so a docstring wrapped
at the source's width shows `exit 1 if the` / `NAT does not behave` on two lines."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import typer.main

from scripts.docs.sources import lab_app


def _commands(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, f"{path} {name}")


def _broken_paragraphs(text: str) -> list[str]:
    cleaned = inspect.cleandoc(text).partition("\f")[0]
    return [p for p in cleaned.split("\n\n") if "\n" in p.strip()]


def test_no_help_text_breaks_a_paragraph() -> None:
    broken = []
    for path, command in _commands(typer.main.get_command(lab_app()), "lab"):
        broken += [f"{path}: {p!r}" for p in _broken_paragraphs(command.help or "")]
        for param in command.params:
            help_text = getattr(param, "help", None) or ""
            broken += [f"{path} {param.name}: {p!r}" for p in _broken_paragraphs(help_text)]
    assert not broken, "help text broken mid-paragraph (write each paragraph on one line):\n" + (
        "\n".join(broken)
    )


def test_the_check_sees_a_docstring_wrapped_at_the_source_width() -> None:
    wrapped = """Measure mapping, filtering and hairpinning from HOST (RFC 5780); exit 1 if the
        NAT does not behave as the scenario declares."""
    assert _broken_paragraphs(wrapped)
    assert not _broken_paragraphs("One line.\n\n        A second paragraph, one line too.")
