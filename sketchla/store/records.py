"""Completion records of chunks and records of finished stages.

Stored as::

    <path>/_done/<name>/<key>/zarr.json    attrs = {"files": manifest of the chunk}   (or {})
    <path>/_stages/<name>/zarr.json        attrs = {"info", "finished", "files": {array: manifest}}

Completion records are one tiny object per chunk (a Zarr group whose
``zarr.json`` is written in one go, by an atomic rename), so many worker
processes may finish chunks at once with no read-modify-write of shared
metadata. A record is only ever written after the chunk's data write has
returned, so a killed task leaves no record and its chunk is recomputed on
resume. Workers hold only the store's path and call
:func:`write_done_record`; the rest is used through
:class:`~sketchla.store.RunStore`, which checks names and write access.

Integrity. A record carries the manifest of the chunk files it covers
(``manifest.py``). :func:`verify_done` compares the files with it and reports
the chunks that fail, so they are recomputed instead of silently used; stages
carry the manifest of the arrays they wrote and are checked the same way
(:func:`read_stage`). :func:`verify_all` checks every record of a store.
"""
from __future__ import annotations

import datetime as _dt

from .layout import DONE, STAGES, check_key, jsonable
from .location import as_location, key_parts
from .manifest import array_manifest, check_manifest

__all__ = ["write_done_record", "done_keys", "verify_done", "forget_done", "write_stage", "read_stage",
           "forget_stage", "stage_names", "verify_all"]


# -- completion records of chunks ------------------------------------------
def write_done_record(store_path, name: str, key, files: dict | None = None) -> None:
    """Write the completion record of chunk ``key`` of ``name`` (with its file
    manifest) in one atomic step. Used by worker processes, which hold only the path."""
    key = check_key(key)
    loc = as_location(store_path)
    loc.ensure_groups(f"{DONE}/{name}")
    loc.write_json(f"{DONE}/{name}/{key}/zarr.json",
                   _group_json({} if files is None else {"files": files}))


def _group_json(attributes: dict) -> dict:
    from .atomic import group_json

    return group_json(attributes)


def done_keys(store_path, name: str) -> set[str]:
    """Keys (as strings) of the completed chunks of ``name`` (records not verified)."""
    return set(as_location(store_path).record_names(f"{DONE}/{name}"))


def _record_attrs(loc, rel: str):
    """The ``attributes`` of the group record at ``rel`` (``None`` if missing, unreadable or malformed)."""
    meta = loc.read_json(f"{rel}/zarr.json")
    attrs = meta.get("attributes", {}) if isinstance(meta, dict) else None
    return attrs if isinstance(attrs, dict) else None


def verify_done(store_path, name: str, keys, level: str) -> dict[str, str]:
    """``{key: problem}`` of the completed chunks ``keys`` (``None``: all) of ``name``
    whose record is unreadable or whose files fail the manifest at ``level``.
    Records written without a manifest are trusted."""
    loc = as_location(store_path)
    keys = done_keys(loc, name) if keys is None else {check_key(k) for k in keys}
    bad = {}
    sizes = None
    for k in sorted(keys, key=lambda x: (len(x), x)):
        attrs = _record_attrs(loc, f"{DONE}/{name}/{k}")
        if attrs is None:
            bad[k] = "its completion record is unreadable"
            continue
        files = attrs.get("files")
        if files is None:
            continue
        if not isinstance(files, dict):
            bad[k] = "its completion record has no valid manifest"
            continue
        if sizes is None:
            sizes = loc.sizes(name)  # an object store: one listing for all the records (None: local)
        problems = check_manifest(loc, name, files, level, sizes=sizes)
        if problems:
            bad[k] = "; ".join(problems)
    return bad


def forget_done(store_path, name: str, key) -> None:
    """Drop the completion record of chunk ``key`` of ``name`` (it will be recomputed)."""
    as_location(store_path).remove_record(f"{DONE}/{name}/{check_key(key)}")


# -- records of finished stages ------------------------------------------------
def write_stage(store_path, group, name: str, info: dict | None, arrays=()) -> None:
    """Record that stage ``name`` finished, with JSON ``info`` and the manifest of
    every chunk file of the arrays ``arrays`` (names in the Zarr group ``group``)."""
    loc = as_location(store_path)
    info = jsonable(info if info is not None else {}, "info")
    if not isinstance(info, dict):
        raise ValueError(f"info must be a dict (JSON object), got {type(info).__name__}")
    files = {a: array_manifest(loc, a, group[a]) for a in arrays}
    attrs = {"info": info, "finished": _dt.datetime.now(_dt.timezone.utc).isoformat()}
    if files:
        attrs["files"] = files
    loc.ensure_groups(STAGES)
    loc.write_json(f"{STAGES}/{name}/zarr.json", _group_json(attrs))


def _stage_problems(loc, attrs: dict, level: str) -> list[str]:
    files = attrs.get("files")
    if files is None:
        return []
    if not isinstance(files, dict):
        return ["its manifest is malformed"]
    out = []
    for a, man in files.items():
        if not isinstance(a, str) or key_parts(a) is None or "/" in a or a.startswith("_"):
            out.append(f"manifest entry for array {a!r} does not name an array of the store; not checked")
            continue
        out.extend(check_manifest(loc, a, man, level))
    return out


def _stage_attrs(loc, name: str):
    """The attributes of the record of stage ``name`` (``None`` if unreadable or malformed)."""
    attrs = _record_attrs(loc, f"{STAGES}/{name}")
    if attrs is not None and "finished" in attrs and not isinstance(attrs.get("info", {}), dict):
        return None  # a stage's info is always a JSON object
    return attrs


def read_stage(store_path, name: str, level: str | None) -> tuple[dict | None, list[str]]:
    """``(info, problems)`` of stage ``name``: ``(None, [])`` if it has not
    finished, else its info and the problems of its record and of its arrays'
    files at ``level`` (``None``: files not checked)."""
    loc = as_location(store_path)
    if not loc.exists(f"{STAGES}/{name}/zarr.json"):
        return None, []
    attrs = _stage_attrs(loc, name)
    if attrs is None:
        return None, [f"the record of stage {name!r} is unreadable"]
    if "finished" not in attrs:
        return None, []
    return attrs.get("info"), ([] if level is None else _stage_problems(loc, attrs, level))


def forget_stage(store_path, name: str) -> None:
    """Forget that stage ``name`` finished (its arrays are kept)."""
    as_location(store_path).remove_record(f"{STAGES}/{name}")


def stage_names(store_path) -> list[str]:
    """Names of the stages with a record, sorted."""
    return sorted(as_location(store_path).record_names(STAGES))


def verify_all(store_path, level: str) -> dict[str, str]:
    """``{"<array>/<chunk key>" or "stage <name>": problem}`` for every record of the store."""
    loc = as_location(store_path)
    out = {}
    for name in sorted(loc.subfolders(DONE)):
        for k, why in verify_done(loc, name, None, level).items():
            out[f"{name}/{k}"] = why
    for st in stage_names(loc):
        attrs = _stage_attrs(loc, st)
        if attrs is None:
            out[f"stage {st}"] = "unreadable record"
            continue
        problems = _stage_problems(loc, attrs, level)
        if problems:
            out[f"stage {st}"] = "; ".join(problems)
    return out
