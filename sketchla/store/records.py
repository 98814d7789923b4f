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
import os

from . import atomic
from .layout import DONE, STAGES, check_key, jsonable
from .manifest import array_manifest, check_manifest

__all__ = ["write_done_record", "done_keys", "verify_done", "forget_done", "write_stage", "read_stage",
           "forget_stage", "stage_names", "verify_all"]


# -- completion records of chunks ------------------------------------------
def write_done_record(store_path: str, name: str, key, files: dict | None = None) -> None:
    """Write the completion record of chunk ``key`` of ``name`` (with its file
    manifest) in one atomic step. Used by worker processes, which hold only the path."""
    key = check_key(key)
    atomic.ensure_group_json(store_path, f"{DONE}/{name}")
    atomic.write_group_atomic(os.path.join(store_path, DONE, name, key), {} if files is None else {"files": files})


def done_keys(store_path: str, name: str) -> set[str]:
    """Keys (as strings) of the completed chunks of ``name`` (records not verified)."""
    d = os.path.join(store_path, DONE, name)
    if not os.path.isdir(d):
        return set()
    return {k for k in os.listdir(d)
            if not k.startswith(".") and os.path.exists(os.path.join(d, k, "zarr.json"))}


def verify_done(store_path: str, name: str, keys, level: str) -> dict[str, str]:
    """``{key: problem}`` of the completed chunks ``keys`` (``None``: all) of ``name``
    whose record is unreadable or whose files fail the manifest at ``level``.
    Records written without a manifest are trusted."""
    keys = done_keys(store_path, name) if keys is None else {check_key(k) for k in keys}
    bad = {}
    for k in sorted(keys, key=lambda x: (len(x), x)):
        meta = atomic.read_json(os.path.join(store_path, DONE, name, k, "zarr.json"))
        if not isinstance(meta, dict) or not isinstance(meta.get("attributes", {}), dict):
            bad[k] = "its completion record is unreadable"
            continue
        files = meta.get("attributes", {}).get("files")
        if files is None:
            continue
        if not isinstance(files, dict):
            bad[k] = "its completion record has no valid manifest"
            continue
        problems = check_manifest(store_path, name, files, level)
        if problems:
            bad[k] = "; ".join(problems)
    return bad


def forget_done(store_path: str, name: str, key) -> None:
    """Drop the completion record of chunk ``key`` of ``name`` (it will be recomputed)."""
    atomic.rmtree_quiet(os.path.join(store_path, DONE, name, check_key(key)))


# -- records of finished stages ------------------------------------------------
def write_stage(store_path: str, group, name: str, info: dict | None, arrays=()) -> None:
    """Record that stage ``name`` finished, with JSON ``info`` and the manifest of
    every chunk file of the arrays ``arrays`` (names in the Zarr group ``group``)."""
    files = {a: array_manifest(store_path, a, group[a]) for a in arrays}
    attrs = {"info": jsonable(info if info is not None else {}, "info"),
             "finished": _dt.datetime.now(_dt.timezone.utc).isoformat()}
    if files:
        attrs["files"] = files
    atomic.ensure_group_json(store_path, STAGES)
    atomic.write_group_atomic(os.path.join(store_path, STAGES, name), attrs)


def _stage_problems(store_path: str, attrs: dict, level: str) -> list[str]:
    return [p for a, man in (attrs.get("files") or {}).items()
            for p in check_manifest(store_path, a, man, level)]


def _stage_attrs(store_path: str, name: str):
    """The attributes of the record of stage ``name`` (``None`` if unreadable)."""
    meta = atomic.read_json(os.path.join(store_path, STAGES, name, "zarr.json"))
    attrs = meta.get("attributes") if isinstance(meta, dict) else None
    return attrs if isinstance(attrs, dict) else None


def read_stage(store_path: str, name: str, level: str | None) -> tuple[dict | None, list[str]]:
    """``(info, problems)`` of stage ``name``: ``(None, [])`` if it has not
    finished, else its info and the problems of its record and of its arrays'
    files at ``level`` (``None``: files not checked)."""
    if not os.path.exists(os.path.join(store_path, STAGES, name, "zarr.json")):
        return None, []
    attrs = _stage_attrs(store_path, name)
    if attrs is None:
        return None, [f"the record of stage {name!r} is unreadable"]
    if "finished" not in attrs:
        return None, []
    return attrs.get("info"), ([] if level is None else _stage_problems(store_path, attrs, level))


def forget_stage(store_path: str, name: str) -> None:
    """Forget that stage ``name`` finished (its arrays are kept)."""
    atomic.rmtree_quiet(os.path.join(store_path, STAGES, name))


def stage_names(store_path: str) -> list[str]:
    """Names of the stages with a record, sorted."""
    d = os.path.join(store_path, STAGES)
    return sorted(k for k in os.listdir(d) if not k.startswith(".")
                  and os.path.exists(os.path.join(d, k, "zarr.json"))) \
        if os.path.isdir(d) else []


def verify_all(store_path: str, level: str) -> dict[str, str]:
    """``{"<array>/<chunk key>" or "stage <name>": problem}`` for every record of the store."""
    out = {}
    d = os.path.join(store_path, DONE)
    for name in (sorted(os.listdir(d)) if os.path.isdir(d) else []):
        if os.path.isdir(os.path.join(d, name)) and not name.startswith("."):
            for k, why in verify_done(store_path, name, None, level).items():
                out[f"{name}/{k}"] = why
    for st in stage_names(store_path):
        attrs = _stage_attrs(store_path, st)
        if attrs is None:
            out[f"stage {st}"] = "unreadable record"
            continue
        problems = _stage_problems(store_path, attrs, level)
        if problems:
            out[f"stage {st}"] = "; ".join(problems)
    return out
