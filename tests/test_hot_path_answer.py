"""`parse_answer`'s fast path for well-paired replies gives what the general path gives."""

from __future__ import annotations

import random

import pytest

from foxagent import _answer
from foxagent._answer import parse_answer

PIECES = [
    "<count>3</count>",
    "<step>比較 a < b</step>",
    "<reflection>好。</reflection>",
    "<reward>0.8</reward>",
    "<reward>８０％</reward>",
    "<reward>7/10</reward>",
    "<answer>台北 23°C。</answer>",
    "<clarification>哪個城市？</clarification>",
    "<Answer>upper</ANSWER>",
    "<step >spaced</step >",
    "<step>quoted <answer>x</answer> inside</step>",
    "<count>一</count>",
    "<step>open",
    "</step>",
    "<answer>",
    "\n",
    "  text  ",
    "x<y",
    "<div>",
    "</ste",
    "<",
]


def test_well_paired_replies_take_the_fast_path() -> None:
    reply = "<count>1</count>\n<step>s</step><answer>a</answer><reward>0.9</reward>"
    fast = _answer._parse_paired(reply)
    assert fast is not None
    assert fast == _answer._parse_scanned(reply, len(reply))


@pytest.mark.parametrize("seed", range(20))
def test_fast_and_general_paths_agree(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
        general = _answer._parse_scanned(text, _answer._partial_tag_start(text))
        assert parse_answer(text) == general, text
        fast = _answer._parse_paired(text)
        if fast is not None and _answer._partial_tag_start(text) == len(text):
            assert fast == general, text


def _general(text: str) -> _answer.FoxBrainAnswer:
    return _answer._parse_scanned(text, _answer._partial_tag_start(text))


def test_a_known_shape_with_new_texts_reads_them_anew() -> None:
    """The plan of a tag sequence is kept, the texts and numbers of each reply are its own."""
    shape = "<count>{}</count>\n<step>{}</step>\n<answer>{}</answer>\n<reward>{}</reward>"
    replies = [
        shape.format("2", "甲", "一", "0.9"),
        shape.format("２", " 乙 ", "二", "８０％"),
        shape.format("two", "丙", "", "7/10"),
        shape.format("", "", "三", "high"),
        shape.format("2", "甲", "一", "0.9"),
    ]
    for reply in replies:
        fast = _answer._parse_paired(reply)
        assert fast is not None
        assert fast == _general(reply) == parse_answer(reply), reply


def test_numbers_read_before_and_new_ones_mixed_in_one_reply() -> None:
    parse_answer("<count>1</count><reward>0.5</reward>")  # both known from now on
    reply = (
        "<count>1</count><count>x</count><count>7</count><reward>0.5</reward><reward>.25</reward>"
    )
    assert parse_answer(reply) == _general(reply)
    assert parse_answer(reply).counts == (1, 7)
    assert parse_answer(reply).rewards == (0.5, 0.25)


def test_a_long_tag_sequence_is_parsed_without_being_kept() -> None:
    reply = "".join(f"<step>{n}</step>" for n in range(_answer._PLAN_TAGS)) + "<answer>a</answer>"
    before = dict(_answer._PLANS)
    assert parse_answer(reply) == _general(reply)
    assert " ".join(_answer._PAIR_RE.split(reply)[1::2]) not in _answer._PLANS
    assert len(_answer._PLANS) <= max(len(before), _answer._PLANS_KEPT)


def test_the_caches_stay_bounded_whatever_the_replies() -> None:
    for n in range(_answer._PLANS_KEPT + 50):
        steps = "<step>s</step>" * (n % 30)
        counts = "<count>c</count>" * (n // 30)
        reply = f"{steps}{counts}<reward>{n}.{n}</reward><count>{n}</count>"
        assert parse_answer(reply) == _general(reply)
    assert len(_answer._PLANS) <= _answer._PLANS_KEPT
    assert len(_answer._KNOWN_COUNTS) <= _answer._KNOWN_KEPT
    assert len(_answer._KNOWN_REWARDS) <= _answer._KNOWN_KEPT


def test_an_unpaired_shape_is_remembered_as_such() -> None:
    reply = "<step>a</answer><answer>b</step>"
    assert _answer._parse_paired(reply) is None
    assert _answer._parse_paired(reply) is None  # the second time from the kept plan
    assert parse_answer(reply) == _general(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "<answer>a</answer>",  # one element: a picker of one
        "<clarification>哪裡？</clarification>",
        "<count>3</count><step>s</step><reflection>r</reflection><answer>a</answer>",
        "  前言  <answer>a</answer>  後記 ",
        "<answer>a</answer>\u3000",  # full-width space: str.strip's whitespace
    ],
)
def test_single_and_outside_text_replies(reply: str) -> None:
    assert _answer._parse_paired(reply) == _general(reply)
