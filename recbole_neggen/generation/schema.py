"""Model answers -> validated dicts: JSON extraction from chatter, the two schemas, and the method's checks.

Schemas (method.md §3):

- analysis (T1): ``{"visual_description": str, "text": {"key": [attr], "irrelevant": [attr]},
  "visual": {...}}`` with ``attr = {"name": str, "value": str}``;
- variant (T2): ``{"text": str|null, "visual_description": str|null,
  "changes": [{"modality": "text"|"visual", "name": str, "from": str, "to": str}]}``.

Unknown keys are ignored (never stored). Every failure raises :class:`AnswerError` whose message is
written for the model: it is sent back in the repair turn.
"""
from __future__ import annotations

import ast
import json
import re
from itertools import groupby
from typing import Any, Callable, Iterator, Sequence, TypeVar

from recbole_neggen.generation.templates import EDITED

T = TypeVar("T")

MAX_ANSWER_CHARS = 60_000  # longer answers are cut before parsing
MAX_FIELD_CHARS = 4_000  # longest accepted text / visual description
MAX_CANDIDATES = 24  # '{' positions tried per answer
SOURCE_FIELD = {"text": "text", "visual": "visual_description"}

_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.S)
_BAREWORD = {"true": "True", "false": "False", "null": "None"}
_WORD = re.compile(r"[A-Za-z_]+")


class AnswerError(ValueError):
    """An answer that cannot be used; the message says why, in words a model can act on."""


def _quoted(text: str, start: int = 0) -> Iterator[tuple[int, str, bool]]:
    """``(index, character, inside a string)`` from ``start`` on; both quote kinds, backslash escapes, and an
    apostrophe right after a letter or digit is no quote (``don't``). Opening quotes count as inside."""
    quote, escaped = "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            yield i, ch, True
        elif ch == '"' or (ch == "'" and not (i > 0 and text[i - 1].isalnum())):
            quote = ch
            yield i, ch, True
        else:
            yield i, ch, False


def _matching_brace(text: str, start: int) -> int | None:
    """Index of the '}' closing the '{' at ``start`` (string-aware), or None."""
    depth = 0
    for i, ch, inside in _quoted(text, start):
        if inside:
            continue
        depth += (ch == "{") - (ch == "}")
        if ch == "}" and depth == 0:
            return i
    return None


def json_candidates(answer: str) -> Iterator[str]:
    """Substrings that may hold a JSON object: fenced blocks first, then balanced ``{...}`` spans."""
    answer = answer[:MAX_ANSWER_CHARS]
    sources = [m.group(1) for m in _FENCE.finditer(answer)] + [answer]
    tried = 0
    for source in sources:
        start = source.find("{")
        while start != -1 and tried < MAX_CANDIDATES:
            tried += 1
            end = _matching_brace(source, start)
            if end is not None:
                yield source[start : end + 1]
            start = source.find("{", start + 1)


def _pythonize(text: str) -> str:
    """JSON barewords -> Python literals outside strings (so ``ast.literal_eval`` accepts the text)."""
    out = []
    for inside, run in groupby(_quoted(text), key=lambda state: state[2]):
        chunk = "".join(ch for _, ch, _ in run)
        out.append(chunk if inside else _WORD.sub(lambda m: _BAREWORD.get(m.group(0), m.group(0)), chunk))
    return "".join(out)


def loads_lenient(text: str) -> Any:
    """``json.loads``, else a tolerant reading (single quotes, trailing commas, Python literals)."""
    try:
        return json.loads(text)
    except ValueError:  # JSONDecodeError, or an integer too long to convert
        pass
    try:
        return ast.literal_eval(_pythonize(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise AnswerError(f"the JSON object is malformed ({type(exc).__name__})") from None


def parse_answer(answer: str | dict[str, Any], validate: Callable[[dict[str, Any]], T]) -> T:
    """First JSON object in ``answer`` that validates. Raises the first object's :class:`AnswerError`,
    or one saying no complete object was found."""
    if isinstance(answer, dict):
        return validate(answer)
    first_error: AnswerError | None = None
    for candidate in json_candidates(answer):
        try:
            obj = loads_lenient(candidate)
            if not isinstance(obj, dict):
                raise AnswerError("the answer must be one JSON object")
            return validate(obj)
        except AnswerError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    raise AnswerError("no complete JSON object found in the answer")


# ------------------------------------------------------------------------------------- helpers
def _text(value: Any, where: str, limit: int = MAX_FIELD_CHARS) -> str:
    """A non-empty string (numbers are accepted and written as text)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise AnswerError(f"{where} must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise AnswerError(f"{where} must not be empty")
    if len(text) > limit:
        raise AnswerError(f"{where} is too long ({len(text)} characters, at most {limit})")
    return text


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AnswerError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise AnswerError(f"{where} must be a list, got {type(value).__name__}")
    return value


def _attributes(value: Any, where: str) -> list[dict[str, str]]:
    attrs, seen = [], set()
    for i, attr in enumerate(_list(value, where)):
        attr = _object(attr, f"{where}[{i}]")
        name = _text(attr.get("name"), f"{where}[{i}].name", 80)
        if name.casefold() in seen:
            raise AnswerError(f"{where} lists the attribute {name!r} twice")
        seen.add(name.casefold())
        attrs.append({"name": name, "value": _text(attr.get("value"), f"{where}[{i}].value", 200)})
    return attrs


def validate_analysis(obj: dict[str, Any]) -> dict[str, Any]:
    """T1 answer -> normalised analysis; each modality needs at least one key attribute."""
    out: dict[str, Any] = {"visual_description": _text(obj.get("visual_description"), "visual_description")}
    for modality in ("text", "visual"):
        block = _object(obj.get(modality), modality)
        out[modality] = {kind: _attributes(block.get(kind, []), f"{modality}.{kind}") for kind in ("key", "irrelevant")}
        if not out[modality]["key"]:
            raise AnswerError(f"{modality}.key must list at least one key attribute")
    return out


def validate_variant(
    obj: dict[str, Any],
    *,
    tag: str,
    analysis: dict[str, Any],
    source_text: str,
    earlier: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """T2 answer for variant type ``tag`` -> ``{"modality", "text", "visual_description", "changes"}``.

    Checks (method.md §3): every field present and typed; at least one change per edited modality and
    none for the other; change names are the modality's key attributes, ``from`` is the analysed value,
    ``to`` differs and appears in the rewritten field; the unedited modality is null or byte-identical
    (after trimming) to its source and is stored as the source; irrelevant values found in the source
    are still present; the variant repeats no ``earlier`` variant.
    """
    edited = EDITED[tag]
    source = {"text": source_text, "visual": analysis["visual_description"]}
    result: dict[str, Any] = {"modality": tag}
    for modality, key in SOURCE_FIELD.items():
        if key not in obj:
            raise AnswerError(f'the field "{key}" is missing')
        value = obj[key]
        if modality in edited:
            new = _text(value, key, max(MAX_FIELD_CHARS, 2 * len(source[modality])))
            if new == source[modality]:
                raise AnswerError(f'"{key}" must be rewritten, but it repeats the original')
        else:
            if value is not None and (not isinstance(value, str) or value.strip() != source[modality].strip()):
                raise AnswerError(f'"{key}" must be null (kept unchanged) because this variant edits only {edited[0]}')
            new = source[modality]
        result[key] = new
    changes, seen = [], set()
    for i, change in enumerate(_list(obj.get("changes"), "changes")):
        change = _object(change, f"changes[{i}]")
        modality = change.get("modality")
        if modality not in edited:
            raise AnswerError(f"changes[{i}].modality must be one of {list(edited)}, got {modality!r}")
        keys = {a["name"].casefold(): a for a in analysis[modality]["key"]}
        name = _text(change.get("name"), f"changes[{i}].name", 80)
        if name.casefold() not in keys:
            raise AnswerError(f"changes[{i}].name {name!r} is not a key {modality} attribute; "
                              f"use one of {[a['name'] for a in analysis[modality]['key']]}")
        attr = keys[name.casefold()]
        if (modality, attr["name"]) in seen:
            raise AnswerError(f"changes lists {modality} attribute {attr['name']!r} twice")
        seen.add((modality, attr["name"]))
        old = _text(change.get("from"), f"changes[{i}].from", 200)
        if old.casefold() != attr["value"].casefold():
            raise AnswerError(f"changes[{i}].from must be the analysed value {attr['value']!r}, got {old!r}")
        new = _text(change.get("to"), f"changes[{i}].to", 200)
        if new.casefold() == old.casefold():
            raise AnswerError(f"changes[{i}].to must differ from its old value {old!r}")
        if new.casefold() not in result[SOURCE_FIELD[modality]].casefold():
            raise AnswerError(f"changes[{i}].to {new!r} does not appear in the rewritten {SOURCE_FIELD[modality]}")
        changes.append({"modality": modality, "name": attr["name"], "from": attr["value"], "to": new})
    for modality in edited:
        if not any(c["modality"] == modality for c in changes):
            raise AnswerError(f"changes must include at least one {modality} change")
        rewritten = result[SOURCE_FIELD[modality]].casefold()
        for attr in analysis[modality]["irrelevant"]:
            value = attr["value"].casefold()
            if value in source[modality].casefold() and value not in rewritten:
                raise AnswerError(f"the irrelevant {modality} attribute {attr['name']!r} ({attr['value']!r}) "
                                  f"must be kept unchanged")
    result["changes"] = changes
    for j, other in enumerate(earlier):
        if other["text"] == result["text"] and other["visual_description"] == result["visual_description"]:
            raise AnswerError(f"this variant repeats an earlier one (variant {other.get('index', j)}); choose other values")
    return result
