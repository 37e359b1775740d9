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
