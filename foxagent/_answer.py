"""Parse FoxBrain's tagged replies into a typed ``FoxBrainAnswer``.

FoxBrain's usage guide prompts the model to reason inside ``<count>``, ``<step>``,
``<reflection>`` and ``<reward>`` tags, give the final answer in ``<answer>``, or ask back in
``<clarification>``. ``parse_answer`` reads such a reply in one linear pass: a single
precompiled regex finds the known open and close tags, and a small state machine pairs them.
It never raises, whatever the input, and its cost is linear in the text and in the number of
tags (the regex has one bounded way to match at each ``<``; pairing looks each tag up once), so
a hostile flood of tags costs a few microseconds a tag (``benchmarks/bench_parsing.py``).

Budget: ``MAX_ANSWER_CHARS`` (1 MiB, about 180 ms of parsing). A FoxBrain reply is bounded by
its context (32k tokens is about 100 KB), so a longer one is not a reply worth splitting: it is
not scanned, and its ``answer`` says so, with the limit, instead of costing a thread for
seconds.

Semantics:

* **Tags.** Only ``count``, ``step``, ``reflection``, ``reward``, ``answer`` and
  ``clarification`` are tags, in any ASCII letter case (``<Answer>``, ``</ANSWER>``), with
  optional spaces or tabs before the ``>`` (``<answer >``). Anything else in angle brackets is
  text: ``<div>``, ``List<int>``, ``a->b``, ``x<y``, ``if a < b:``, and also ``< answer>`` (a
  space after ``<`` reads as a comparison, ``x < answer > y``) and tags with attributes.
* **No nesting.** Inside an element every other tag is literal text, so a step that quotes
  ``<answer>`` or holds a ``<reflection>`` keeps that markup in its text and adds no answer or
  reflection. An element ends at the next tag of its own name if that tag is a close tag.
* **Unclosed elements.** If the next tag of an element's own name is another open tag (or
  there is none) the close tag was forgotten: the element ends where the next known tag
  starts. An element still open at the end of the text runs to the end, and the reply is
  ``truncated`` (cut at ``max_tokens``). So is a reply ending in part of a tag (``...</ste``);
  that fragment is dropped.
* **Stray close tags** (a close tag with no open element) are dropped.
* **Numbers.** ``budget`` is the first ``<count>`` as an integer (``None`` when missing or not an
  integer); ``counts`` holds every integer count. ``rewards`` accepts decimals (``0.8``,
  ``.8``, ``1``), fractions (``8/10``) and percentages (``80%``), full-width digits included;
  other reward text is skipped. Values are kept as written, not clamped to 0.0-1.0: a reward of
  1.2 is the model's mistake for the caller to see. A number in an element cut off by
  truncation is skipped, since ``0.8`` cut to ``0.`` would read as 0.0.
* **Text.** Element texts and ``outside_text`` are stripped; ``outside_text`` joins the
  non-empty pieces of text between elements with newlines.
* **answer** is the last closed ``<answer>`` (a model that answers twice is revising itself),
  else the last unclosed one; ``""`` if a tagged reply has no ``<answer>``. A reply without any
  tag is a plain chat reply (the system prompt is optional): its stripped text is the answer.
* **complete** follows the guide's rule: ``<answer>``, ``<reflection>``, ``<step>`` and
  ``<count>`` each occur at least once, opened and closed. It is independent of
  ``truncated``: a reply cut inside its final ``<reward>`` is both.
* **final_text** is what to show a user, per the guide: the answer of a complete reply,
  else the clarification, else the answer, else the text outside the tags.

Where this differs from the guide's two parsers, and why:

* The guide's ``[^<]+`` patterns fail on any ``<`` in a step (code, math, HTML); here only the
  six known tags are markup.
* The guide never handles truncated output; here an open element runs to the end of the text
  and ``truncated`` says so.
* The guide matches tags case-sensitively and anywhere, even quoted inside another element;
  here case is ignored and quoted tags are text, so ``complete`` counts only real elements.
* The guide returns the first ``<answer>`` and the first reflection; here all are kept and
  ``answer`` is the last closed one.
* When the reply is incomplete and has no clarification the guide shows the whole raw reply;
  ``FoxBrainAnswer.final_text`` prefers a tagged answer, then the text outside the tags.
* The pretty printer shows every reflection and reward (numbered when there are several), a
  ``clarification`` section the guide's printer drops, and indents continuation lines.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple, TypeVar

from foxagent._slots import slot_builder

__all__ = ["MAX_ANSWER_CHARS", "FoxBrainAnswer", "parse_answer"]

MAX_ANSWER_CHARS: Final = 1_048_576

_TAG_NAMES: Final = ("answer", "clarification", "count", "reflection", "reward", "step")
_CORE_TAGS: Final = ("answer", "reflection", "step", "count")
_LOWER_NAMES: Final = frozenset(_TAG_NAMES)

# re.ASCII matters: with Unicode case folding "<ſtep>" (long s) would match "step".
_TAG_RE: Final = re.compile(rf"<(/?)({'|'.join(_TAG_NAMES)})[ \t]*>", re.ASCII | re.IGNORECASE)
# Digit runs are bounded so int() never meets its 4300-digit limit.
_INT_RE: Final = re.compile(r"[+-]?\d{1,18}", re.ASCII)
_DECIMAL: Final = r"[+-]?(?:\d{1,18}(?:\.\d{0,18})?|\.\d{1,18})"
_REWARD_RE: Final = re.compile(
    rf"(?P<value>{_DECIMAL})[ \t]*(?:(?P<percent>%)|/[ \t]*(?P<denominator>{_DECIMAL}))?",
    re.ASCII,
)
# FoxBrain writes Traditional Chinese, where full-width digits are common.
_FULL_WIDTH: Final = str.maketrans("０１２３４５６７８９．／％＋－", "0123456789./%+-")
# Longest tail worth checking for a cut-off tag: "</clarification" plus a few spaces.
_PARTIAL_TAG_WINDOW: Final = 24

_TITLE: Final = "解析後的回應"
_NO_STRUCTURE: Final = "回應中未找到結構化元素。"


class _State(Enum):
    CLOSED = "closed"  # ended by its own close tag
    UNCLOSED = "unclosed"  # close tag forgotten; ended where the next tag starts
    CUT = "cut"  # still open at the end of the text


_CLOSED: Final = _State.CLOSED
_UNCLOSED: Final = _State.UNCLOSED
_CUT: Final = _State.CUT


class _Element(NamedTuple):
    name: str
    text: str
    state: _State


@dataclass(frozen=True, kw_only=True, slots=True)
class FoxBrainAnswer:
    """A FoxBrain reply split into its tagged parts.

    Attributes:
        answer: The last closed ``<answer>`` text (else the last unclosed one); ``""`` when a
            tagged reply has no ``<answer>``; the whole stripped text when there are no tags.
        answers: Every ``<answer>`` text, in order.
        budget: The first ``<count>`` as an integer, or ``None``.
        counts: Every ``<count>`` that is an integer, in order.
        steps: Every ``<step>`` text, in order.
        reflections: Every ``<reflection>`` text, in order.
        rewards: Every ``<reward>`` that reads as a number, in order, not clamped.
        clarification: The last ``<clarification>`` text, or ``None`` when there is none.
        complete: ``<answer>``, ``<reflection>``, ``<step>`` and ``<count>`` all occur, closed.
        truncated: The reply ends inside an element or inside a tag.
        tagged: At least one known tag opened an element.
        outside_text: The text outside all elements, stripped, pieces joined by newlines.

    Example:
        >>> reply = parse_answer("<count>1</count><step>2+2</step><answer>4</answer>")
        >>> reply.answer, reply.budget, reply.steps, reply.complete
        ('4', 1, ('2+2',), False)
    """

    answer: str = ""
    answers: tuple[str, ...] = ()
    budget: int | None = None
    counts: tuple[int, ...] = ()
    steps: tuple[str, ...] = ()
    reflections: tuple[str, ...] = ()
    rewards: tuple[float, ...] = ()
    clarification: str | None = None
    complete: bool = False
    truncated: bool = False
    tagged: bool = False
    outside_text: str = ""

    @property
    def reward(self) -> float | None:
        """The last reward, usually the final self-evaluation; ``None`` if there is none."""
        return self.rewards[-1] if self.rewards else None

    @property
    def final_text(self) -> str:
        """What to show a user: the guide's choice, refined.

        The answer of a complete reply; else the clarification; else the answer (which is the
        whole text for an untagged reply); else the text outside the tags.
        """
        if self.complete:
            return self.answer
        if self.clarification is not None:
            return self.clarification
        return self.answer or self.outside_text

    def pretty(self, title: str = _TITLE) -> str:
        """Render the reply like the guide's ``display_parsed_response``, skipping empty parts.

        Args:
            title: The heading between ``===`` markers.

        Returns:
            The text, lines joined with ``"\\n"``, without a trailing newline.
        """
        lines = [f"=== {title} ==="]
        if not self.tagged:
            lines.append(_NO_STRUCTURE)
        if self.budget is not None:
            lines.append(f"🔢 步驟預算: {self.budget}")
        _add_section(lines, "📋 步驟:", self.steps, numbered=True)
        _add_section(lines, "✅ 答案:", (self.answer,) if self.answer else ())
        clarification = () if self.clarification is None else (self.clarification,)
        _add_section(lines, "❓ 澄清:", clarification)
        _add_section(lines, "🤔 反思:", self.reflections)
        _add_section(lines, "⭐ 質量評分:", tuple(str(reward) for reward in self.rewards))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.pretty()


def parse_answer(text: str) -> FoxBrainAnswer:
    """Split a FoxBrain reply into its tagged parts; never raises.

    Args:
        text: The model's reply, as generated (possibly cut off at ``max_tokens``).

    Returns:
        The parsed reply; see the module docstring for the exact rules.

    Example:
        >>> parse_answer("台北今天晴。").answer
        '台北今天晴。'
        >>> parse_answer("<step>if a < b: swap</step><answer>完成").truncated
        True
    """
    if len(text) > MAX_ANSWER_CHARS:
        return FoxBrainAnswer(
            answer=f"[foxagent: the reply is {len(text):,} characters, longer than "
            f"MAX_ANSWER_CHARS ({MAX_ANSWER_CHARS:,}); it was not parsed]",
            truncated=True,
        )
    # A reply ending in ">" cannot end inside a tag (the usual "...</reward>").
    end = len(text) if text[-1:] == ">" else _partial_tag_start(text)
    if end == len(text) and (fast := _parse_paired(text)) is not None:
        return fast
    return _parse_scanned(text, end)


def _parse_paired(text: str) -> FoxBrainAnswer | None:
    """The common reply, every element closed by its own tag right after it opened (all in
    lower case, nothing quoted inside): the same result as `_parse_scanned` from one
    ``re.split`` in C; ``None`` for any other reply (and for one without tags), which then
    takes the general path."""
    parts = _PAIR_RE.split(text)
    # Text, tag, text, tag, ..., text: a pair of tags is four parts, the element's text the
    # one between them.
    if len(parts) == 1 or (len(parts) - 1) % 4:
        return None
    tags = parts[1::2]
    key = " ".join(tags)
    try:
        plan = _PLANS[key]
    except KeyError:
        plan = _new_plan(key, tags)
    if plan is None:
        return None
    (
        pick,
        answers_at,
        counts_at,
        steps_at,
        reflections_at,
        rewards_at,
        clarifications_at,
        complete,
    ) = plan
    bodies = tuple(map(str.strip, pick(parts)))
    answers = bodies[answers_at]
    try:  # the usual numbers ("3", "0.9"), each one read before
        counts = tuple(map(_COUNT_OF, bodies[counts_at]))
        rewards = tuple(map(_REWARD_OF, bodies[rewards_at]))
        budget = counts[0] if counts else None
    except KeyError:
        budget, counts, rewards = _numbers(bodies[counts_at], bodies[rewards_at])
    clarifications = bodies[clarifications_at]
    outside = parts[::4]  # usually only the line breaks between elements
    # FoxBrainAnswer(...) by slot_builder, fields in order: about 0.3 µs less per parse.
    return _BUILD_ANSWER(
        answers[-1] if answers else "",  # answer
        answers,
        budget,
        counts,
        bodies[steps_at],  # steps
        bodies[reflections_at],  # reflections
        rewards,
        clarifications[-1] if clarifications else None,  # clarification
        complete,
        False,  # truncated
        True,  # tagged
        _outside_text(outside) if "".join(outside).strip() else "",  # outside_text
    )


# A tag as one group ("step" or "/step"): `_TAG_RE`'s matches, split into half the parts.
_PAIR_RE: Final = re.compile(rf"<(/?(?:{'|'.join(_TAG_NAMES)}))[ \t]*>", re.ASCII | re.IGNORECASE)
# Plans by tag sequence: replies to one system prompt share a handful of shapes. The cache is
# bounded in entries and in key length, so no reply can make it grow.
_PLANS: Final[dict[str, _Plan | None]] = {}  # by the tags joined with spaces
_PLANS_KEPT: Final = 256
_PLAN_TAGS: Final = 64


class _Plan(NamedTuple):
    """How the element texts of one tag sequence group into `FoxBrainAnswer`'s fields.

    ``pick`` takes the parts of a `_PAIR_RE` split to the texts of every element ordered by
    field (answers, counts, steps, reflections, rewards, clarifications; in reply order within
    each), and each slice is one field's share of them.
    """

    pick: Callable[[list[str]], tuple[str, ...]]
    answers: slice
    counts: slice
    steps: slice
    reflections: slice
    rewards: slice
    clarifications: slice
    complete: bool


_FIELD_ORDER: Final = ("answer", "count", "step", "reflection", "reward", "clarification")


def _new_plan(key: str, tags: list[str]) -> _Plan | None:
    """`_plan` of ``tags``, kept under ``key`` unless the sequence is too long to keep."""
    plan = _plan(tags)
    if len(tags) <= _PLAN_TAGS:
        if len(_PLANS) >= _PLANS_KEPT:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


def _plan(tags: list[str]) -> _Plan | None:
    """The plan of a sequence of tags, or ``None`` unless each element is opened by a
    lower-case tag and closed by its own close tag right after."""
    opens, closes = tags[::2], tags[1::2]
    if not _LOWER_NAMES.issuperset(opens) or any(
        close != "/" + name for name, close in zip(opens, closes, strict=True)
    ):
        return None
    positions: dict[str, list[int]] = {name: [] for name in _FIELD_ORDER}
    for element, name in enumerate(opens):
        positions[name].append(2 + 4 * element)  # the part after the element's open tag
    order = [position for name in _FIELD_ORDER for position in positions[name]]
    bounds = list(itertools.accumulate((len(positions[name]) for name in _FIELD_ORDER), initial=0))
    answers, counts, steps, reflections, rewards, clarifications = map(
        slice, bounds[:-1], bounds[1:]
    )
    return _Plan(
        pick=_picker(order),
        answers=answers,
        counts=counts,
        steps=steps,
        reflections=reflections,
        rewards=rewards,
        clarifications=clarifications,
        complete=_CORE_NAMES.issubset(opens),
    )


def _picker(positions: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """``parts`` → the tuple of ``parts[i]`` for each position (``itemgetter`` in C, which
    returns a bare item for a single position)."""
    if len(positions) == 1:
        (position,) = positions
        return lambda parts: (parts[position],)
    return operator.itemgetter(*positions)


_CORE_NAMES: Final = frozenset(_CORE_TAGS)


_BUILD_ANSWER: Final = slot_builder(FoxBrainAnswer)


def _outside_text(pieces: list[str]) -> str:
    """The non-empty stripped ``pieces`` joined by newlines."""
    return "\n".join([piece for piece in map(str.strip, pieces) if piece])


def _parse_scanned(text: str, end: int) -> FoxBrainAnswer:
    """`parse_answer` for any reply: the tags paired by `_scan`."""
    elements, outside = _scan(text, end)
    outside_text = "\n".join(outside)
    groups: dict[str, list[_Element]] = {name: [] for name in _TAG_NAMES}
    for element in elements:
        groups[element.name].append(element)
    counts = [_parse_count(element) for element in groups["count"]]
    answer = _pick_text(groups["answer"])
    if answer is None:
        # An untagged reply is a plain chat reply (no system prompt): all of it is the answer.
        answer = "" if elements else outside_text
    # Only the last element can run into the end of the text.
    cut_off = bool(elements) and elements[-1].state is _State.CUT
    return FoxBrainAnswer(
        answer=answer,
        answers=tuple(element.text for element in groups["answer"]),
        budget=counts[0] if counts else None,
        counts=tuple(count for count in counts if count is not None),
        steps=tuple(element.text for element in groups["step"]),
        reflections=tuple(element.text for element in groups["reflection"]),
        rewards=_parse_rewards(groups["reward"]),
        clarification=_pick_text(groups["clarification"]),
        complete=all(_has_closed(groups[name]) for name in _CORE_TAGS),
        truncated=cut_off or end < len(text),
        tagged=bool(elements),
        outside_text=outside_text,
    )


def _partial_tag_start(text: str) -> int:
    """Where a tag cut off at the very end of ``text`` starts (``len(text)`` if none).

    ``<``, ``</ste`` and ``<answer`` count (the start of a known tag without its ``>``);
    ``<ans `` does not, since a space can only follow a complete tag name.
    """
    start = text.rfind("<", max(0, len(text) - _PARTIAL_TAG_WINDOW))
    if start < 0 or ">" in text[start:]:  # nothing, or a whole tag (or text) after the last "<"
        return len(text)
    tail = text[start + 1 :].removeprefix("/")
    name = tail.rstrip(" \t").lower()
    if not name.isascii() or (len(name) < len(tail) and name not in _TAG_NAMES):
        return len(text)
    if any(known.startswith(name) for known in _TAG_NAMES):
        return start
    return len(text)


def _scan(text: str, end: int) -> tuple[list[_Element], list[str]]:
    """Pair the tags in ``text[:end]`` into elements; also return the stripped, non-empty
    pieces of text between them.

    One pass over the tags, kept as flat lists of positions (not match objects), so a reply of
    thousands of tags costs a few microseconds per tag.
    """
    starts: list[int] = []
    ends: list[int] = []
    closing: list[bool] = []
    names: list[str] = []
    for tag in _TAG_RE.finditer(text, 0, end):
        starts.append(tag.start())
        ends.append(tag.end())
        closing.append(bool(tag[1]))
        names.append(tag[2].lower())
    partners = _next_same_name(names)
    count = len(starts)
    elements: list[_Element] = []
    outside: list[str] = []
    cursor = index = 0
    while index < count:
        piece = text[cursor : starts[index]].strip()
        if piece:
            outside.append(piece)
        if closing[index]:  # a close tag with nothing open is stray: drop the markup
            cursor, index = ends[index], index + 1
            continue
        partner = partners[index]
        if partner >= 0 and closing[partner]:
            stop, cursor, state, following = starts[partner], ends[partner], _CLOSED, partner + 1
        elif index + 1 < count:
            # Another tag follows but never this one's close: the model forgot it.
            stop = cursor = starts[index + 1]
            state, following = _UNCLOSED, index + 1
        else:
            stop = cursor = end
            state, following = _CUT, count
        elements.append(_Element(names[index], text[ends[index] : stop].strip(), state))
        index = following
    piece = text[cursor:end].strip()
    if piece:
        outside.append(piece)
    return elements, outside


def _next_same_name(names: list[str]) -> list[int]:
    """For each tag, the index of the next tag with the same name, or -1."""
    following = [-1] * len(names)
    seen: dict[str, int] = {}
    for index in range(len(names) - 1, -1, -1):
        following[index] = seen.get(names[index], -1)
        seen[names[index]] = index
    return following


def _pick_text(elements: list[_Element]) -> str | None:
    """The last closed element's text, else the last element's, else ``None``."""
    for element in reversed(elements):
        if element.state is _State.CLOSED:
            return element.text
    return elements[-1].text if elements else None


def _has_closed(elements: list[_Element]) -> bool:
    return any(element.state is _State.CLOSED for element in elements)


def _parse_count(element: _Element) -> int | None:
    if element.state is _State.CUT:  # "12" cut to "1" would mislead
        return None
    return _count(element.text)


def _count(text: str) -> int | None:
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)  # the usual "3": what _INT_RE would accept, read the same
    text = text.translate(_FULL_WIDTH) if not text.isascii() else text
    return int(text) if _INT_RE.fullmatch(text) else None


def _parse_rewards(elements: list[_Element]) -> tuple[float, ...]:
    rewards = (_parse_reward(element) for element in elements if element.state is not _State.CUT)
    return tuple(reward for reward in rewards if reward is not None)


def _parse_reward(element: _Element) -> float | None:
    """``0.8``, ``.8``, ``8/10`` or ``80%`` as a float; ``None`` for anything else."""
    return _reward(element.text)


def _reward(text: str) -> float | None:
    head, _, tail = text.partition(".")
    if (
        text.isascii()
        and (head.isdigit() or (not head and tail))
        and (not tail or tail.isdigit())
        and len(head) <= 18
        and len(tail) <= 18
    ):
        return float(text)  # the usual "0.9": what _REWARD_RE would accept, read the same
    match = _REWARD_RE.fullmatch(text.translate(_FULL_WIDTH) if not text.isascii() else text)
    if match is None:
        return None
    value = float(match["value"])
    if match["percent"]:
        return value / 100
    if match["denominator"] is None:
        return value
    denominator = float(match["denominator"])
    return value / denominator if denominator else None


def _numbers(
    count_texts: tuple[str, ...], reward_texts: tuple[str, ...]
) -> tuple[int | None, tuple[int, ...], tuple[float, ...]]:
    """``budget``, ``counts`` and ``rewards`` from the texts of the closed ``<count>`` and
    ``<reward>`` elements, each read anew (and remembered when short)."""
    counted = [_count(text) for text in count_texts]
    rewards = [_reward(text) for text in reward_texts]
    _learn(_KNOWN_COUNTS, count_texts, counted)
    _learn(_KNOWN_REWARDS, reward_texts, rewards)
    return (
        counted[0] if counted else None,
        tuple([count for count in counted if count is not None]),
        tuple([reward for reward in rewards if reward is not None]),
    )


_NumberT = TypeVar("_NumberT", int, float)


def _learn(
    known: dict[str, _NumberT], texts: tuple[str, ...], values: list[_NumberT | None]
) -> None:
    """Remember the short texts that read as numbers (bounded: cleared when full)."""
    if len(known) >= _KNOWN_KEPT:
        known.clear()
    for text, value in zip(texts, values, strict=True):
        if value is not None and len(text) <= _KNOWN_CHARS:
            known[text] = value


# Texts of counts and rewards that read as numbers ("1", "0.9"): they repeat from reply to
# reply, so each is read once. Bounded in entries and in key length.
_KNOWN_COUNTS: Final[dict[str, int]] = {}
_KNOWN_REWARDS: Final[dict[str, float]] = {}
_COUNT_OF: Final = _KNOWN_COUNTS.__getitem__
_REWARD_OF: Final = _KNOWN_REWARDS.__getitem__
_KNOWN_KEPT: Final = 256
_KNOWN_CHARS: Final = 24


def _add_section(
    lines: list[str], heading: str, items: tuple[str, ...], *, numbered: bool = False
) -> None:
    """Append a blank line, ``heading`` and the items, as the guide's printer lays them out.

    Items are numbered when ``numbered`` or when there are several; continuation lines of a
    multi-line item are indented under its first line.
    """
    if not items:
        return
    lines += ("", heading)
    for number, item in enumerate(items, 1):
        prefix = f"  {number}. " if numbered or len(items) > 1 else "  "
        lines.append(prefix + item.replace("\n", "\n" + " " * len(prefix)))
