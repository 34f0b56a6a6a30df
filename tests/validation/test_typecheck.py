"""Which port types may feed which: ``assignable`` and ``mimes_compatible``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Optional, Union

import pytest
from pydantic import BaseModel, JsonValue

from nodes.artifacts import Artifact, Mime
from nodes.introspect import input_ports, output_ports
from nodes.library import Format, Math, ReadText, WriteText
from orchestrator.validation import assignable, mimes_compatible


class Point(BaseModel):
    x: int
    y: int


class Point3(Point):
    z: int


class Label(BaseModel):
    text: str


def test_the_numeric_tower_widens_bool_to_int_to_float_to_complex() -> None:
    assert assignable(bool, int)
    assert assignable(bool, float)
    assert assignable(int, float)
    assert assignable(int, complex)
    assert assignable(float, complex)


def test_the_numeric_tower_never_narrows() -> None:
    assert not assignable(float, int)
    assert not assignable(int, bool)
    assert not assignable(complex, float)


def test_unrelated_scalars_do_not_mix() -> None:
    assert not assignable(str, int)
    assert not assignable(int, str)
    assert not assignable(bytes, str)


def test_a_type_fits_a_union_holding_it_or_a_wider_member() -> None:
    assert assignable(int, int | float)
    assert assignable(bool, Union[int, str])  # noqa: UP007 - typing.Union is supported too
    assert not assignable(str, int | float)


def test_a_union_fits_only_where_every_member_fits() -> None:
    assert assignable(int | float, float)
    assert assignable(float | int, int | float)
    assert not assignable(int | float, int)
    assert not assignable(int | str, int | float)


def test_optional_accepts_none_and_the_type_but_does_not_flow_into_the_bare_type() -> None:
    assert assignable(int, Optional[int])  # noqa: UP045 - typing.Optional is supported too
    assert assignable(type(None), int | None)
    assert assignable(None, int | None)
    assert not assignable(int | None, int)
    assert not assignable(type(None), int)


def test_a_literal_fits_the_type_of_its_values_or_a_literal_holding_them() -> None:
    assert assignable(Literal[1, 2], int)
    assert assignable(Literal[1, 2], float)
    assert assignable(Literal["a"], Literal["a", "b"])
    assert not assignable(Literal[1, "a"], int)
    assert not assignable(Literal["a", "b"], Literal["a"])


def test_a_plain_type_may_feed_a_literal_of_its_kind_leaving_the_value_to_run_time() -> None:
    assert assignable(str, Literal["add", "mul"])
    assert not assignable(int, Literal["add", "mul"])


def test_lists_and_sequences_check_their_item_types() -> None:
    assert assignable(list[int], list[float])
    assert assignable(list[int], Sequence[int])
    assert assignable(list[bool], Sequence[float])
    assert not assignable(list[float], list[int])
    assert not assignable(list[str], Sequence[int])
    assert not assignable(Sequence[int], list[int])


def test_a_bare_container_fits_any_parametrisation_of_it() -> None:
    assert assignable(list[int], list)
    assert assignable(list, list[int])
    assert assignable(dict, dict[str, int])


def test_dicts_and_mappings_check_their_key_and_value_types() -> None:
    assert assignable(dict[str, int], dict[str, float])
    assert assignable(dict[str, int], Mapping[str, int])
    assert not assignable(dict[str, str], dict[str, int])
    assert not assignable(Mapping[str, float], dict[str, int])


def test_tuples_check_their_shape_and_item_types() -> None:
    assert assignable(tuple[int, str], tuple[int, str])
    assert assignable(tuple[int, int], tuple[float, ...])
    assert assignable(tuple[int, ...], tuple[float, ...])
    assert not assignable(tuple[int, str], tuple[int, int])
    assert not assignable(tuple[int, int], tuple[int, int, int])
    assert not assignable(tuple[int, ...], tuple[int, int])


def test_containers_do_not_mix_with_scalars_or_each_other() -> None:
    assert not assignable(str, list[str])
    assert not assignable(list[str], str)
    assert not assignable(list[int], dict[str, int])
    assert not assignable(tuple[int, ...], list[int])


def test_pydantic_models_and_dicts_are_interchangeable_as_json_objects() -> None:
    assert assignable(Point, dict)
    assert assignable(dict, Point)
    assert assignable(dict[str, Any], Point)
    assert assignable(Point3, Point)
    assert assignable(Point, Label)  # both are JSON objects: fields are checked at run time
    assert assignable(list[Point], list[dict[str, Any]])


def test_a_pydantic_model_is_not_a_scalar_or_a_list() -> None:
    assert not assignable(Point, int)
    assert not assignable(Point, list[int])
    assert not assignable(str, Point)


@pytest.mark.parametrize("loose", [Any, JsonValue, object])
def test_any_and_json_values_fit_everything_both_ways(loose: Any) -> None:
    for concrete in (int, str, list[int], dict[str, float], Point, Artifact, int | None):
        assert assignable(loose, concrete)
        assert assignable(concrete, loose)


def test_annotated_metadata_is_looked_through() -> None:
    text_file = Annotated[Artifact, Mime("text/*")]
    assert assignable(text_file, Artifact)
    assert assignable(Artifact, Annotated[Artifact, Mime("image/*")])
    assert assignable(Annotated[int, "units"], float)
    assert not assignable(text_file, str)
    assert not assignable(Annotated[str, "label"], int)


def test_the_answer_is_the_same_when_asked_again() -> None:
    assert assignable(dict[str, str], dict[str, int]) is False
    assert assignable(dict[str, str], dict[str, int]) is False
    assert assignable(list[int], list[float]) is True
    assert assignable(list[int], list[float]) is True


def test_the_built_in_ports_agree_with_the_rules() -> None:
    math_in, math_out = input_ports(Math)["a"], output_ports(Math)["result"]
    format_in, format_out = input_ports(Format)["value"], output_ports(Format)["text"]
    assert assignable(math_out.annotation, math_in.annotation)
    assert assignable(math_out.annotation, format_in.annotation)
    assert not assignable(format_out.annotation, math_in.annotation)
    assert assignable(format_out.annotation, input_ports(WriteText)["text"].annotation)


def test_matching_mime_types_are_compatible() -> None:
    assert mimes_compatible(("text/plain",), ("text/plain",))
    assert mimes_compatible(("text/plain",), ("text/csv", "text/plain"))


def test_a_wildcard_on_either_side_matches_the_types_it_covers() -> None:
    assert mimes_compatible(("image/png",), ("image/*",))
    assert mimes_compatible(("image/*",), ("image/png",))
    assert mimes_compatible(("*/*",), ("image/*",))
    assert mimes_compatible(("text/*",), ("*/*",))


def test_mime_types_that_cannot_denote_the_same_type_are_incompatible() -> None:
    assert not mimes_compatible(("text/*",), ("image/*",))
    assert not mimes_compatible(("text/plain",), ("text/csv",))
    assert not mimes_compatible(("image/png", "image/gif"), ("text/*", "application/json"))


def test_mime_matching_ignores_case() -> None:
    assert mimes_compatible(("TEXT/Plain",), ("text/*",))


def test_a_side_that_declares_no_mime_types_is_left_to_run_time() -> None:
    assert mimes_compatible(None, ("image/*",))
    assert mimes_compatible(("text/*",), None)
    assert mimes_compatible((), ("image/*",))


def test_the_built_in_text_file_ports_declare_text() -> None:
    produced = output_ports(WriteText)["file"].mime
    accepted = input_ports(ReadText)["file"].mime
    assert produced == accepted == ("text/*",)
    assert mimes_compatible(produced, accepted)
    assert not mimes_compatible(produced, ("image/*",))
