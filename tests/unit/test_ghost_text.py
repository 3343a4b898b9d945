"""Ghost text as a library: FIM prompt bytes per family, the window, the when/how-much rules, each filter, the cache
with type-through, the syntax check, and request priority — the engine against the scripted LLM over real HTTP."""

from __future__ import annotations

import asyncio

import pytest

from metagpt_lsp.agents.ghost_text import (
    ContextFile,
    GhostRequest,
    GhostText,
    GhostTextOptions,
    OfferCache,
    Shape,
    WindowOptions,
    adds_syntax_errors,
    cursor_context,
    discard_reason,
    over_closers,
    shape_at,
    should_request,
    template_for,
    trim,
)
from metagpt_lsp.agents.ghost_text.offer_rules import Offer
from metagpt_lsp.agents.llm import LlmClient, LlmSettings
from metagpt_lsp.agents.llm.priority_slots import PrioritySlots
from metagpt_lsp.agents.syntax import DocumentSnapshot
from metagpt_lsp.testing.scripted_llm import Rule, ScriptedLlm

FILES = (ContextFile("util.py", "def area(r):\n    ..."),)


@pytest.mark.parametrize(("model", "expected"), [
    ("qwen2.5-coder-1.5b-instruct-q4_k_m",
     "<|repo_name|>workspace\n<|file_sep|>util.py\ndef area(r):\n    ...\n<|file_sep|>a.py\n"
     "<|fim_prefix|>x = <|fim_suffix|>\nprint(x)<|fim_middle|>"),
    ("bigcode/starcoder2-3b",
     "<repo_name>workspace\n<file_sep>util.py\ndef area(r):\n    ...\n<file_sep>a.py\n"
     "<fim_prefix>x = <fim_suffix>\nprint(x)<fim_middle>"),
    ("deepseek-coder-1.3b-base",
     "# util.py\ndef area(r):\n    ...\n# a.py\n<｜fim▁begin｜>x = <｜fim▁hole｜>\nprint(x)<｜fim▁end｜>"),
    ("codellama-7b-code", "# util.py\ndef area(r):\n    ...\n# a.py\n<PRE> x =  <SUF>\nprint(x) <MID>"),
    ("codestral-22b", "# util.py\ndef area(r):\n    ...\n# a.py\n[SUFFIX]\nprint(x)[PREFIX]x = "),
])
def test_the_fim_prompt_of_each_family_byte_for_byte(model: str, expected: str):
    assert template_for(model).prompt("x = ", "\nprint(x)", path="a.py", files=FILES) == expected


def test_a_single_file_prompt_has_no_repository_tokens_and_the_setting_overrides_the_name():
    assert template_for("my-model").prompt("a", "b") == "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"
    assert template_for("qwen2.5-coder", "starcoder2").prompt("a", "b") == "<fim_prefix>a<fim_suffix>b<fim_middle>"
    assert "<|file_sep|>" in template_for("qwen").stop and "<EOT>" in template_for("codellama").stop


def test_the_window_is_cut_on_characters_and_keeps_its_start_while_the_cursor_moves_down():
    text = "".join(f"第{n}行 = '🙂'\n" for n in range(400))
    snapshot = DocumentSnapshot.open("file:///w/a.py", 1, text)
    options = WindowOptions(prefix_lines=256, suffix_lines=64, max_prompt_tokens=100_000)
    at = [cursor_context(snapshot, snapshot.lines.line_start(line), options) for line in (300, 301)]
    assert at[0].prefix.split("\n")[0] == at[1].prefix.split("\n")[0] == "第32行 = '🙂'"  # 300-256 rounded down to 16
    assert at[0].suffix.count("\n") == 65 - 1 + 1 and at[0].suffix.startswith("第300行")
    small = cursor_context(snapshot, snapshot.lines.line_start(300), WindowOptions(256, 64, 300))
    assert len(small.prefix) + len(small.suffix) <= 300 * 3.2 and "\ufffd" not in small.prefix + small.suffix
    assert small.prefix.endswith("第299行 = '🙂'\n")


def test_signatures_of_names_used_near_the_cursor_come_from_open_documents():
    other = DocumentSnapshot.open("file:///w/geometry.py", 1,
                                  "def area(radius):\n    return 3 * radius\n\n\ndef unused(x):\n    pass\n")
    snapshot = DocumentSnapshot.open("file:///w/main.py", 1, "total = area(2) + ")
    context = cursor_context(snapshot, len(snapshot.source), WindowOptions(), (other,))
    assert context.files == (ContextFile("geometry.py", "def area(radius):\n    ..."),)


def test_when_to_ask_and_how_much():
    assert should_request("x)", explicit=False) and not should_request(" and more_text", explicit=False)
    assert should_request(" and more_text", explicit=True)
    assert shape_at("    x = foo(", ")") == Shape(False, 4)  # mid-line: one line
    assert shape_at("    total = ", "") == Shape(False, 4)  # the end of a plain line: one line
    assert shape_at("def f(x):", "").multi_line and shape_at("    ", "").multi_line


def test_trim_keeps_one_line_mid_line_and_stops_at_a_dedent_or_at_the_next_lines():
    assert trim("a, b)\n    more()", Shape(False, 4), "    f(", ")") == "a, b)"
    block = "\n    y = x + 1\n    return y\nprint('next')\n"
    assert trim(block, shape_at("def f(x):", ""), "def f(x):", "") == "\n    y = x + 1\n    return y"
    assert trim("y = 1\n    return y\n    z()", Shape(True, 4), "    ", "\n    return y") == "y = 1"


@pytest.mark.parametrize(("offer", "line_after", "suffix", "prefix", "reason"), [
    ("   \n  ", "", "", "x = 1\n", "whitespace only"),
    ("(a, b)", "(a, b)", "(a, b)", "f", "repeats the rest of the line"),
    ("return y\nprint(1)", "", "\n    return y\nprint(1)", "    ", "repeats the next lines"),
    ("x = 1", "", "", "x = 1\n", "repeats the line above"),
    ("abcabcabcabcabcabcabc", "", "", "s = ", "repeats itself"),
    ("\n".join(["    x.append(1)"] * 6), "", "", "def f():\n    ", "repeats itself"),
])
def test_each_discard_rule(offer: str, line_after: str, suffix: str, prefix: str, reason: str):
    line_before = prefix.rsplit("\n", 1)[-1]
    assert discard_reason(offer, line_before, line_after, prefix, suffix) == reason


def test_an_auto_closed_bracket_is_replaced_not_doubled():
    assert over_closers("a, b)", ")") == Offer("a, b)", 1)
    assert over_closers("x[0]]", "])") == Offer("x[0]]", 1)
    assert over_closers("a, b", ")") == Offer("a, b", 0)


def test_an_offer_may_not_add_syntax_errors_but_may_finish_what_was_started():
    snapshot = DocumentSnapshot.open("file:///w/a.py", 1, "def f(x):\n    return max(x\n")
    cursor = snapshot.source.index(b"max(x") + 5
    assert not adds_syntax_errors(snapshot, cursor, ", 0)")
    assert adds_syntax_errors(snapshot, cursor, ", 0)) +* (")


def test_type_through_gives_the_rest_of_a_shown_offer_and_moves_with_the_cursor():
    cache = OfferCache(8)
    from metagpt_lsp.agents.ghost_text.offer_cache import CursorKey
    source = b"total = \nprint(total)\n"
    cache.put(CursorKey.at(source, 8), Offer("area(3)"))
    typed = b"total = ar\nprint(total)\n"
    assert cache.lookup(typed, 10) == Offer("ea(3)")
    assert cache.lookup(b"total = ax\nprint(total)\n", 10) is None
    assert cache.typed_through == 1


def llm_for(server: ScriptedLlm, model: str = "qwen2.5-coder-1.5b") -> LlmClient:
    settings = LlmSettings(base_url=server.base_url, model=model, max_retries=0)
    return LlmClient(settings)


async def test_the_engine_sends_the_raw_template_with_stop_tokens_and_a_cap(scripted_llm: ScriptedLlm):
    scripted_llm.script(Rule("area(3)\nprint('more')", prompt=r"<\|fim_middle\|>$"))
    engine = GhostText(llm_for(scripted_llm))
    snapshot = DocumentSnapshot.open("file:///w/a.py", 1, "total = \nprint(total)\n")
    result = await engine.offer(GhostRequest(snapshot, 8))
    assert result.offer == Offer("area(3)")
    (request,) = scripted_llm.text_completions
    body = request.body or {}
    assert request.prompt == "<|fim_prefix|>total = <|fim_suffix|>\nprint(total)\n<|fim_middle|>"
    assert body["stream"] is True and body["max_tokens"] == 48 and "suffix" not in body
    assert body["stop"][0] == "\n" and "<|endoftext|>" in body["stop"] and "<|file_sep|>" in body["stop"]
    again = await engine.offer(GhostRequest(snapshot.with_changes(2, []), 8))
    assert again.offer == Offer("area(3)") and len(scripted_llm.text_completions) == 1


async def test_an_endpoint_without_completions_is_asked_through_chat_once_detected(scripted_llm: ScriptedLlm):
    scripted_llm.completions_endpoint = False
    scripted_llm.script(Rule("```python\narea(3)\n```", last_user="<FILL_HERE>"))
    engine = GhostText(llm_for(scripted_llm, "gpt-4o-mini"))
    for text in ("a = \nprint(a)\n", "b = \nprint(b)\n"):
        snapshot = DocumentSnapshot.open("file:///w/a.py", 1, text)
        assert (await engine.offer(GhostRequest(snapshot, 4))).offer == Offer("area(3)")
    assert len(scripted_llm.text_completions) == 1, "the 404 was not remembered"
    assert len(scripted_llm.completions) == 2 and engine.chat_only


async def test_an_urgent_request_goes_ahead_of_queued_background_work():
    slots = PrioritySlots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def background(name: str) -> None:
        async with slots:
            order.append(name)
            await release.wait()

    async def urgent() -> None:
        async with slots.urgent():
            order.append("ghost")

    running = asyncio.ensure_future(background("review 1"))
    await until(lambda: order == ["review 1"])
    queued = asyncio.ensure_future(background("review 2"))
    await until(lambda: slots.waiting == 1)
    ghost = asyncio.ensure_future(urgent())
    await until(lambda: slots.waiting == 2)
    release.set()
    await asyncio.gather(running, queued, ghost)
    assert order == ["review 1", "ghost", "review 2"]


def test_options_default_to_llama_vim_window():
    assert GhostTextOptions().window == WindowOptions(256, 64, 1536)


async def until(condition) -> None:
    """Yield to the event loop until ``condition()`` holds (no clock involved)."""
    while not condition():  # noqa: ASYNC110 - a bare yield, no clock: these states signal no event
        await asyncio.sleep(0)


async def test_on_the_embedded_model_ghost_text_goes_ahead_of_a_queued_review(scripted_llm: ScriptedLlm):
    from metagpt_lsp.agents.llm import LlmEndpoint

    gate = asyncio.Event()
    scripted_llm.script(Rule("one", last_user="review 1", gate=gate), Rule("two", last_user="review 2"),
                        Rule("x = 1", prompt="fim_middle"))
    endpoint = LlmEndpoint(scripted_llm.base_url, "qwen2.5-coder-1.5b-instruct-q4_k_m", None, embedded=True)
    llm = LlmClient(LlmSettings(max_retries=0), endpoint)
    running = asyncio.ensure_future(llm.complete([{"role": "user", "content": "review 1"}]))
    await asyncio.wait_for(scripted_llm.wait_for_requests(1), 10)
    queued = asyncio.ensure_future(llm.complete([{"role": "user", "content": "review 2"}]))
    await asyncio.wait_for(until(lambda: llm._slots.waiting == 1), 10)

    async def ghost() -> str:
        return "".join([d async for d in llm.stream_completion("<|fim_prefix|>x<|fim_middle|>", max_tokens=8)])

    offer = asyncio.ensure_future(ghost())
    await asyncio.wait_for(until(lambda: llm._slots.waiting == 2), 10)
    gate.set()
    assert await asyncio.wait_for(offer, 10) == "x = 1"
    await asyncio.wait_for(asyncio.gather(running, queued), 10)
    arrived = [r.prompt or r.last_user_message for r in scripted_llm.requests]
    assert arrived == ["review 1", "<|fim_prefix|>x<|fim_middle|>", "review 2"]
    await llm.aclose()
