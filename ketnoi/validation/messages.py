"""The bilingual (English / Vietnamese) issues the structural validator reports.

One function per kind of finding keeps the wording consistent and the walker free of prose. Each
message names the offending element and its location, and says what to do about it.
"""

from __future__ import annotations

from ketnoi.fhir.outcome import Issue

from .bindings import Binding
from .primitives import Problem

_JSON_KINDS_EN = {"string": "a string", "number": "a number", "boolean": "true or false"}
_JSON_KINDS_VI = {"string": "một chuỗi", "number": "một số", "boolean": "true hoặc false"}
_FOUND = {
    dict: ("an object", "một đối tượng"),
    list: ("an array", "một mảng"),
    str: ("a string", "một chuỗi"),
    int: ("a number", "một số"),
    float: ("a number", "một số"),
    bool: ("a boolean", "một giá trị boolean"),
    type(None): ("null", "null"),
}


def found(value: object) -> tuple[str, str]:
    """The JSON kind of a parsed value, in English and Vietnamese."""
    return _FOUND.get(type(value), ("an unexpected value", "một giá trị không mong đợi"))


def unknown_element(severity: str, name: str, path: str) -> Issue:
    return Issue(
        severity,
        "structure",
        f"Unknown element '{name}' at {path}",
        f"Phần tử '{name}' không tồn tại tại {path}",
        (path,),
    )


def wrong_choice(severity: str, name: str, base: str, allowed: tuple[str, ...], path: str) -> Issue:
    listed = ", ".join(allowed)
    return Issue(
        severity,
        "structure",
        f"Element '{name}' at {path} is not an allowed type for {base}[x]; use one of: {listed}",
        f"Phần tử '{name}' tại {path} không phải kiểu được phép của {base}[x]; hãy dùng một trong: {listed}",
        (path,),
    )


def extension_on_complex(severity: str, name: str, path: str) -> Issue:
    return Issue(
        severity,
        "structure",
        f"Unknown element '{name}' at {path}: '_' properties exist only for primitive elements; "
        f"put extensions inside '{name[1:]}' itself",
        f"Phần tử '{name}' không tồn tại tại {path}: thuộc tính '_' chỉ dành cho phần tử kiểu nguyên thủy; "
        f"hãy đặt phần mở rộng bên trong '{name[1:]}'",
        (path,),
    )


def misplaced_resource_type(severity: str, path: str) -> Issue:
    return Issue(
        severity,
        "structure",
        f"Unknown element 'resourceType' at {path}: it is only allowed at the root of a resource",
        f"Phần tử 'resourceType' không tồn tại tại {path}: chỉ được dùng ở gốc của một tài nguyên",
        (path,),
    )


def several_choices(names: list[str], base: str, path: str) -> Issue:
    listed = ", ".join(names)
    return Issue(
        "error",
        "structure",
        f"Only one of {listed} may be present at {path} ({base}[x] has a single type)",
        f"Chỉ được có một trong {listed} tại {path} ({base}[x] chỉ có một kiểu)",
        (path,),
    )


def expected_array(name: str, path: str, value: object) -> Issue:
    en, vi = found(value)
    return Issue(
        "error",
        "structure",
        f"Element '{name}' at {path} can repeat and must be a JSON array, found {en}",
        f"Phần tử '{name}' tại {path} có thể lặp lại nên phải là mảng JSON, nhưng tìm thấy {vi}",
        (path,),
    )


def expected_single(name: str, path: str) -> Issue:
    return Issue(
        "error",
        "structure",
        f"Element '{name}' at {path} has at most one value and must not be an array",
        f"Phần tử '{name}' tại {path} chỉ có tối đa một giá trị nên không được là mảng",
        (path,),
    )


def too_many(name: str, path: str, count: int, maximum: int) -> Issue:
    return Issue(
        "error",
        "structure",
        f"Element '{name}' at {path} has {count} values; at most {maximum} are allowed",
        f"Phần tử '{name}' tại {path} có {count} giá trị; tối đa chỉ được {maximum}",
        (path,),
    )


def expected_object(type_code: str, path: str, value: object) -> Issue:
    en, vi = found(value)
    return Issue(
        "error",
        "structure",
        f"Element at {path} is of type {type_code} and must be a JSON object, found {en}",
        f"Phần tử tại {path} có kiểu {type_code} nên phải là đối tượng JSON, nhưng tìm thấy {vi}",
        (path,),
    )


def expected_primitive(type_code: str, kind: str, path: str, value: object) -> Issue:
    en, vi = found(value)
    return Issue(
        "error",
        "structure",
        f"Value at {path} is of type {type_code} and must be {_JSON_KINDS_EN[kind]} in JSON, found {en}",
        f"Giá trị tại {path} có kiểu {type_code} nên trong JSON phải là {_JSON_KINDS_VI[kind]}, nhưng tìm thấy {vi}",
        (path,),
    )


def empty_array(path: str) -> Issue:
    return Issue(
        "error",
        "structure",
        f"Array at {path} is empty; omit the element when it has no values",
        f"Mảng tại {path} rỗng; hãy bỏ phần tử này khi không có giá trị",
        (path,),
    )


def empty_object(path: str) -> Issue:
    return Issue(
        "error",
        "structure",
        f"Object at {path} is empty; omit the element when it has no content",
        f"Đối tượng tại {path} rỗng; hãy bỏ phần tử này khi không có nội dung",
        (path,),
    )


def null_value(path: str) -> Issue:
    return Issue(
        "error",
        "structure",
        f"Null at {path} is not allowed; omit the element instead",
        f"Giá trị null tại {path} không được phép; hãy bỏ phần tử này",
        (path,),
    )


def empty_string(path: str) -> Issue:
    return Issue(
        "error",
        "value",
        f"Empty string at {path} is not allowed; omit the element instead",
        f"Chuỗi rỗng tại {path} không được phép; hãy bỏ phần tử này",
        (path,),
    )


def bad_value(problem: Problem, path: str) -> Issue:
    return Issue(problem.severity, problem.code, f"{problem.en} at {path}", f"{problem.vi} tại {path}", (path,))


def unmatched_null(name: str, path: str) -> Issue:
    return Issue(
        "error",
        "structure",
        f"Null at {path} has no matching non-null entry in '_{name}'; a null in a primitive array only "
        "holds the place of a value that has extensions",
        f"Giá trị null tại {path} không có mục khác null tương ứng trong '_{name}'; null trong mảng nguyên "
        "thủy chỉ dùng để giữ chỗ cho giá trị có phần mở rộng",
        (path,),
    )


def misaligned(name: str, path: str, values: int, extensions: int) -> Issue:
    return Issue(
        "error",
        "structure",
        f"'_{name}' at {path} has {extensions} entries but '{name}' has {values}; the two arrays must align",
        f"'_{name}' tại {path} có {extensions} mục nhưng '{name}' có {values}; hai mảng phải tương ứng nhau",
        (path,),
    )


def missing_required(name: str, minimum: int, path: str) -> Issue:
    return Issue(
        "error",
        "required",
        f"Missing required element '{name}' at {path} (minimum cardinality {minimum})",
        f"Thiếu phần tử bắt buộc '{name}' tại {path} (số lượng tối thiểu {minimum})",
        (path,),
    )


def not_a_resource(path: str, value: object) -> Issue:
    en, vi = found(value)
    return Issue(
        "error",
        "structure",
        f"A resource must be a JSON object, found {en} at {path}",
        f"Tài nguyên phải là một đối tượng JSON, nhưng tìm thấy {vi} tại {path}",
        (path,),
    )


def missing_resource_type(path: str) -> Issue:
    return Issue(
        "error",
        "required",
        f"Missing 'resourceType' at {path}; every resource must name its type",
        f"Thiếu 'resourceType' tại {path}; mọi tài nguyên phải ghi rõ loại của nó",
        (path,),
    )


def bad_resource_type(path: str, value: object) -> Issue:
    if isinstance(value, str):
        return Issue(
            "error",
            "invalid",
            f"Unknown resource type '{value[:60]}' at {path}; expected a concrete FHIR R4 resource type",
            f"Loại tài nguyên '{value[:60]}' không tồn tại tại {path}; cần một loại tài nguyên FHIR R4 cụ thể",
            (path,),
        )
    en, vi = found(value)
    return Issue(
        "error",
        "structure",
        f"'resourceType' at {path} must be a string, found {en}",
        f"'resourceType' tại {path} phải là một chuỗi, nhưng tìm thấy {vi}",
        (path,),
    )


def too_deep() -> Issue:
    return Issue(
        "error",
        "structure",
        "The resource is nested too deeply to be validated",
        "Tài nguyên lồng nhau quá sâu nên không thể kiểm tra",
    )


def code_not_allowed(value: str, binding: Binding) -> Problem:
    """A ``code`` outside the closed value set its element is bound to (required)."""
    return Problem(
        f"'{value[:60]}' is not a code of the required value set '{binding.name}' (allowed: {binding.shown()})",
        f"'{value[:60]}' không phải là mã của tập giá trị bắt buộc '{binding.name}' (được phép: {binding.shown()})",
        code="code-invalid",
    )


def concept_not_allowed(binding: Binding, path: str) -> Issue:
    """A Coding or CodeableConcept with no coding from its required, closed value set."""
    systems = ", ".join(sorted({system for system, _ in binding.codes}))
    return Issue(
        "error",
        "code-invalid",
        f"{path} needs a coding from the required value set '{binding.name}': system {systems}, "
        f"code one of {binding.shown()}",
        f"{path} cần một mã hoá thuộc tập giá trị bắt buộc '{binding.name}': hệ thống {systems}, "
        f"mã là một trong {binding.shown()}",
        (path,),
    )
