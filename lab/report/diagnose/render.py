"""What `lab diagnose` prints: findings by line, unread lines by component, the unknowns,
each inference with its reasoning and evidence lines, and the verdict."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lab.core.documents import JsonObject
from lab.report.diagnose.sniff import FORMATS

#: Finding kinds shown one line each; `other` (lines no message explains) are counted instead.
COUNTED = ("other",)


def render(diagnosis: JsonObject, out: Any) -> None:
    """Findings with their lines, the unknowns, and each inference with its reasoning."""
    facts = diagnosis["facts"]
    _say(
        out,
        f"{diagnosis['input']}: {FORMATS[diagnosis['format']]}; peer(s): "
        f"{', '.join(facts.peers)} ({facts.role_source})",
    )
    out.print("findings", style="bold")
    for f in diagnosis["findings"]:
        if f.kind not in COUNTED:
            role = f"{f.role}: " if f.role else ""
            _say(out, f"  {f.line:>5}  {role}{f.kind}: {_brief(f)}")
    _unexplained(diagnosis["findings"], out)
    for role, peer in facts.peers.items():
        if peer.timings:
            spans = ", ".join(f"{k.removesuffix('_s')} {v:.3f} s" for k, v in peer.timings.items())
            _say(out, f"timings ({role}, from the log's time stamps): {spans}")
    if facts.unknowns:
        out.print("unknown (the artifact does not say)", style="bold")
        for gap in facts.unknowns:
            _say(out, f"  - {gap}")
    out.print("inferences", style="bold")
    if not diagnosis["inferences"]:
        _say(out, "  no rule held: the scenario is the baseline (two homes, cone NATs)")
    for i in diagnosis["inferences"]:
        d = i.as_dict()
        _say(out, f"  {d['rule']} ({d['role']}): {d['reasoning']}")
        if d["evidence_lines"]:
            _say(out, f"    evidence: lines {', '.join(map(str, d['evidence_lines']))}")
        _say(out, f"    advice: {d['advice']}")


def _unexplained(findings: list[Any], out: Any) -> None:
    """C SDK lines no message explains, counted by component (each is in the JSON)."""
    counts = Counter(f.data.get("component", "other") for f in findings if f.kind in COUNTED)
    if counts:
        parts = ", ".join(f"{component} {n}" for component, n in counts.most_common())
        _say(out, f"  other C SDK lines (no known message), by component: {parts}")


def _say(out: Any, text: str) -> None:
    out.print(text, highlight=False, markup=False, soft_wrap=True)


def _brief(f: Any) -> str:
    d = f.data
    if f.kind == "candidate":
        where = f"{d.get('address') or '?'}:{d.get('port') or '?'}"
        relay = f"/{d['relay_protocol']}" if d.get("relay_protocol") else ""
        return f"{d.get('side', 'local')} {d['type']} {where}{relay}"
    if f.kind == "status":
        return f"{d['code']} {d['name']}"
    if f.kind in ("turn_error",):
        return f"{d['code']} {d['phrase']}"
    if f.kind == "gathering_error":
        return f"{d['url']}: {d['reason']}"
    if f.kind == "selected":
        rtt = f", rtt {d['rtt_ms']:g} ms" if d.get("rtt_ms") is not None else ""
        return (
            " -> ".join(str(d.get(k) or "?") for k in ("local", "remote"))
            + (f" over {d['relay_protocol']}" if d.get("relay_protocol") else "")
            + rtt
        )
    shown = {k: v for k, v in d.items() if k not in ("how", "at_s", "id")}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or f.text[:80]


def render_verdict(verdict: JsonObject, advice: list[str], out: Any) -> None:
    out.print("verdict (artifact vs run)", style="bold")
    for c in verdict["checks"]:
        mark = {True: "yes", False: "NO ", None: " ? "}[c["match"]]
        _say(out, f"  {mark} {c['role']} {c['field']}: artifact {c['artifact']}, run {c['run']}")
    word = {True: "yes", False: "no", None: "unknown"}[verdict["reproduced"]]
    why = f" ({verdict['why']})" if verdict.get("why") else ""
    _say(out, f"reproduced: {word}{why}")
    for text in dict.fromkeys(advice):
        _say(out, f"advice: {text}")
