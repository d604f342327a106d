"""The study config checked against the workflow's JSON schema, with every problem named by
its key path and, for a mistyped key, the nearest valid one (Snakemake's own check prints
the sub-schema that failed, up to the whole schema for a top-level key)."""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from radiotx.errors import InputError

_LONGEST = 160  # characters of a value shown in a message


def problems(config: dict, schema_path) -> list[str]:
    """One line per way in which ``config`` breaks the schema, by key path."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    found = []
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.path]):
        found += _describe(error)
    return found


def check(config: dict, schema_path, path="config/config.yaml") -> None:
    """Raise InputError listing every problem of ``config`` (the file ``path``)."""
    found = problems(config, schema_path)
    if found:
        listing = "".join(f"\n  - {line}" for line in found)
        raise InputError(
            f"{len(found)} problem{'s' if len(found) > 1 else ''} in the config",
            path=path,
            fix=f"correct these keys (config/README.md describes every setting):{listing}",
        )


def _describe(error) -> list[str]:
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        lines = []
        for key in error.instance:
            if key in allowed:
                continue
            name = f"{where}.{key}" if where else str(key)
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {where + '.' if where else ''}{near[0]}?)" if near else ""
            valid = ", ".join(allowed) if len(allowed) <= 25 else f"{len(allowed)} keys"
            lines.append(f"{name}: not a setting here{hint}; valid: {valid}")
        return lines
    message = error.message
    if len(message) > _LONGEST:
        message = message[:_LONGEST] + " ..."
    return [f"{where or '(top level)'}: {message}"]
