"""ketnoi.fhir.xml.read_xml: FHIR R4 XML → FHIR JSON, one hand-made snippet per rule."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ketnoi.fhir import xml as fhir_xml
from ketnoi.fhir.xml import FhirXmlError, read_xml
from ketnoi.validation import validate

NS = 'xmlns="http://hl7.org/fhir"'
XHTML = "http://www.w3.org/1999/xhtml"


def read(body: str, resource: str = "Patient") -> dict[str, Any]:
    return read_xml(f"<{resource} {NS}>{body}</{resource}>")


def error(body: str, resource: str = "Patient") -> FhirXmlError:
    with pytest.raises(FhirXmlError) as caught:
        read(body, resource)
    return caught.value


# --- primitives ----------------------------------------------------------------------------------


def test_primitive_types_become_their_json_kind() -> None:
    patient = read('<id value="p1"/><active value="true"/><gender value="female"/><birthDate value="1990-02-03"/>')
    assert patient == {
        "resourceType": "Patient",
        "id": "p1",
        "active": True,
        "gender": "female",
        "birthDate": "1990-02-03",
    }
    assert read('<active value="false"/>')["active"] is False


@pytest.mark.parametrize(
    ("element", "value", "expected"),
    [
        ("multipleBirthInteger", "2", 2),  # integer
        ("multipleBirthInteger", "-1", -1),
        ("multipleBirthBoolean", "true", True),
    ],
)
def test_integer_and_boolean_choices(element: str, value: str, expected: object) -> None:
    assert read(f'<{element} value="{value}"/>')[element] == expected


def test_positive_and_unsigned_ints_are_numbers() -> None:
    body = '<status value="final"/><code><text value="x"/></code><valueSampledData><origin><value value="0"/></origin>'
    body += '<period value="1.5"/><dimensions value="3"/><data value="1 2 3"/></valueSampledData>'
    sampled = read(body, "Observation")["valueSampledData"]
    assert sampled["dimensions"] == 3  # positiveInt
    assert sampled["origin"] == {"value": 0}  # decimal without a fraction: an int
    assert sampled["period"] == 1.5
    assert read('<photo><size value="0"/></photo>')["photo"] == [{"size": 0}]  # unsignedInt


@pytest.mark.parametrize("text", ["0.1", "36.6", "1.0", "-0.001", "1e-7", "1234567.5"])
def test_decimals_keep_their_digits(text: str) -> None:
    value = read_quantity(text)
    assert isinstance(value, float)
    assert orjson.dumps(value).decode() == text


def test_integral_decimal_is_an_int() -> None:
    assert read_quantity("72") == 72
    assert isinstance(read_quantity("72"), int)


@pytest.mark.parametrize("text", ["1.50", "0.10", "1e3", "3.14159265358979323846", "1E-7"])
def test_decimal_whose_digits_a_float_cannot_keep_is_refused(text: str) -> None:
    with pytest.raises(FhirXmlError, match="exact digits") as caught:
        read_quantity(text)
    assert caught.value.path == "Observation.valueQuantity.value"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('<active value="yes"/>', "invalid boolean"),
        ('<multipleBirthInteger value="1.5"/>', "invalid integer"),
        ('<multipleBirthInteger value="99999999999"/>', "32-bit"),
        ('<gender value=""/>', "empty value attribute"),
    ],
)
def test_bad_primitive_values_are_refused(body: str, message: str) -> None:
    assert message in str(error(body))


def read_quantity(text: str) -> Any:
    body = (
        f'<status value="final"/><code><text value="t"/></code><valueQuantity><value value="{text}"/></valueQuantity>'
    )
    return read(body, "Observation")["valueQuantity"]["value"]


# --- arrays, choices, backbone elements, contentReference ----------------------------------------


def test_repeating_elements_are_arrays_and_others_single() -> None:
    patient = read('<name><family value="Nguyễn"/><given value="Văn"/><given value="An"/></name><gender value="male"/>')
    assert patient["name"] == [{"family": "Nguyễn", "given": ["Văn", "An"]}]
    assert patient["gender"] == "male"


def test_a_single_element_given_twice_is_refused() -> None:
    found = error('<gender value="male"/><gender value="female"/>')
    assert found.path == "Patient.gender"
    assert "does not repeat" in str(found)


def test_choice_elements_keep_their_typed_name() -> None:
    body = '<status value="final"/><code><text value="HR"/></code>'
    body += '<effectiveDateTime value="2024-05-01T08:30:00+07:00"/>'
    body += '<valueQuantity><value value="72"/><unit value="/min"/></valueQuantity>'
    observation = read(body, "Observation")
    assert observation["effectiveDateTime"] == "2024-05-01T08:30:00+07:00"
    assert observation["valueQuantity"] == {"value": 72, "unit": "/min"}
    assert read('<deceasedBoolean value="false"/>')["deceasedBoolean"] is False
    assert error('<deceasedString value="x"/>').path == "Patient.deceasedString"  # not one of its types


def test_backbone_elements_nest() -> None:
    patient = read('<contact><name><text value="Trần Thị B"/></name><gender value="female"/></contact>')
    assert patient["contact"] == [{"name": {"text": "Trần Thị B"}, "gender": "female"}]


def test_content_reference_elements_use_the_referenced_path() -> None:
    body = '<status value="draft"/><item><linkId value="1"/><type value="group"/>'
    body += '<item><linkId value="1.1"/><type value="string"/><item><linkId value="1.1.1"/>'
    body += '<type value="display"/><text value="deep"/></item></item></item>'
    questionnaire = read(body, "Questionnaire")
    inner = questionnaire["item"][0]["item"][0]
    assert inner["linkId"] == "1.1"
    assert inner["item"][0] == {"linkId": "1.1.1", "text": "deep", "type": "display"}


def test_properties_follow_definition_order() -> None:
    patient = read('<gender value="male"/><active value="true"/><id value="p"/>')
    assert list(patient) == ["resourceType", "id", "active", "gender"]


# --- ids, extensions, primitive extensions --------------------------------------------------------


def test_element_id_and_extension_url_are_attributes() -> None:
    body = '<extension url="http://example.org/x"><valueString value="v"/></extension>'
    body += '<name id="n1"><text value="A"/></name>'
    body += '<modifierExtension url="http://example.org/m"><valueBoolean value="true"/></modifierExtension>'
    patient = read(body)
    assert patient["extension"] == [{"url": "http://example.org/x", "valueString": "v"}]
    assert patient["modifierExtension"] == [{"url": "http://example.org/m", "valueBoolean": True}]
    assert patient["name"] == [{"id": "n1", "text": "A"}]


def test_primitive_id_and_extensions_go_to_the_shadow_property() -> None:
    ext = '<extension url="http://example.org/acc"><valueCode value="estimated"/></extension>'
    patient = read(f'<birthDate id="bd" value="1990">{ext}</birthDate>')
    assert patient["birthDate"] == "1990"
    assert patient["_birthDate"] == {
        "id": "bd",
        "extension": [{"url": "http://example.org/acc", "valueCode": "estimated"}],
    }


def test_primitive_with_only_extensions_has_no_value() -> None:
    ext = '<extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason"><valueCode value="unknown"/>'
    patient = read(f"<birthDate>{ext}</extension></birthDate>")
    assert "birthDate" not in patient
    assert patient["_birthDate"]["extension"][0]["valueCode"] == "unknown"


def test_repeating_primitive_shadows_are_aligned_with_null() -> None:
    ext = '<extension url="http://example.org/q"><valueString value="q"/></extension>'
    patient = read(f'<name><given value="A"/><given id="g2">{ext}</given><given value="C"/></name>')
    name = patient["name"][0]
    assert name["given"] == ["A", None, "C"]
    assert name["_given"] == [
        None,
        {"id": "g2", "extension": [{"url": "http://example.org/q", "valueString": "q"}]},
        None,
    ]
    assert validate(patient) == []


def test_repeating_primitive_without_extensions_has_no_shadow() -> None:
    assert "_given" not in read('<name><given value="A"/><given value="B"/></name>')["name"][0]


# --- nested resources and narrative ---------------------------------------------------------------


def test_contained_resources() -> None:
    body = '<contained><Organization><id value="o1"/><name value="BV"/></Organization></contained>'
    body += '<managingOrganization><reference value="#o1"/></managingOrganization>'
    patient = read(body)
    assert patient["contained"] == [{"resourceType": "Organization", "id": "o1", "name": "BV"}]
    assert validate(patient) == []


def test_bundle_entries_and_parameters_hold_resources() -> None:
    entry = '<entry><fullUrl value="urn:uuid:1"/><resource><Patient><active value="true"/></Patient></resource></entry>'
    bundle = read(f'<type value="collection"/>{entry}', "Bundle")
    assert bundle["entry"][0]["resource"] == {"resourceType": "Patient", "active": True}
    param = '<parameter><name value="p"/><resource><Basic><code><text value="c"/></code></Basic></resource></parameter>'
    parameters = read(param, "Parameters")
    assert parameters["parameter"][0]["resource"]["resourceType"] == "Basic"


def test_nested_resource_wrapper_holds_exactly_one_resource() -> None:
    found = error("<contained><Patient/><Patient/></contained>")
    assert found.path == "Patient.contained[0]"
    assert "exactly one" in str(found)
    assert "not an R4 resource" in str(error("<contained><Nonsense/></contained>"))


def test_narrative_div_is_kept_as_xhtml_text() -> None:
    div = f'<div xmlns="{XHTML}"><p class="x">A &amp; B &lt;3</p><br/><a href="http://e.org/?a=1&amp;b=2">l</a></div>'
    patient = read(f'<text><status value="generated"/>{div}</text>')
    assert patient["text"] == {
        "status": "generated",
        "div": f'<div xmlns="{XHTML}"><p class="x">A &amp; B &lt;3</p><br/><a href="http://e.org/?a=1&amp;b=2">l</a></div>',
    }
    assert validate(patient) == []


def test_empty_div_and_xml_lang_are_serialized() -> None:
    patient = read(f'<text><status value="empty"/><div xmlns="{XHTML}" xml:lang="vi"/></text>')
    assert patient["text"]["div"] == f'<div xmlns="{XHTML}" xml:lang="vi"/>'


def test_narrative_must_be_an_xhtml_div() -> None:
    assert "namespace" in str(error('<text><status value="generated"/><div><p>x</p></div></text>'))
    found = error(f'<text><status value="generated"/><div xmlns="{XHTML}"><svg xmlns="http://x"/></div></text>')
    assert "only XHTML" in str(found)


# --- errors ----------------------------------------------------------------------------------------


def test_unknown_element_is_an_error_naming_its_path() -> None:
    found = error('<name><family value="A"/><nickname value="B"/></name>')
    assert found.path == "Patient.name[0].nickname"
    assert str(found) == "Patient.name[0].nickname: unknown element 'nickname' in HumanName"


def test_unknown_attribute_is_an_error() -> None:
    assert error('<name foo="1"><text value="A"/></name>').path == "Patient.name[0]@foo"
    assert error('<gender value="male" lang="en"/>').path == "Patient.gender@lang"


def test_text_content_and_empty_elements_are_refused() -> None:
    assert "text content" in str(error("<gender>male</gender>"))
    assert error("<name/>").path == "Patient.name[0]"
    assert error("<gender/>").path == "Patient.gender"


def test_elements_outside_the_fhir_namespace_are_refused() -> None:
    assert "namespace" in str(error('<x:gender xmlns:x="urn:other" value="male"/>'))
    with pytest.raises(FhirXmlError, match="namespace"):
        read_xml('<Patient><active value="true"/></Patient>')
    with pytest.raises(FhirXmlError, match="not an R4 resource type"):
        read_xml(f"<Nonsense {NS}/>")


def test_schema_location_is_ignored_on_the_root_only() -> None:
    xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir x.xsd"'
    assert read_xml(f'<Patient {NS} {xsi}><active value="true"/></Patient>')["active"] is True
    declared = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    with pytest.raises(FhirXmlError, match="unknown attribute"):
        read_xml(f'<Patient {NS} {declared}><name xsi:schemaLocation="a"><text value="A"/></name></Patient>')


def test_bytes_input_is_utf8() -> None:
    text = f'\ufeff<?xml version="1.0" encoding="UTF-8"?><Patient {NS}><name><text value="Lê"/></name></Patient>'
    assert read_xml(text.encode())["name"] == [{"text": "Lê"}]
    with pytest.raises(FhirXmlError, match="UTF-8"):
        read_xml(f'<Patient {NS}><name><text value="L\xea"/></name></Patient>'.encode("latin-1"))


def test_malformed_xml_is_refused() -> None:
    with pytest.raises(FhirXmlError, match="well-formed"):
        read_xml(f"<Patient {NS}><active value='true'></Patient>")


# --- safety ----------------------------------------------------------------------------------------

BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE Patient [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<Patient {NS}><name><text value="&b;"/></name></Patient>"""
EXTERNAL = f"""<?xml version="1.0"?>
<!DOCTYPE Patient [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Patient {NS}><name><text value="&x;"/></name></Patient>"""
BARE_DOCTYPE = f'<!DOCTYPE Patient SYSTEM "http://example.org/x.dtd"><Patient {NS}><active value="true"/></Patient>'


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL, BARE_DOCTYPE])
@pytest.mark.parametrize("defused", [True, False])
def test_dtds_and_entities_are_refused(payload: str, defused: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if defused and fhir_xml._DEFUSED is None:
        pytest.skip("defusedxml is not installed")
    if not defused:
        monkeypatch.setattr(fhir_xml, "_DEFUSED", None)
    with pytest.raises(FhirXmlError, match="DTD"):
        read_xml(payload)
    with pytest.raises(FhirXmlError, match="DTD"):
        read_xml(payload.encode())


# --- end to end --------------------------------------------------------------------------------------


def test_a_realistic_resource_passes_structural_validation() -> None:
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment is not content -->
<Observation {NS}>
  <id value="bp-1"/>
  <meta><profile value="http://fhir.ehealth.gov.vn/core/StructureDefinition/observation-birth-weight"/></meta>
  <text><status value="generated"/><div xmlns="{XHTML}"><p>Cân nặng lúc sinh: 3,2 kg</p></div></text>
  <status value="final"/>
  <category>
    <coding><system value="http://terminology.hl7.org/CodeSystem/observation-category"/><code value="survey"/></coding>
  </category>
  <code><coding><system value="http://loinc.org"/><code value="8339-4"/></coding></code>
  <subject><reference value="Patient/p1"/></subject>
  <effectiveDateTime value="2024-05-01T08:30:00+07:00"/>
  <valueQuantity>
    <value value="3.2"/><unit value="kg"/><system value="http://unitsofmeasure.org"/><code value="kg"/>
  </valueQuantity>
  <component>
    <code><text value="x"/></code>
    <valueCodeableConcept><text value="y"/></valueCodeableConcept>
  </component>
</Observation>"""
    observation = read_xml(xml)
    assert validate(observation) == []
    assert observation["valueQuantity"]["value"] == 3.2
    assert observation["component"][0]["valueCodeableConcept"] == {"text": "y"}
    assert read_xml(xml) == observation  # cached tables, same answer
