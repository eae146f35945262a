"""The text fields of an upload (``POST /user/scene/new``, a resumable upload's metadata, a retry): what each
must say, judged as a whole (``parse_scene_request``) or, while the file is still to come, one by one
(``check_early_fields``). ``BadRequestError`` names the field and the value."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vidscene import catalogue
from vidscene.api.errors import BadRequestError

_DIGITS = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class SceneRequest:
    training_mode: str
    output_types: list[str]
    save_iterations: list[int]  # sorted, unique, always includes total_iterations
    total_iterations: int
    name: str
    preset: str


def _required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise BadRequestError(f"Missing field: {name}.")
    return value.strip()


def _iteration(text: str, field: str, upper: int) -> int:
    if not _DIGITS.fullmatch(text):
        raise BadRequestError(f"Invalid {field}: {text[:20]!r} is not a whole number.")
    if len(text.lstrip("0")) > len(str(upper)):  # never int() thousands of digits (Python refuses past 4300)
        raise BadRequestError(f"Invalid {field}: {text[:20]}... is outside 1..{upper}.")
    value = int(text)
    if not 1 <= value <= upper:
        raise BadRequestError(f"Invalid {field}: {value} is outside 1..{upper}.")
    return value


def _modes_making(output_type: str) -> str:
    return " or ".join(f"training_mode={m}" for m in catalogue.OUTPUT_TYPES[output_type].modes)


def check_early_fields(fields: dict[str, str], *, default_preset: str) -> None:
    """Refuse, when the file part begins, every field already received that is wrong whatever follows it, so
    a multi-GB upload is not read in full for a 400. A field still missing may follow the file: it, and what
    depends on it (save_iterations past a total_iterations not yet seen), is judged at the end."""
    mode = _training_mode(fields["training_mode"].strip()) if "training_mode" in fields else None
    if "output_types" in fields:
        _output_types(fields["output_types"], mode)
    total = None
    if "total_iterations" in fields:
        total = _iteration(fields["total_iterations"].strip(), "total_iterations", catalogue.MAX_TOTAL_ITERATIONS)
    if "save_iterations" in fields:
        _save_iterations(fields["save_iterations"], total or catalogue.MAX_TOTAL_ITERATIONS)
    if "scene_name" in fields:
        check_scene_name(fields["scene_name"].strip())
    if "preset" in fields:
        _preset(fields["preset"], default_preset)


def parse_scene_request(fields: dict[str, str], *, default_preset: str = catalogue.DEFAULT_PRESET) -> SceneRequest:
    """Validate the text fields of ``POST /user/scene/new`` (and of a retry); ``BadRequestError`` names the
    field and value. ``preset`` is optional (the server's default preset)."""
    mode = _training_mode(_required(fields, "training_mode"))
    output_types = _output_types(_required(fields, "output_types"), mode)
    total = _iteration(_required(fields, "total_iterations"), "total_iterations", catalogue.MAX_TOTAL_ITERATIONS)
    saves = {total, *_save_iterations(_required(fields, "save_iterations"), total)}
    name = check_scene_name((fields.get("scene_name") or "").strip() or catalogue.DEFAULT_SCENE_NAME)
    preset = _preset(fields.get("preset") or "", default_preset)
    return SceneRequest(training_mode=mode, output_types=output_types, save_iterations=sorted(saves),
                        total_iterations=total, name=name, preset=preset)


def _training_mode(mode: str) -> str:
    if mode not in catalogue.TRAINING_MODES:
        choices = " or ".join(repr(m) for m in catalogue.TRAINING_MODES)
        raise BadRequestError(f"Invalid training_mode: {mode!r}; use {choices}.")
    return mode


def _output_types(text: str, mode: str | None) -> list[str]:
    """The listed output types, each known and (once the mode is known) made by ``mode``."""
    allowed = catalogue.TRAINING_MODES[mode].outputs if mode is not None else None
    output_types: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item or item in output_types:
            continue
        if item not in catalogue.OUTPUT_TYPES:
            raise BadRequestError(f"Invalid output_types: unknown output type {item!r}.")
        if allowed is not None and item not in allowed:
            raise BadRequestError(f"Invalid output_types: {item!r} needs {_modes_making(item)}.")
        output_types.append(item)
    if not output_types:
        raise BadRequestError("Invalid output_types: name at least one output type.")
    return output_types


def _save_iterations(text: str, upper: int) -> set[int]:
    return {_iteration(item.strip(), "save_iterations", upper) for item in text.split(",") if item.strip()}


def _preset(text: str, default_preset: str) -> str:
    preset = text.strip() or default_preset
    if preset not in catalogue.PRESETS:
        choices = ", ".join(repr(p) for p in catalogue.PRESETS)
        raise BadRequestError(f"Invalid preset: {preset[:40]!r}; use one of {choices}.")
    return preset


def check_scene_name(name: str, field: str = "scene_name") -> str:
    if len(name) > catalogue.MAX_SCENE_NAME:
        raise BadRequestError(f"Invalid {field}: at most {catalogue.MAX_SCENE_NAME} characters.")
    return name
