"""Check a resource against profiles: the ones it claims (``meta.profile``), the ones asked for, and
the definition of every extension it carries.

:class:`Checker` walks the data (``nodes``) and a compiled profile tree (``profiles``) together.
For each constrained element it checks, in this order: slicing (each value is assigned to the slice
whose discriminators it matches, ``slicing``), cardinality, then per value: allowed types, fixed and
pattern values, the binding, reference targets, type profiles (a data type or extension profile,
checked recursively), the element's own invariants, and its constrained children. Every finding
names the profile and the element id it comes from and where in the data it is.

Bindings are decided by a :data:`CodeCheck` (value set, system, code → member, not a member, or
cannot tell): the app layer passes the terminology service; without one, the closed value sets of
R4 are used and any other required binding is reported as not checked (a warning), never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fhirpathpy
import orjson
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models as fhirpath_models

from ketnoi.fhir.definitions import resource_types
from ketnoi.fhir.outcome import Issue

from .bindings import required_binding
from .ketnoi_constraints import PYTHON_CONSTRAINTS
from .nodes import Node, children, codes_of, matches, resource_node, url_of
from .profiles import CompiledProfile, ProfileCache, Rule, core_type_of, default_cache
from .slicing import assign_slices

CodeCheck = Callable[[str, str | None, str], bool | None]
_MAX_DEPTH = 12  # profiles that name each other as type profiles: stop, do not recurse forever
_EVALUATORS: dict[str, Any] = {}


def closed_value_sets(value_set: str, system: str | None, code: str) -> bool | None:
    """The default :data:`CodeCheck`: membership in a closed value set of R4, else unknown."""
    binding = required_binding(value_set)
    if binding is None:
        return None
    return (system, code) in binding.codes if system is not None else code in binding.plain


def _issue(severity: str, code: str, en: str, vi: str, loc: str) -> Issue:
    return Issue(severity, code, en, vi, (loc,))


def _shown(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else value
    return text if len(text) <= 160 else text[:157] + "..."


def _comparable(limit: Any, value: Any) -> tuple[Any, Any] | None:
    """(limit, value) when they can be compared: two numbers, or two texts of the same length (dates
    and times of the same precision order as text); None otherwise."""
    if isinstance(limit, bool) or isinstance(value, bool) or limit is None:
        return None
    if isinstance(limit, (int, float)) and isinstance(value, (int, float)):
        return limit, value
    if isinstance(limit, str) and isinstance(value, str) and len(limit) == len(value):
        return limit, value
    return None


def _type_allowed(found: str, allowed: tuple[str, ...]) -> bool:
    return found in allowed or (found in resource_types() and ("Resource" in allowed or "DomainResource" in allowed))


def _fhirpath_node(data: Any, type_name: str | None) -> Any:
    return ResourceNode.create_node(data, type_name)  # type: ignore[no-untyped-call]


def evaluate(expression: str, node: Node, resource: dict[str, Any], root: dict[str, Any]) -> list[Any]:
    """``expression`` on ``node`` with ``%resource`` and ``%rootResource`` (compiled once)."""
    evaluator = _EVALUATORS.get(expression)
    if evaluator is None:
        evaluator = _EVALUATORS[expression] = fhirpathpy.compile(expression, fhirpath_models["r4"])
    env = {
        "resource": _fhirpath_node(resource, resource.get("resourceType")),
        "rootResource": _fhirpath_node(root, root.get("resourceType")),
    }
    focus = node.value if node.value is not None else node.ext
    result: list[Any] = evaluator(_fhirpath_node(focus, node.type if node.table is None else node.path), env)
    return result


class Checker:
    """Collects the issues of one validation; one instance per resource."""

    def __init__(self, cache: ProfileCache | None = None, codes: CodeCheck | None = None) -> None:
        self.cache = cache or default_cache()
        self.codes = codes or closed_value_sets
        self.issues: list[Issue] = []
        self.names: list[str] = []  # the profiles being checked, innermost last (for messages)
        self.root: dict[str, Any] | None = None
        self.reported: set[tuple[str, str]] = set()

    # ---- entry points -----------------------------------------------------------------------

    def check_resource(self, resource: dict[str, Any], urls: list[str], *, claimed: bool) -> None:
        """Check ``resource`` against each profile of ``urls`` (the claimed or the asked ones)."""
        node = resource_node(resource)
        if node is None:
            return
        self.root = self.root or resource
        for url in urls:
            self.conform_url(node, url, claimed=claimed)

    def conform_url(self, node: Node, url: str, *, claimed: bool = False) -> None:
        profile = self.cache.get(url)
        if profile is None:
            self.unknown_profile(url, node.loc, claimed)
            return
        if profile.type != node.type and not (node.type in ("Quantity",) and profile.type.endswith("Quantity")):
            self.issues.append(
                _issue(
                    "error",
                    "structure",
                    f"{node.loc} is a {node.type}, but profile {profile.name} ({url}) is for {profile.type}",
                    f"{node.loc} là {node.type}, nhưng hồ sơ {profile.name} ({url}) dành cho {profile.type}",
                    node.loc,
                )
            )
            return
        self.conform(node, profile)

    def conform(self, node: Node, profile: CompiledProfile) -> None:
        if len(self.names) >= _MAX_DEPTH:
            return
        for base in profile.missing:
            self.note_missing(base, profile, node.loc)
        self.names.append(profile.name)
        try:
            self.each(profile.root, node)
        finally:
            self.names.pop()

    def conforms(self, node: Node, url: str) -> bool:
        """Whether ``node`` conforms to the profile at ``url`` (no error), reporting nothing."""
        saved, self.issues = self.issues, []
        said = set(self.reported)  # a note made while trying must still be made when it counts
        try:
            self.conform_url(node, url)
            return not any(i.severity in ("error", "fatal") for i in self.issues)
        finally:
            self.issues, self.reported = saved, said

    # ---- one element ------------------------------------------------------------------------

    def group(self, rule: Rule, nodes: list[Node], at: str) -> None:
        """The values of one element (or of one slice) under ``rule``."""
        if rule.slices or rule.slicing is not None:
            for slice_rule, matched, where in assign_slices(self, rule, nodes, at):
                self.group(slice_rule, matched, where)
        self.cardinality(rule, len(nodes), at)
        for node in nodes:
            self.each(rule, node)

    def cardinality(self, rule: Rule, count: int, at: str) -> None:
        profile = self.profile_name
        if rule.min is not None and count < rule.min:
            self.issues.append(
                _issue(
                    "error",
                    "required",
                    f"{rule.id}: at least {rule.min} required by profile {profile}, found {count} (at {at})",
                    f"{rule.id}: hồ sơ {profile} yêu cầu ít nhất {rule.min}, hiện có {count} (tại {at})",
                    at,
                )
            )
        if rule.max is not None and count > rule.max:
            self.issues.append(
                _issue(
                    "error",
                    "structure",
                    f"{rule.id}: at most {rule.max} allowed by profile {profile}, found {count} (at {at})",
                    f"{rule.id}: hồ sơ {profile} cho phép tối đa {rule.max}, hiện có {count} (tại {at})",
                    at,
                )
            )

    def each(self, rule: Rule, node: Node) -> None:
        if rule.types and (node.choice or node.type in resource_types()) and not _type_allowed(node.type, rule.types):
            self.wrong_type(rule, node)
            return
        if rule.has_fixed and node.value != rule.fixed:
            self.value_issue(rule, node, "fixed", rule.fixed)
        if rule.has_pattern and not matches(node.value, rule.pattern):
            self.value_issue(rule, node, "pattern", rule.pattern)
        if rule.max_length is not None and isinstance(node.value, str) and len(node.value) > rule.max_length:
            self.limit_issue(
                rule, node, f"is longer than {rule.max_length} characters", f"dài hơn {rule.max_length} ký tự"
            )
        if rule.min_value is not None or rule.max_value is not None:
            self.bounds(rule, node)
        if rule.binding is not None:
            self.binding(rule, node)
        if rule.target_profiles and node.type == "Reference":
            self.targets(rule, node)
        if rule.type_profiles:
            self.type_profiles(rule, node)
        for constraint in rule.constraints:
            self.constraint(rule, constraint.key, constraint.severity, constraint.human, constraint.expression, node)
        for name, child in rule.children.items():
            self.group(child, children(node, name), f"{node.loc}.{name}")

    @property
    def profile_name(self) -> str:
        return self.names[-1] if self.names else "?"

    # ---- findings ---------------------------------------------------------------------------

    def wrong_type(self, rule: Rule, node: Node) -> None:
        allowed = ", ".join(rule.types)
        self.issues.append(
            _issue(
                "error",
                "structure",
                f"{node.loc}: type {node.type} is not allowed by profile {self.profile_name} ({rule.id}: {allowed})",
                f"{node.loc}: hồ sơ {self.profile_name} không cho phép kiểu {node.type} ({rule.id}: {allowed})",
                node.loc,
            )
        )

    def value_issue(self, rule: Rule, node: Node, kind: str, expected: Any) -> None:
        what = "must be exactly" if kind == "fixed" else "must contain"
        what_vi = "phải đúng bằng" if kind == "fixed" else "phải chứa"
        self.issues.append(
            _issue(
                "error",
                "value",
                f"{node.loc}: {what} {_shown(expected)} (profile {self.profile_name}, {rule.id}), "
                f"found {_shown(node.value)}",
                f"{node.loc}: {what_vi} {_shown(expected)} (hồ sơ {self.profile_name}, {rule.id}), "
                f"hiện là {_shown(node.value)}",
                node.loc,
            )
        )

    def bounds(self, rule: Rule, node: Node) -> None:
        value = node.value.get("value") if isinstance(node.value, dict) else node.value
        low, high = _comparable(rule.min_value, value), _comparable(rule.max_value, value)
        if low is not None and low[1] < low[0]:
            self.limit_issue(rule, node, f"is below the minimum {low[0]}", f"nhỏ hơn giá trị tối thiểu {low[0]}")
        if high is not None and high[1] > high[0]:
            self.limit_issue(rule, node, f"is above the maximum {high[0]}", f"lớn hơn giá trị tối đa {high[0]}")

    def limit_issue(self, rule: Rule, node: Node, en: str, vi: str) -> None:
        self.issues.append(
            _issue(
                "error",
                "value",
                f"{node.loc}: {_shown(node.value)} {en} (profile {self.profile_name}, {rule.id})",
                f"{node.loc}: {_shown(node.value)} {vi} (hồ sơ {self.profile_name}, {rule.id})",
                node.loc,
            )
        )

    def binding(self, rule: Rule, node: Node) -> None:
        assert rule.binding is not None
        strength, value_set = rule.binding
        if strength not in ("required", "extensible", "preferred"):
            return  # example bindings only illustrate
        codes = codes_of(node)
        if codes is None:
            return
        answers = [self.codes(value_set, system, code) for system, code in codes]
        if True in answers:
            return
        if None in answers or (not answers and strength != "required"):
            if strength == "required":
                self.binding_unchecked(value_set, node)
            return
        severity = "error" if strength == "required" else "warning"
        shown = ", ".join(f"{s}|{c}" if s else c for s, c in codes) or "no code"
        self.issues.append(
            _issue(
                severity,
                "code-invalid",
                f"{node.loc}: {shown} is not in the value set {value_set} ({strength} binding of "
                f"{rule.id}, profile {self.profile_name})",
                f"{node.loc}: {shown} không thuộc tập giá trị {value_set} (ràng buộc {strength} của "
                f"{rule.id}, hồ sơ {self.profile_name})",
                node.loc,
            )
        )

    def binding_unchecked(self, value_set: str, node: Node) -> None:
        if ("vs", value_set) in self.reported:
            return
        self.reported.add(("vs", value_set))
        self.issues.append(
            _issue(
                "warning",
                "not-supported",
                f"{node.loc}: the value set {value_set} cannot be expanded here; the code was not checked",
                f"{node.loc}: không mở rộng được tập giá trị {value_set} tại đây; mã chưa được kiểm tra",
                node.loc,
            )
        )

    def targets(self, rule: Rule, node: Node) -> None:
        target = self.target_type(node.value)
        if target is None:
            return
        allowed = {self.type_of_profile(url) for url in rule.target_profiles}
        if target in allowed or "Resource" in allowed or "" in allowed:
            return
        names = ", ".join(sorted(allowed))
        self.issues.append(
            _issue(
                "error",
                "structure",
                f"{node.loc}: the reference points to a {target}; profile {self.profile_name} ({rule.id}) "
                f"allows {names}",
                f"{node.loc}: tham chiếu trỏ tới {target}; hồ sơ {self.profile_name} ({rule.id}) chỉ cho phép {names}",
                node.loc,
            )
        )

    def type_of_profile(self, url: str) -> str:
        """The type a profile constrains; "" when the profile is unknown (then anything goes)."""
        found = core_type_of(url)
        if found is not None:
            return found
        profile = self.cache.get(url)
        return profile.type if profile is not None else ""

    def target_type(self, value: Any) -> str | None:
        """The resource type a Reference points to, when its form or the bundle says it."""
        if not isinstance(value, dict):
            return None
        ref = value.get("reference")
        if not isinstance(ref, str):
            return value.get("type") if isinstance(value.get("type"), str) else None
        if ref.startswith("#") and self.root is not None:
            for contained in self.root.get("contained") or ():
                if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                    return str(contained.get("resourceType"))
            return None
        parts = ref.split("/_history/")[0].split("/")
        if len(parts) >= 2 and parts[-2][:1].isupper():
            return parts[-2]
        return None

    def type_profiles(self, rule: Rule, node: Node) -> None:
        own = url_of(node) if node.type == "Extension" else None
        # An extension's own definition is checked by the extension pass, wherever it sits.
        urls = [u for u in rule.profiles_for(node.type) if u.partition("|")[0] != own]
        known = [u for u in urls if self.cache.get(u) is not None]
        for url in urls:
            if url not in known and len(known) == 0:
                self.note_unknown_type_profile(url, rule, node.loc)
        if len(known) == 1 or (known and not any(self.conforms(node, url) for url in known)):
            self.conform_url(node, known[0])

    def constraint(self, rule: Rule, key: str, severity: str, human: str, expression: str, node: Node) -> None:
        resource = node.resource or self.root or {}
        python = PYTHON_CONSTRAINTS.get(key) if key.startswith("ketnoi-") else None
        try:
            if python is not None:
                result = [python(node.value)]
            else:
                result = evaluate(expression, node, resource, self.root or resource)
        except Exception as error:  # an expression fhirpathpy cannot run: say so, once per key
            if ("inv", key) not in self.reported:
                self.reported.add(("inv", key))
                name = type(error).__name__
                self.issues.append(
                    _issue(
                        "warning",
                        "not-supported",
                        f"Constraint {key} of profile {self.profile_name} could not be evaluated: {name}",
                        f"Không đánh giá được ràng buộc {key} của hồ sơ {self.profile_name}: {name}",
                        node.loc,
                    )
                )
            return
        if result == [False]:
            self.issues.append(
                _issue(
                    "error" if severity == "error" else "warning",
                    "invariant",
                    f"Constraint failed: {key}: {human} (profile {self.profile_name}, {rule.id})",
                    f"Ràng buộc {key} không thỏa: {human} (hồ sơ {self.profile_name}, {rule.id})",
                    node.loc,
                )
            )

    def unknown_profile(self, url: str, loc: str, claimed: bool) -> None:
        if ("profile", url) in self.reported:
            return
        self.reported.add(("profile", url))
        severity = "warning" if claimed else "error"
        self.issues.append(
            _issue(
                severity,
                "not-found" if not claimed else "not-supported",
                f"Profile {url} is not known to this server (not in FHIR R4, a shipped or an installed package): "
                "it was not checked" + ("; install its package with `ketnoi ig install`" if claimed else ""),
                f"Máy chủ không biết hồ sơ {url} (không thuộc FHIR R4, gói đi kèm hay gói đã cài): chưa được kiểm tra"
                + ("; hãy cài gói của nó bằng `ketnoi ig install`" if claimed else ""),
                loc,
            )
        )

    def note_unknown_type_profile(self, url: str, rule: Rule, loc: str) -> None:
        if ("type-profile", url) in self.reported:
            return
        self.reported.add(("type-profile", url))
        self.issues.append(
            _issue(
                "information",
                "not-supported",
                f"{rule.id} of profile {self.profile_name} names the profile {url}, which is not installed: "
                "values were not checked against it",
                f"{rule.id} của hồ sơ {self.profile_name} dùng hồ sơ {url}, chưa được cài: giá trị chưa được kiểm tra "
                "theo hồ sơ đó",
                loc,
            )
        )

    def note_missing(self, base: str, profile: CompiledProfile, loc: str) -> None:
        if ("base", base) in self.reported:
            return
        self.reported.add(("base", base))
        self.issues.append(
            _issue(
                "information",
                "not-supported",
                f"Profile {profile.name} derives from {base}, which is not installed: only what "
                f"{profile.name} itself adds was checked",
                f"Hồ sơ {profile.name} kế thừa {base}, chưa được cài: chỉ kiểm tra phần {profile.name} tự thêm",
                loc,
            )
        )
