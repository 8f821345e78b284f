"""The patient index's review queue (``/review``; docs/mpi.md "Golden records and review").

The background linker leaves a review Task (code ``mpi|match-review``, status ``requested``) for each pair
of Patient records that may be one person but not surely so. Here a data steward lists them, compares the
two records side by side and decides: "the same person" sets the Task ``completed`` (the server links the
pair in that transaction, into one golden record), "two people" sets it ``rejected`` (never suggested
again). Everything goes through the FHIR interactions with the steward's context: who may read the Tasks
and the two records, and who may decide, is the API's answer; the PUT carries ``If-Match``, so that two
stewards deciding the same pair at once cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ketnoi.console import records, show
from ketnoi.console.sessions import ConsoleSession
from ketnoi.console.views import Console
from ketnoi.interactions.context import RequestContext

REVIEW_CODE: Final = "https://fhir.ketnoi.vn/CodeSystem/mpi|match-review"
PAGE: Final = 20
DECISIONS: Final = {"same": "completed", "different": "rejected"}


@dataclass(frozen=True, slots=True)
class Pair:
    task: dict[str, Any]
    left: dict[str, Any] | None  # None: the caller may not read it (or it is gone)
    right: dict[str, Any] | None
    grade: str
    probability: float | None

    @property
    def left_ref(self) -> str:
        return str((self.task.get("focus") or {}).get("reference") or "")

    @property
    def right_ref(self) -> str:
        return candidate(self.task)


def candidate(task: dict[str, Any]) -> str:
    for item in task.get("input") or ():
        if isinstance(item, dict) and (item.get("type") or {}).get("text") == "candidate":
            return str((item.get("valueReference") or {}).get("reference") or "")
    return ""


def _input(task: dict[str, Any], name: str) -> Any:
    for item in task.get("input") or ():
        if isinstance(item, dict) and (item.get("type") or {}).get("text") == name:
            return next((v for k, v in item.items() if k.startswith("value")), None)
    return None


def rows(left: dict[str, Any] | None, right: dict[str, Any] | None) -> list[tuple[str, str, str, bool]]:
    """(text key, left value, right value, same) for each field a steward compares."""
    fields = (
        ("name", show.name), ("birth_date", lambda p: show.date(p.get("birthDate"))),
        ("gender", lambda p: str(p.get("gender") or "")),
        ("identifiers", lambda p: ", ".join(f"{label} {value}" for label, value in show.identifiers(p))),
        ("address", show.address), ("review_phone", _phones),
    )  # fmt: skip
    found = []
    for key, value in fields:
        a = value(left) if left else ""
        b = value(right) if right else ""
        found.append((key, a or "—", b or "—", _fold(a) == _fold(b)))
    return found


def _phones(patient: dict[str, Any]) -> str:
    return ", ".join(
        str(t.get("value")) for t in patient.get("telecom") or () if isinstance(t, dict) and t.get("value")
    )


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


def pair(reader: records.Reader, task_id: str) -> Pair | None:
    task = reader.read("Task", task_id)
    if task is None or REVIEW_CODE.split("|")[1] not in str(task.get("code")):
        return None
    left, right = str((task.get("focus") or {}).get("reference") or ""), candidate(task)
    probability = _input(task, "probability")
    return Pair(
        task, _patient(reader, left), _patient(reader, right), str(_input(task, "grade") or ""),
        float(probability) if isinstance(probability, int | float) else None,
    )  # fmt: skip


def _patient(reader: records.Reader, reference: str) -> dict[str, Any] | None:
    kind, _, id = reference.partition("/")
    return reader.read("Patient", id) if kind == "Patient" and id else None


def decide(reader: records.Reader, task_id: str, decision: str, version: str) -> records.Written | None:
    """Set the Task's status for ``decision`` (``same``/``different``), if it is still at ``version`` (the
    one the steward compared: a decision made meanwhile answers 412); None when it cannot be read."""
    task = reader.read("Task", task_id)
    if task is None or decision not in DECISIONS or not version.isdigit():
        return None
    return reader.write("PUT", f"Task/{task_id}", {**task, "status": DECISIONS[decision]}, if_match=version)


def routes(console: Console) -> list[Route]:
    async def queue(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        query = [("code", REVIEW_CODE), ("status", "requested"), ("_sort", "-_lastUpdated"), ("_count", str(PAGE))]
        found = await run_in_threadpool(console.reader(request, context).search, "Task", query)
        done = request.query_params.get("done", "")
        return console.render(
            request, "review.html", context=context, user=kept.user if kept else None, tasks=found.entries,
            more=found.more, problem=found.problem, done=done if done in ("linked", "rejected") else "",
        )  # fmt: skip

    async def compare(request: Request, kept: ConsoleSession | None, context: RequestContext) -> Response:
        reader, task_id, user = console.reader(request, context), request.path_params["id"], kept.user if kept else None
        problem = None
        if request.method == "POST":
            form = await request.form()
            decision, version = str(form.get("decision", "")), str(form.get("version", ""))[:20]
            written = await run_in_threadpool(decide, reader, task_id, decision, version)
            if written is not None and written.ok:
                done = "linked" if decision == "same" else "rejected"
                return RedirectResponse(f"/review?done={done}", status_code=303)
            problem = _problem(written)
        found = await run_in_threadpool(pair, reader, task_id)
        if found is None:
            return console.render(request, "message.html", 404, context, message="not_found", user=user)
        return console.render(
            request, "review_pair.html", 409 if problem else 200, context, user=user, pair=found,
            rows=rows(found.left, found.right), problem=problem, task_id=task_id,
        )  # fmt: skip

    return [
        Route("/review", console.page(queue)),
        Route("/review/{id}", console.page(compare)),
        Route("/review/{id}", console.form(compare), methods=["POST"]),
    ]


def _problem(written: records.Written | None) -> str:
    if written is None:
        return "not_found"
    if written.status == 412:
        return "review_changed"
    text = "; ".join(str(i.get("diagnostics", "")) for i in written.issues if i.get("diagnostics"))
    return text or str(written.status)
