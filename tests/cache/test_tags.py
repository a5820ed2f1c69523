"""Tag validation and templates derived from call arguments."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cache.tags import TagTemplates, validate_tags


def test_templates_are_filled_from_arguments_in_parameter_order() -> None:
    templates = TagTemplates(["charge:{charge_id}", "charges", "{kind}/{charge_id}"], ["kind", "charge_id"])

    assert templates.dynamic
    assert templates.format(("batch", 42)) == ("charge:42", "charges", "batch/42")


def test_prefixed_formats_yield_prefixed_tags() -> None:
    templates = TagTemplates(["charge:{charge_id}", "{{x}}"], ["charge_id"])

    formats = templates.prefixed("erp:v:")

    assert [template.format(42) for template in formats] == ["erp:v:charge:42", "erp:v:{x}"]


def test_templates_support_attributes_indexes_and_format_specs() -> None:
    templates = TagTemplates(
        ["c:{charge.id}", "first:{items[0]}", "n:{n:03d}", "{{literal}}"], ["charge", "items", "n"]
    )

    assert templates.format((SimpleNamespace(id=7), ["x"], 5)) == ("c:7", "first:x", "n:005", "{literal}")


def test_static_templates_are_validated_once() -> None:
    templates = TagTemplates(["charges:list"], ["charge_id"])

    assert not templates.dynamic
    assert templates.format((1,)) == ("charges:list",)
    with pytest.raises(ValueError):
        TagTemplates(["bad\ttag"], [])


@pytest.mark.parametrize("templates", [["{missing}"], ["{0}"]])
def test_templates_must_name_parameters(templates: list[str]) -> None:
    with pytest.raises(ValueError):
        TagTemplates(templates, ["charge_id"])


def test_a_single_string_is_not_a_list_of_tags() -> None:
    with pytest.raises(TypeError):
        TagTemplates("charge:{charge_id}", ["charge_id"])


def test_validate_tags() -> None:
    assert validate_tags(iter(["a", "b:c"])) == ("a", "b:c")
    for bad in ["", "a\nb", "a\x1fb", "a\x7fb"]:
        with pytest.raises(ValueError):
            validate_tags([bad])
