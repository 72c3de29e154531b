"""A markdown page showing items beside their generated negatives, changes highlighted, so that a person
can judge them; written as ``report.md`` next to the bank."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from recbole_neggen.generation.bank import BankEntry, NegativeBank

MAX_SHOWN_CHARS = 700
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def _escape(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text.replace("\n", " / "))


def highlight(text: str, values: Iterable[str]) -> str:
    """Escaped ``text`` (cut to MAX_SHOWN_CHARS) with every occurrence of ``values`` in **bold**."""
    shown = _escape(text[:MAX_SHOWN_CHARS] + ("…" if len(text) > MAX_SHOWN_CHARS else ""))
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        shown = re.sub(re.escape(_escape(value)), lambda m: f"**{m.group(0)}**", shown, flags=re.I)
    return shown.replace("****", "")


def _entry_lines(entry: BankEntry) -> list[str]:
    lines = [f"## Item `{entry.item}` ({entry.status})", ""]
    if entry.text is not None:
        lines += [f"- **original text:** {_escape(entry.text[:MAX_SHOWN_CHARS])}",
                  f"- **original look:** {_escape(entry.visual_description or '')}", ""]
    for v in entry.variants:
        lines.append(f"### variant {v.index}: edits {v.modality}")
        lines += [f"- {c['modality']} · {_escape(c['name'])}: ~~{_escape(c['from'])}~~ → **{_escape(c['to'])}**"
                  for c in v.changes]
        for modality, field, text in (("text", "text", v.text), ("visual", "look", v.visual_description)):
            if any(c["modality"] == modality for c in v.changes):
                lines.append(f"- **new {field}:** {highlight(text, [c['to'] for c in v.changes if c['modality'] == modality])}")
        lines.append("")
    rejected = [e for e in entry.log if e["outcome"] == "rejected"]
    if rejected:
        lines.append("Rejected answers:")
        lines += [f"- {e['stage']}{' ' + e['tag'] if 'tag' in e else ''}: {_escape(e.get('error', ''))}" for e in rejected]
        lines.append("")
    return lines


def write_report(bank: NegativeBank | str | Path, n_items: int = 20, path: str | Path | None = None) -> Path:
    """Write the first ``n_items`` bank items and the bank's counters as markdown; returns the path."""
    bank = bank if isinstance(bank, NegativeBank) else NegativeBank.open(bank)
    path = Path(path) if path is not None else bank.directory / "report.md"
    s, stats = bank.settings, bank.stats
    lines = [f"# Generated negatives: `{bank.directory.name}`", "",
             f"backend `{s['backend']['backend']}`, model `{s['backend'].get('model')}`, templates "
             f"`{s['templates']['version']}`, seed {s['seed']}, K = {s['k']}, dataset `{s['dataset_hash']}`; "
             f"{len(bank)} items ({stats['items']['ok']} complete, {stats['items']['partial']} partial, "
             f"{stats['items']['failed']} failed).", "",
             "| stage | parsed | repaired | rejected | usable |", "|---|---|---|---|---|"]
    for stage, c in stats["answers"].items():
        total = sum(c.values())
        usable = f"{(c['parsed'] + c['repaired']) / total:.1%}" if total else "n/a"
        lines.append(f"| {stage} | {c['parsed']} | {c['repaired']} | {c['rejected']} | {usable} |")
    lines += ["", "| variant type | accepted | rejected |", "|---|---|---|"]
    lines += [f"| {tag} | {c['accepted']} | {c['rejected']} |" for tag, c in stats["variants"].items()]
    lines += ["", "Feature spaces: " + "; ".join(f"`{name}` = {meta['map']} ({meta['encoder']}) of the {meta['field']}"
                                                for name, meta in s["spaces"].items()), ""]
    for entry in bank.items()[:n_items]:
        lines += _entry_lines(entry)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
