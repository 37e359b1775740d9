"""Tests for foxagent._answer: FoxBrain's tagged replies."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from foxagent._answer import FoxBrainAnswer, parse_answer
from foxagent._prompts import DEFAULT_SYSTEM_PROMPT

# An independent statement of "known tag", deliberately broader than the parser's (Unicode case
# folding too), used to keep generated content free of markup.
_ANY_TAG = re.compile(r"</?\s*(answer|clarification|count|reflection|reward|step)\s*>", re.I)

# The "Example Format" block of the guide's DEFAULT_SYSTEM_PROMPT, taken from the prompt itself.
GUIDE_TEMPLATE = DEFAULT_SYSTEM_PROMPT.split("**Example Format:**\n", 1)[1]

# The guide's example question: two trains leave one station in opposite directions.
TRAINS = """<count>3</count>
<step>兩列火車反方向行駛，相對速度為 120 + 80 = 200 公里/小時。</step>
<count>2</count>
<step>設時間為 t：200 * t = 500，因為 t > 0 且 200t < 600，解得 t = 2.5。</step>
<count>1</count>
<reflection>計算簡單，單位一致。</reflection>
<reward>0.9</reward>
<answer>
需要 2.5 小時（2 小時 30 分鐘）兩列火車才會相距 500 公里。
</answer>
<reflection>推理完整且正確。</reflection>
<reward>0.95</reward>"""

# The guide's function-calling example: the tool said "台北天氣：25°C，多雲".
TAIPEI = """<count>2</count>
<step>呼叫 get_weather 查詢台北天氣，結果：25°C，多雲。</step>
<count>1</count>
<step>整理成使用者容易閱讀的回答。</step>
<reflection>資料來自工具，可信。</reflection>
<reward>0.8</reward>
<answer>台北目前天氣多雲，氣溫約 25°C。</answer>
<reflection>回答簡潔，涵蓋溫度與天況。</reflection>
<reward>0.9</reward>"""


def test_guide_template_is_complete_with_placeholder_numbers_skipped() -> None:
    assert parse_answer(GUIDE_TEMPLATE) == FoxBrainAnswer(
        answer="[Final comprehensive answer]",
        answers=("[Final comprehensive answer]",),
        budget=None,
        counts=(),
        steps=(
            "[Step 1 with code snippets if necessary]",
            "[Step 2 with code snippets if necessary]",
        ),
        reflections=("[Evaluation of steps so far]", "[Final evaluation]"),
        rewards=(),
        complete=True,
        tagged=True,
        outside_text="...",
    )


def test_trains_reply_in_traditional_chinese_with_math_comparisons() -> None:
    reply = parse_answer(TRAINS)
    assert reply == FoxBrainAnswer(
        answer="需要 2.5 小時（2 小時 30 分鐘）兩列火車才會相距 500 公里。",
        answers=("需要 2.5 小時（2 小時 30 分鐘）兩列火車才會相距 500 公里。",),
        budget=3,
        counts=(3, 2, 1),
        steps=(
            "兩列火車反方向行駛，相對速度為 120 + 80 = 200 公里/小時。",
            "設時間為 t：200 * t = 500，因為 t > 0 且 200t < 600，解得 t = 2.5。",
        ),
        reflections=("計算簡單，單位一致。", "推理完整且正確。"),
        rewards=(0.9, 0.95),
        complete=True,
        tagged=True,
    )
    assert reply.reward == 0.95
    assert reply.final_text == reply.answer


def test_taipei_weather_reply() -> None:
    reply = parse_answer(TAIPEI)
    assert reply.answer == "台北目前天氣多雲，氣溫約 25°C。"
    assert reply.steps == (
        "呼叫 get_weather 查詢台北天氣，結果：25°C，多雲。",
        "整理成使用者容易閱讀的回答。",
    )
    assert (reply.budget, reply.counts, reply.rewards) == (2, (2, 1), (0.8, 0.9))
    assert (reply.complete, reply.truncated, reply.outside_text) == (True, False, "")


def test_clarification_reply_is_what_to_show() -> None:
    reply = parse_answer("<clarification>請問您想查詢哪一個城市的天氣？</clarification>")
    assert reply == FoxBrainAnswer(clarification="請問您想查詢哪一個城市的天氣？", tagged=True)
    assert reply.final_text == "請問您想查詢哪一個城市的天氣？"
    assert reply.reward is None


@pytest.mark.parametrize(
    "step",
    [
        "if a < b:\n    a, b = b, a",
        "<div class='x'>台北</div>",
        "x<y 且 y>z",
        "a->b->c",
        "List<int> xs = new ArrayList<>();",
        "1 << 3 >> 1",
        "< step> 與 <steps> 和 <step/> 都不是標籤",
        '<answer id="1"> 帶屬性的不算',
        "<ſtep> 長 s 不算",
    ],
)
def test_angle_brackets_inside_a_step_are_text(step: str) -> None:
    reply = parse_answer(f"<count>1</count><step>{step}</step><answer>ok</answer>")
    assert reply.steps == (step,)
    assert (reply.answer, reply.counts, reply.truncated) == ("ok", (1,), False)


def test_quoted_answer_tag_inside_a_step_is_text() -> None:
    reply = parse_answer("<step>把結果放進 <answer> 標籤</step><answer>42</answer>")
    assert reply.steps == ("把結果放進 <answer> 標籤",)
    assert reply.answers == ("42",)


def test_reflection_inside_a_step_stays_in_the_step() -> None:
    reply = parse_answer("<step>先算 <reflection>好像錯了</reflection> 再算</step>")
    assert reply.steps == ("先算 <reflection>好像錯了</reflection> 再算",)
    assert reply.reflections == ()


def test_complete_counts_only_real_elements_not_quoted_tags() -> None:
    # The guide's regexes would call this complete: every core tag occurs somewhere.
    text = "<answer>用 <count>1</count><step>x</step><reflection>r</reflection> 格式</answer>"
    reply = parse_answer(text)
    assert reply.complete is False
    assert reply.steps == ()


def test_several_answers_the_last_closed_one_wins() -> None:
    reply = parse_answer(
        "<answer>草稿</answer><reflection>再想想</reflection><answer>定稿</answer>"
    )
    assert (reply.answer, reply.answers) == ("定稿", ("草稿", "定稿"))


def test_a_closed_answer_beats_a_later_cut_one() -> None:
    reply = parse_answer("<answer>完整答案</answer><answer>被截斷的")
    assert (reply.answer, reply.answers, reply.truncated) == (
        "完整答案",
        ("完整答案", "被截斷的"),
        True,
    )


def test_unclosed_answer_at_the_end_is_truncated() -> None:
    reply = parse_answer("<count>1</count><step>查詢</step><answer>台北今天 25°C，")
    assert reply == FoxBrainAnswer(
        answer="台北今天 25°C，",
        answers=("台北今天 25°C，",),
        budget=1,
        counts=(1,),
        steps=("查詢",),
        truncated=True,
        tagged=True,
    )


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("<step>a</step><step>b</ste", ("a", "b")),
        ("<step>a</step><step>b</", ("a", "b")),
        ("<step>a</step><step>b<", ("a", "b")),
        ("<step>a</step><ste", ("a",)),
        ("<step>a</step><step  ", ("a",)),
        ("<step>a</step><step>", ("a", "")),
    ],
)
def test_cut_inside_a_tag_is_truncated_and_the_fragment_dropped(
    text: str, steps: tuple[str, ...]
) -> None:
    reply = parse_answer(text)
    assert (reply.steps, reply.truncated, reply.outside_text) == (steps, True, "")


def test_numbers_cut_by_truncation_are_skipped() -> None:
    reply = parse_answer("<count>3</count><reward>0.8</reward><count>1</count><reward>0.")
    assert (reply.counts, reply.rewards, reply.truncated) == ((3, 1), (0.8,), True)


def test_forgotten_close_tag_ends_at_the_next_tag() -> None:
    reply = parse_answer("<count>2<step>第一步<count>1</count><step>第二步</step><answer>完成")
    assert reply.counts == (2, 1)
    assert reply.steps == ("第一步", "第二步")
    assert (reply.answer, reply.truncated, reply.complete) == ("完成", True, False)


def test_stray_close_tags_are_dropped() -> None:
    reply = parse_answer("</step>前言</answer><answer>42</answer></reward>")
    assert (reply.answer, reply.outside_text, reply.tagged) == ("42", "前言", True)


def test_stray_close_tag_only_reply_is_untagged() -> None:
    reply = parse_answer("答案是 42</answer>")
    assert (reply.answer, reply.tagged, reply.truncated) == ("答案是 42", False, False)


def test_text_outside_tags_is_collected() -> None:
    reply = parse_answer("好的，我來想想。\n<step>想</step>\n  \n<answer>是</answer>\n以上。")
    assert reply.outside_text == "好的，我來想想。\n以上。"
    assert (reply.answer, reply.steps) == ("是", ("想",))


def test_an_incomplete_reply_falls_back_to_text_outside_tags() -> None:
    reply = parse_answer("<count>1</count>台北今天晴。")
    assert (reply.answer, reply.final_text, reply.complete) == ("", "台北今天晴。", False)


def test_clarification_beats_an_answer_when_incomplete() -> None:
    reply = parse_answer("<answer>也許是台北</answer><clarification>哪個城市？</clarification>")
    assert reply.final_text == "哪個城市？"


def test_mixed_case_tags() -> None:
    reply = parse_answer(
        "<COUNT>1</Count><Step>s</STEP><Reflection>r</reflection><Answer>a</ANSWER>"
    )
    assert (reply.counts, reply.steps, reply.reflections, reply.answer) == (
        (1,),
        ("s",),
        ("r",),
        "a",
    )
    assert reply.complete is True


@pytest.mark.parametrize(
    ("text", "answer", "tagged"),
    [
        ("<answer >a</answer\t>", "a", True),
        ("< answer>a</answer>", "< answer>a", False),
        ("<answer\n>a</answer>", "<answer\n>a", False),
        ('<answer lang="zh">a</answer>', '<answer lang="zh">a', False),
    ],
)
def test_whitespace_and_attributes_inside_tags(text: str, answer: str, tagged: bool) -> None:
    reply = parse_answer(text)
    assert (reply.answer, reply.tagged) == (answer, tagged)


@pytest.mark.parametrize("text", ["台北今天晴，25°C。", "  2 + 2 = 4\n", "x < y and y > z"])
def test_no_tags_the_whole_text_is_the_answer(text: str) -> None:
    assert parse_answer(text) == FoxBrainAnswer(answer=text.strip(), outside_text=text.strip())


def test_empty_reply() -> None:
    assert parse_answer("") == FoxBrainAnswer()


@pytest.mark.parametrize(
    ("reward", "expected"),
    [
        ("0.8", 0.8),
        ("0.80", 0.8),
        (".8", 0.8),
        (" 1 ", 1.0),
        ("8/10", 0.8),
        ("4.5 / 5", 0.9),
        ("80%", 0.8),
        ("０.８", 0.8),
        ("1.2", 1.2),
        ("-0.1", -0.1),
    ],
)
def test_reward_formats(reward: str, expected: float) -> None:
    [parsed] = parse_answer(f"<reward>{reward}</reward>").rewards
    assert parsed == pytest.approx(expected)


@pytest.mark.parametrize(
    "reward", ["good", "", "0.8 分", "1/0", "nan", "inf", "1e-1", "0.8.1", "9" * 5000]
)
def test_unreadable_rewards_are_skipped(reward: str) -> None:
    assert parse_answer(f"<reward>{reward}</reward><reward>0.5</reward>").rewards == (0.5,)


@pytest.mark.parametrize(
    ("count", "expected"),
    [("3", 3), (" 7 ", 7), ("３", 3), ("0", 0), ("-1", -1), ("three", None), ("9" * 5000, None)],
)
def test_count_formats(count: str, expected: int | None) -> None:
    reply = parse_answer(f"<count>{count}</count>")
    assert reply.budget == expected
    assert reply.counts == (() if expected is None else (expected,))


def test_budget_is_the_first_count_even_when_unreadable() -> None:
    reply = parse_answer("<count>[starting budget]</count><count>2</count>")
    assert (reply.budget, reply.counts) == (None, (2,))


def test_lone_surrogates_and_control_characters() -> None:
    reply = parse_answer("\ud800<step>\udfff\x00</step>\x1b<answer>\udbff")
    assert reply.steps == ("\udfff\x00",)
    assert (reply.answer, reply.outside_text, reply.truncated) == ("\udbff", "\ud800\n\x1b", True)


def test_huge_inputs() -> None:
    assert parse_answer("<step>" * 100_000).steps == ("",) * 100_000
    assert parse_answer("<" * 1_000_000).truncated is True
    assert parse_answer("台" * 1_000_000).answer == "台" * 1_000_000


def test_pretty_print_of_a_full_reply() -> None:
    text = TAIPEI.replace(
        "整理成使用者容易閱讀的回答。", "整理成使用者容易閱讀的回答：\n溫度與天況。"
    )
    assert str(parse_answer(text)) == (
        "=== 解析後的回應 ===\n"
        "🔢 步驟預算: 2\n"
        "\n"
        "📋 步驟:\n"
        "  1. 呼叫 get_weather 查詢台北天氣，結果：25°C，多雲。\n"
        "  2. 整理成使用者容易閱讀的回答：\n"
        "     溫度與天況。\n"
        "\n"
        "✅ 答案:\n"
        "  台北目前天氣多雲，氣溫約 25°C。\n"
        "\n"
        "🤔 反思:\n"
        "  1. 資料來自工具，可信。\n"
        "  2. 回答簡潔，涵蓋溫度與天況。\n"
        "\n"
        "⭐ 質量評分:\n"
        "  1. 0.8\n"
        "  2. 0.9"
    )


def test_pretty_print_skips_empty_sections() -> None:
    reply = parse_answer("<clarification>哪個城市？</clarification><reward>0.3</reward>")
    assert reply.pretty(title="回應") == (
        "=== 回應 ===\n\n❓ 澄清:\n  哪個城市？\n\n⭐ 質量評分:\n  0.3"
    )


def test_pretty_print_of_an_untagged_reply() -> None:
    assert str(parse_answer("台北晴。")) == (
        "=== 解析後的回應 ===\n回應中未找到結構化元素。\n\n✅ 答案:\n  台北晴。"
    )
    assert str(parse_answer("")) == "=== 解析後的回應 ===\n回應中未找到結構化元素。"


# --- properties -----------------------------------------------------------------------------

_ALL_CHARACTERS = st.characters(exclude_categories=())  # lone surrogates included
_MARKUP = st.sampled_from(
    [
        f"{opener}{slash}{name}{space}{closer}"
        for name in ("answer", "Answer", "clarification", "count", "reflection", "reward", "step")
        for slash in ("", "/")
        for opener, space, closer in (
            ("<", "", ">"),
            ("<", " ", ">"),
            ("<", "", ""),
            ("< ", "", ">"),
        )
    ]
    + ["<", ">", "</", "<div>", "List<int>", "a->b", "0.8", "３", "\n"]
)
_TAGGY_TEXT = st.lists(st.one_of(_MARKUP, st.text(_ALL_CHARACTERS, max_size=8)), max_size=30).map(
    "".join
)


def _check_invariants(text: str, reply: FoxBrainAnswer) -> None:
    """What holds for any input."""
    for part in (*reply.steps, *reply.reflections, *reply.answers):
        assert part in text
    if reply.answers:
        assert reply.answer in reply.answers
    else:
        assert reply.answer == ("" if reply.tagged else reply.outside_text)
    assert reply.budget is None or reply.budget == reply.counts[0]
    assert reply.tagged or not (reply.steps or reply.answers or reply.counts or reply.reflections)
    if reply.complete:
        assert reply.steps and reply.answers and reply.reflections and reply.tagged
    assert reply.final_text in (reply.answer, reply.clarification, reply.outside_text)
    str(reply)
    repr(reply)


@settings(max_examples=200, deadline=None)
@given(st.text(_ALL_CHARACTERS, max_size=200))
def test_any_text_never_raises(text: str) -> None:
    _check_invariants(text, parse_answer(text))


@settings(max_examples=200, deadline=None)
@given(_TAGGY_TEXT)
def test_tag_soup_never_raises(text: str) -> None:
    _check_invariants(text, parse_answer(text))


_CONTENT = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=12),
        st.sampled_from(["if a < b:", "<div>", "x<y", "a->b", "List<int>", "台北 25°C", "\n"]),
    ),
    max_size=4,
).map("".join)
_SEPARATOR = st.sampled_from(["", "\n", " ", "\n\n", "好的。\n"])


@st.composite
def _well_formed(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], list[tuple[int, int]]]:
    """A reply in the guide's shape: elements, their (name, content), and their spans."""
    budget = draw(st.integers(1, 9))
    parts: list[tuple[str, str]] = [("count", str(budget))]
    for remaining in range(budget - 1, budget - 1 - draw(st.integers(1, budget)), -1):
        parts += [("step", draw(_CONTENT)), ("count", str(remaining))]
    parts += [("reflection", draw(_CONTENT)), ("reward", "0.8")]
    parts += [("answer", draw(_CONTENT)), ("reflection", draw(_CONTENT)), ("reward", "0.9")]
    parts = [(name, content) for name, content in parts if not _ANY_TAG.search(content)]
    text, spans = "", []
    for name, content in parts:
        text += draw(_SEPARATOR)
        spans.append((len(text), len(text) + len(f"<{name}>{content}</{name}>")))
        text += f"<{name}>{content}</{name}>"
    return text, parts, spans


def _contents(parts: list[tuple[str, str]], name: str) -> tuple[str, ...]:
    return tuple(content.strip() for tag, content in parts if tag == name)


@settings(max_examples=200, deadline=None)
@given(_well_formed())
def test_well_formed_replies_parse_exactly(
    reply: tuple[str, list[tuple[str, str]], list[tuple[int, int]]],
) -> None:
    text, parts, _ = reply
    parsed = parse_answer(text)
    assert parsed.steps == _contents(parts, "step")
    assert parsed.reflections == _contents(parts, "reflection")
    assert parsed.answers == _contents(parts, "answer")
    assert parsed.rewards == (0.8, 0.9)
    assert parsed.counts == tuple(int(count) for count in _contents(parts, "count"))
    assert not _ANY_TAG.search(parsed.answer)
    assert parsed.truncated is False
    assert set(parsed.outside_text.split("\n")) <= {"", "好的。"}
    assert parsed.complete == bool(parsed.answers and parsed.steps and parsed.reflections)
    _check_invariants(text, parsed)


@settings(max_examples=200, deadline=None)
@given(_well_formed(), st.data())
def test_truncating_a_reply_at_any_point(
    reply: tuple[str, list[tuple[str, str]], list[tuple[int, int]]], data: st.DataObject
) -> None:
    text, _, spans = reply
    cut = data.draw(st.integers(0, len(text)))
    full, parsed = parse_answer(text), parse_answer(text[:cut])
    # Cut strictly inside an element (its tags included) means truncated; between them, not.
    assert parsed.truncated == any(start < cut < stop for start, stop in spans)
    if parsed.complete:
        assert full.complete
    # Everything before the cut parses as in the full reply; only the last part may be shorter.
    for mine, theirs in ((parsed.steps, full.steps), (parsed.answers, full.answers)):
        if mine:
            assert mine[:-1] == theirs[: len(mine) - 1]
            assert theirs[len(mine) - 1].startswith(mine[-1])
    assert parsed.counts == full.counts[: len(parsed.counts)]
    assert parsed.rewards == full.rewards[: len(parsed.rewards)]
    _check_invariants(text[:cut], parsed)


_MUTATIONS = st.sampled_from(["delete", "duplicate", "insert", "truncate", "upper"])


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([TRAINS, TAIPEI, GUIDE_TEMPLATE]), st.lists(_MUTATIONS, max_size=6), st.data()
)
def test_mutated_replies_never_raise(text: str, mutations: list[str], data: st.DataObject) -> None:
    for mutation in mutations:
        text = _mutate(text, mutation, data)
    _check_invariants(text, parse_answer(text))


def _mutate(text: str, mutation: str, data: st.DataObject) -> str:
    """Delete, duplicate or upper-case one tag, insert tag markup anywhere, or cut the text."""
    tags = list(_ANY_TAG.finditer(text))
    position = data.draw(st.integers(0, len(text)))
    if mutation == "truncate":
        return text[:position]
    if mutation == "insert":
        return text[:position] + data.draw(_MARKUP) + text[position:]
    if not tags:
        return text
    tag = tags[data.draw(st.integers(0, len(tags) - 1))]
    start, stop = tag.span()
    replacement = {"delete": "", "duplicate": tag[0] * 2, "upper": tag[0].upper()}[mutation]
    return text[:start] + replacement + text[stop:]
