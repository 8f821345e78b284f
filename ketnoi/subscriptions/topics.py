"""The subscription topics this server offers (Subscriptions R5 Backport IG for R4, ADR 0025).

R4 has no SubscriptionTopic resource: the backport IG lets an R4 server name its topics by canonical
URL (listed in the CapabilityStatement) and a Subscription refers to one in ``criteria``, narrowing
it with filters (``backport-filter-criteria``) on the parameters the topic allows. Each topic here
is one resource trigger: a resource type, the interactions that fire it, a search that the new
version must match (the R5 ``queryCriteria.current``) and, for a change of state, one that the version
before an update must match (``previous``), all evaluated from index rows.
The four are the flows PRODUCT.md starts from: a referral reaching the receiving facility, a
notifiable disease reaching preventive medicine, a final lab result reaching the ordering
clinician, and an admission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BASE = "https://ketnoi.vn/fhir/SubscriptionTopic/"


@dataclass(frozen=True, slots=True)
class Topic:
    url: str
    title: str
    title_vi: str
    resource_type: str
    interactions: tuple[str, ...]  # create | update | delete
    criteria: str  # a search the new version must match ("" = any)
    filters: tuple[str, ...]  # the parameters a subscriber may filter by (canFilterBy)
    # A search the version before an update must match too ("" = none): the R5 ``queryCriteria.previous``
    # with ``requireBoth``; a create passes it (``resultForCreate`` test-passes). It makes "an encounter
    # starts" fire once, not again at every change during the stay.
    previous: str = ""

    def describe(self) -> dict[str, Any]:
        """The topic as the R5 SubscriptionTopic would state it (in a Parameters-free JSON form)."""
        return {
            "url": self.url,
            "title": self.title,
            "resourceTrigger": {
                "resource": self.resource_type,
                "supportedInteraction": list(self.interactions),
                "queryCriteria": self._query_criteria(),
            },
            "canFilterBy": [{"resource": self.resource_type, "filterParameter": p} for p in self.filters],
        }

    def _query_criteria(self) -> dict[str, Any]:
        if not self.previous:
            return {"current": self.criteria} if self.criteria else {}
        return {
            "previous": self.previous, "resultForCreate": "test-passes", "current": self.criteria,
            "resultForDelete": "test-fails", "requireBoth": True,
        }  # fmt: skip


TOPICS: dict[str, Topic] = {
    t.url: t
    for t in (
        Topic(
            BASE + "referral",
            "A referral or transfer request is created or changes (to the receiving facility)",
            "Yêu cầu chuyển tuyến/chuyển viện được tạo hoặc thay đổi (tới cơ sở tiếp nhận)",
            "ServiceRequest",
            ("create", "update"),
            "",
            ("performer", "patient", "requester", "status", "category", "code"),
        ),
        Topic(
            BASE + "condition-recorded",
            "A diagnosis is recorded or changes (notifiable diseases: filter by code)",
            "Chẩn đoán được ghi nhận hoặc thay đổi (bệnh truyền nhiễm phải báo cáo: lọc theo mã)",
            "Condition",
            ("create", "update"),
            "",
            ("code", "patient", "clinical-status", "verification-status", "category"),
        ),
        Topic(
            BASE + "lab-result-final",
            "A diagnostic report becomes final (to the ordering clinician)",
            "Kết quả xét nghiệm/chẩn đoán có kết luận cuối (tới bác sĩ chỉ định)",
            "DiagnosticReport",
            ("create", "update"),
            "status=final,amended,corrected",
            ("based-on", "patient", "performer", "category", "code"),
            "status:not=final,amended,corrected",  # released now, not before: an amendment is not news here
        ),
        Topic(
            BASE + "admission",
            "A patient is admitted (an Encounter starts)",
            "Người bệnh nhập viện/bắt đầu lượt khám (Encounter bắt đầu)",
            "Encounter",
            ("create", "update"),
            "status=in-progress",
            ("patient", "service-provider", "class", "type"),
            "status:not=in-progress",  # it starts now: a change during the stay is not a second admission
        ),
    )
}
