"""Time `parse_answer` on typical FoxBrain replies.

Run from the repo root::

    python -m benchmarks.bench_answer

For each reply it prints the median microseconds per parse over repeated runs, and the median of
``re.findall`` of the tag pattern over the same text as an in-process baseline (the ratio shows the
cost of pairing tags and building the result, independent of how fast this machine is).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable

from foxagent._answer import parse_answer

SHORT = """<count>1</count>
<step>查詢台北天氣：25°C，多雲。</step>
<reflection>資料來自工具，可信。</reflection>
<reward>0.9</reward>
<answer>台北今天 25°C，多雲。</answer>
<reflection>回答直接。</reflection>
<reward>0.9</reward>"""

# Issue 18's reply (332 bytes, parse_answer ≤ 5 µs): two counted steps, a reflection and a reward,
# the answer, the closing reflection and reward, in Traditional Chinese.
TYPICAL = """<count>2</count>
<step>查詢台北天氣：工具回報 23°C，多雲。</step>
<count>1</count>
<step>整理成簡短的回答。</step>
<reflection>資料來自工具，可信。</reflection>
<reward>0.8</reward>
<answer>台北現在 23°C，多雲。</answer>
<reflection>回答簡潔正確。</reflection>
<reward>0.9</reward>"""

_STEP = (
    "<count>{n}</count>\n<step>比較 a 與 b：若 a < b 則交換，"
    "程式碼 `if a < b: a, b = b, a`，型別 List<int>，x<y 且 a->b。</step>\n"
)
LONG = (
    "".join(_STEP.format(n=n) for n in range(9, 0, -1))
    + "<reflection>步驟完整，但可以更簡潔。</reflection>\n<reward>0.8</reward>\n"
    + "<answer>"
    + "兩列火車相對速度為 200 公里/小時，500 / 200 = 2.5，所以需要 2.5 小時。" * 18
    + "</answer>\n<reflection>計算正確。</reflection>\n<reward>0.9</reward>"
)
PLAIN = "台北今天天氣晴朗，氣溫約 25°C，午後可能有短暫陣雨，出門記得帶傘。" * 20

_TAGS = re.compile(r"</?(?:answer|clarification|count|reflection|reward|step)[ \t]*>", re.I)


def median_us(function: Callable[[str], object], text: str, *, runs: int = 31) -> float:
    """Median microseconds per call of ``function(text)``, each run timing a batch of calls."""
    batch = 200
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(batch):
            function(text)
        samples.append((time.perf_counter() - start) / batch * 1e6)
    return statistics.median(samples)


def main() -> None:
    """Print one line per reply: size, parse time, findall baseline, ratio."""
    print(f"{'reply':<8}{'chars':>7}{'bytes':>7}{'parse µs':>11}{'findall µs':>12}{'ratio':>7}")
    for name, text in (("short", SHORT), ("typical", TYPICAL), ("3 KB", LONG), ("no tags", PLAIN)):
        parse = median_us(parse_answer, text)
        baseline = median_us(_TAGS.findall, text)
        size = len(text.encode())
        ratio = parse / baseline
        print(f"{name:<8}{len(text):>7}{size:>7}{parse:>11.1f}{baseline:>12.1f}{ratio:>7.1f}")


if __name__ == "__main__":
    main()
