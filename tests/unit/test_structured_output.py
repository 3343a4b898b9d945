"""Tolerant JSON parsing of model replies, and the three ways of asking for JSON."""

from __future__ import annotations

import pytest

from metagpt_lsp.agents.llm.structured_output import (
    missing_required,
    parse_json_reply,
    refuses_structured_output,
    response_format_for,
    with_schema_instruction,
)

SCHEMA = {"type": "object", "properties": {"cause": {"type": "string"}}, "required": ["cause"]}


@pytest.mark.parametrize("reply, expected", [
    ('{"cause": "x"}', {"cause": "x"}),
    ('Here is the answer:\n```json\n{"cause": "x"}\n```\nAnything else?', {"cause": "x"}),
    ('```\n{"cause": "x"}\n```', {"cause": "x"}),
    ('The cause: {"cause": "x", "lines": [1, 2,],} — done.', {"cause": "x", "lines": [1, 2]}),
    ('{"cause": "first line\nsecond\tline"}', {"cause": "first line\nsecond\tline"}),
    ('{"cause": "a } inside, a \\" quote", "n": {"k": [1]}}', {"cause": 'a } inside, a " quote', "n": {"k": [1]}}),
    ('{"cause": "keeps, commas ,} in strings",}', {"cause": "keeps, commas ,} in strings"}),
    ('not json {broken and then {"cause": "x"}', {"cause": "x"}),
])
def test_the_first_json_value_is_found_and_forgiven(reply, expected):
    assert parse_json_reply(reply) == expected


def test_a_reply_without_json_says_how_it_starts():
    with pytest.raises(ValueError, match="no JSON object in the reply.*'I cannot help"):
        parse_json_reply("I cannot help with that.")


def test_required_keys_are_checked():
    assert missing_required({"cause": "x"}, SCHEMA) == []
    assert missing_required({"other": 1}, SCHEMA) == ["cause"]
    assert missing_required(["cause"], SCHEMA) == ["<an object>"]


def test_each_mode_asks_its_own_way():
    assert response_format_for("json_schema", SCHEMA, "diagnosis") == {
        "type": "json_schema", "json_schema": {"name": "diagnosis", "schema": SCHEMA}}
    assert response_format_for("json_object", SCHEMA) == {"type": "json_object", "schema": SCHEMA}
    assert response_format_for("text", SCHEMA) is None
    with pytest.raises(ValueError):
        response_format_for("xml", SCHEMA)


def test_the_schema_instruction_goes_into_a_copy_of_the_last_user_message():
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "first"},
                {"role": "assistant", "content": "a"}, {"role": "user", "content": "why?"}]
    asked = with_schema_instruction(messages, SCHEMA)
    assert asked[3]["content"].startswith("why?\n\nReply with only one JSON object")
    assert '"required":["cause"]' in asked[3]["content"] and asked[:3] == messages[:3]
    assert messages[3]["content"] == "why?"


@pytest.mark.parametrize("status, text, refused", [
    (400, "Unrecognized request argument supplied: response_format", True),  # OpenAI-style
    (500, "response_format type must be one of \"text\" or \"json_object\", but got: json_schema", True),  # llama.cpp
    (422, "{'detail': [{'loc': ('body', 'response_format', 'type'), 'msg': 'Input should be 'text''}]}", True),
    (500, "json_schema is not supported here", True),
    (500, "scripted internal error", False),  # a passing failure says nothing about the mode
    (502, "Bad Gateway", False),
    (503, "model is loading", False),
    (429, "Rate limit reached for json_schema requests", False),
    (401, "Incorrect API key provided", False),
    (400, "This model's maximum context length is 8192 tokens", False),
    (None, "timed out", False),
])
def test_only_an_answer_that_names_the_refused_format_is_a_refusal(status, text, refused):
    assert refuses_structured_output(status, text) is refused
