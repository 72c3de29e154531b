"""The three versioned prompt templates (analyse, intervene, balance) plus the repair turn.

Files live in ``templates/<version>/``; placeholders use :class:`string.Template` syntax (``$name``) so
JSON braces need no escaping. ``Templates.digest`` hashes the files and goes into a bank's provenance:
editing a template without bumping the version is still detected.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

TEMPLATE_VERSION = "v1"
TEMPLATE_ROOT = Path(__file__).resolve().parent / "templates"
TAGS = ("text", "visual", "both")  # variant types: which modality a variant edits
EDITED = {"text": ("text",), "visual": ("visual",), "both": ("text", "visual")}
FILES = ("analyse", "intervene", "balance", "repair")


def _sections(text: str, path: Path) -> dict[str, str]:
    """Split ``[name]``-headed sections; '#' lines are comments."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            current = sections.setdefault(header.group(1), [])
        elif current is not None:
            current.append(line)
        elif line.strip():
            raise ValueError(f"{path}: text before the first [section] header: {line!r}")
    missing = {*TAGS, "avoid"} - sections.keys()
    if missing:
        raise ValueError(f"{path}: missing sections {sorted(missing)}")
    return {name: "\n".join(lines).rstrip("\n") for name, lines in sections.items()}


def format_analysis(analysis: dict[str, Any]) -> str:
    """Analysis JSON -> four readable lines (modality x key/irrelevant)."""
    lines = []
    for modality in ("text", "visual"):
        for kind in ("key", "irrelevant"):
            attrs = analysis[modality][kind]
            body = "; ".join(f"{a['name']} = {a['value']}" for a in attrs) or "(none)"
            lines.append(f"{modality} {kind}: {body}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Templates:
    """One version of the prompts, rendered into user turns."""

    version: str
    analyse: Template
    intervene: Template
    balance: dict[str, Template]
    repair: Template
    digest: str

    @classmethod
    def load(cls, version: str = TEMPLATE_VERSION) -> "Templates":
        folder = TEMPLATE_ROOT / version
        if not folder.is_dir():
            known = sorted(p.name for p in TEMPLATE_ROOT.iterdir() if p.is_dir())
            raise ValueError(f"unknown template version {version!r}; available: {', '.join(known)}")
        raw = {name: (folder / f"{name}.txt").read_text(encoding="utf-8") for name in FILES}
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]
        balance = {k: Template(v) for k, v in _sections(raw["balance"], folder / "balance.txt").items()}
        return cls(version, Template(raw["analyse"].strip()), Template(raw["intervene"].strip()), balance,
                   Template(raw["repair"].strip()), digest)

    def analyse_prompt(self, source_text: str, has_image: bool) -> str:
        """T1 prompt for one item (``has_image``: the image is attached to this turn)."""
        return self.analyse.substitute(
            product=source_text or "(no product text)",
            image_note="The product image is attached." if has_image
            else "No image is available: infer the appearance from the text.",
            visual_source="from the attached image" if has_image else "as the text suggests it looks",
        )

    def intervene_prompt(self, source_text: str, analysis: dict[str, Any], tag: str, avoid: tuple[str, ...]) -> str:
        """T2 prompt with the T3 balance plan for variant type ``tag``."""
        if tag not in TAGS:
            raise ValueError(f"unknown variant type {tag!r}; choose one of {TAGS}")
        avoid_note = self.balance["avoid"].substitute(values=", ".join(avoid)) if avoid else ""
        plan = self.balance[tag].substitute(avoid=avoid_note)
        return self.intervene.substitute(text=source_text, visual_description=analysis["visual_description"],
                                         analysis=format_analysis(analysis), plan=plan)

    def repair_prompt(self, error: str) -> str:
        """The turn that sends a validation error back to the model."""
        return self.repair.substitute(error=error)
