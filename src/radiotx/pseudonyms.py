"""Keyed pseudonyms: what leaves a study in place of a patient id or of an input file's
path (which often carries one). The key stays with the study, so its team can map the
pseudonyms back; without it they cannot be reversed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

# where a study keeps its key, relative to the study directory
KEY_PATH = Path("results") / "mlflow" / "pseudonym.key"
# the parts of a manifest keyed by input file path
PATH_KEYED = ("inputs", "input_stats")


def pseudonyms(names, key: str) -> dict[str, str]:
    """Name -> a keyed hash (HMAC-SHA256, 16 hex digits): the same name gets the same
    pseudonym under the same key, and without the key the name cannot be recovered."""
    return {
        str(n): hmac.new(key.encode(), str(n).encode(), hashlib.sha256).hexdigest()[:16]
        for n in names
    }


def study_key(path) -> str:
    """The study's key, made at the first call and kept (owner-readable only) at ``path``."""
    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def shareable_manifest(manifest: dict, key: str) -> dict:
    """``manifest`` (see :mod:`radiotx.manifest`) with each input file's path replaced by
    its pseudonym; the checksums stay, so whoever holds the key can still check a re-run's
    inputs file by file (:func:`named_inputs`)."""
    inputs = manifest.get("inputs") or {}
    names = pseudonyms(inputs, key)
    shared = {**manifest, "inputs_pseudonymised": True}
    for part in PATH_KEYED:
        if part in manifest:
            shared[part] = {names.get(path, path): v for path, v in manifest[part].items()}
    return shared


def named_inputs(shared: dict, paths, key: str) -> dict:
    """A :func:`shareable_manifest` with its inputs named again by those of ``paths`` whose
    pseudonym it lists; an input that no path matches keeps its pseudonym."""
    if not shared.get("inputs_pseudonymised"):
        return shared
    by_name = {name: path for path, name in pseudonyms(paths, key).items()}
    manifest = {k: v for k, v in shared.items() if k != "inputs_pseudonymised"}
    for part in PATH_KEYED:
        if part in shared:
            named = {by_name.get(name, name): v for name, v in shared[part].items()}
            manifest[part] = dict(sorted(named.items()))
    return manifest
