"""``ketnoi load --owners FILE``: the operator's statement of which organization owns which resource.

A resource's owner never comes from its own content (ADR 0014): a file could otherwise name any
facility as the owner of anything. The owners file is the operator's, beside the data, and says it
outright: a CSV (UTF-8, header ``resource,organization``), one ``Type/id,Organization/id`` a line.
It is read whole and checked before anything is written, so a bad file loads nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from ketnoi.fhir import resource as res
from ketnoi.fhir.definitions import resource_types
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.organizations import is_reference
from ketnoi.interactions.repository import Repository

HEADER: Final = ("resource", "organization")


class OwnersFileError(ValueError):
    """The owners file cannot be used; the message names the file and line, in English and Vietnamese."""


def read_owners(path: str | Path) -> dict[str, str]:
    """``Type/id`` → ``Organization/id`` as the file at ``path`` states it, or :class:`OwnersFileError`
    at its first fault (a bad line, or one resource given twice: which one counts would be a guess)."""
    rows = csv.reader(_text(path).splitlines())
    header = next(rows, None)
    if header is None or tuple(cell.strip() for cell in header) != HEADER:
        raise _error(
            path, 1, "the first line must be 'resource,organization'", "dòng đầu phải là 'resource,organization'"
        )
    owners: dict[str, str] = {}
    for number, row in enumerate(rows, 2):
        if not any(cell.strip() for cell in row):
            continue  # a trailing newline or a spreadsheet's empty row says nothing
        resource, organization = _row(path, number, row)
        if resource in owners:
            raise _error(path, number, f"{resource} is listed twice", f"{resource} có tên hai lần")
        owners[resource] = organization
    return owners


def _text(path: str | Path) -> str:
    try:  # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _error(path, 0, "no such file", "không có tệp này") from None
    except UnicodeDecodeError:
        raise _error(path, 0, "not UTF-8 text", "không phải văn bản UTF-8") from None
    except OSError as exc:
        raise _error(path, 0, f"cannot be read ({exc.strerror})", "không đọc được") from None


def _row(path: str | Path, number: int, row: list[str]) -> tuple[str, str]:
    """One line → (``Type/id``, ``Organization/id``); it must be exactly that."""
    cells = [cell.strip() for cell in row]
    rtype, _, rid = cells[0].partition("/") if len(cells) == 2 else ("", "", "")
    if rtype not in resource_types() or not res.is_valid_id(rid) or not is_reference(cells[1]):
        shown = ",".join(row)[:120]
        en = f"expected Type/id,Organization/id, not {shown!r}"
        raise _error(path, number, en, f"cần dạng Type/id,Organization/id, không phải {shown!r}")
    return cells[0], cells[1]


def _error(path: str | Path, line: int, en: str, vi: str) -> OwnersFileError:
    where = f"{path}:{line}" if line else str(path)
    return OwnersFileError(f"{where}: {en} / {vi}")


class Owners:
    """Who each resource of a load is written for: the load's own context (``--organization``), or for a
    resource the owners file names, the operator's context for that organization."""

    def __init__(self, default: RequestContext, owners: Mapping[str, str]) -> None:
        self.default = default
        self.owners = owners
        self._contexts: dict[str, RequestContext] = {}  # one per owner: thousands of resources share it

    def of(self, resource: Any) -> RequestContext:
        owner = self.owners.get(_label(resource)) if self.owners else None
        if owner is None:
            return self.default
        if owner not in self._contexts:
            self._contexts[owner] = replace(self.default, organization=owner)
        return self._contexts[owner]

    def writers(self, repo: Repository) -> Writers:
        """The Repositories that write a batch in ``repo``'s one transaction, one per owner met."""
        return Writers(self, repo)


class Writers:
    """One transaction's Repositories, by owner: the owner is what a Repository's context writes for
    (the facility rule applies to each as to a user), and they all commit or roll back together."""

    def __init__(self, owners: Owners, repo: Repository) -> None:
        self.owners = owners
        self.repo = repo
        self._acting: dict[str | None, Repository] = {repo.context.organization: repo}

    def for_(self, resource: Any) -> Repository:
        if not self.owners.owners:
            return self.repo
        context = self.owners.of(resource)
        found = self._acting.get(context.organization)
        if found is None:
            found = self._acting[context.organization] = self.repo.acting_for(context)
        return found


def _label(resource: Any) -> str:
    if isinstance(resource, dict):
        return f"{resource.get('resourceType', '?')}/{resource.get('id', '?')}"
    return "?"
