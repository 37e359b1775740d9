"""Record what a real vLLM says about the text its tool parser drops (issue 15, section 1).

Against a running server (serve.py)::

    python -m conformance.e2e.raw_text [--base-url http://127.0.0.1:8399/v1]

For each prompt it sends the same request twice, as foxagent's agent would: ``tool_choice:
"auto"`` with ``logprobs: true`` (the generated tokens), then ``tool_choice: "none"`` (the
re-ask: the raw text, same prompt, same ``seed``). Both exchanges go to
``tests/fixtures/vllm_e2e/raw-text.json``; ``tests/test_vllm_raw_text.py`` checks them: do the
joined tokens equal the re-asked text, and what did the parser keep of it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import urllib.request
from typing import Any

from conformance.e2e.probe import function_tool
from conformance.e2e.scenarios import FIXTURES
from conformance.e2e.serve import SERVED_MODEL_NAME, get_json

# (prompt, request fields). The first is where SmolLM2 wrote prose and then a JSON object
# the parser kept as a call, cut at max_tokens, with finish_reason "tool_calls".
PROMPTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("What is the weather in Taipei?", {"temperature": 0.6, "top_p": 0.9, "max_tokens": 120}),
    ("What is the weather in Taipei?", {}),
    ('Say: {"name": "get_weather", "parameters": {"city": "Paris"}}', {}),
    ("台北今天天氣如何？請用繁體中文回答。", {}),
    ("What is 17 * 23? Use the calculator.", {}),
)
TOOLS = [
    function_tool("get_weather", "Weather for a city", "city"),
    function_tool("calculator", "Evaluate an arithmetic expression", "expression"),
]


def _post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        base_url + "/chat/completions",
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8399/v1")
    args = parser.parse_args()
    pairs = []
    for prompt, fields in PROMPTS:
        body: dict[str, Any] = {
            "model": SERVED_MODEL_NAME,
            "messages": [{"role": "user", "content": prompt}],
            "tools": TOOLS[:1] if fields else TOOLS,
            "tool_choice": "auto",
            "max_tokens": 160,
            "temperature": 0.5,
            "seed": 42,
            "logprobs": True,
            **fields,
        }
        auto = _post(args.base_url, body)
        again = {**body, "tool_choice": "none"}
        del again["logprobs"]
        none = _post(args.base_url, again)
        pairs.append({"auto": {"request": body, "response": auto}})
        pairs[-1]["none"] = {"request": again, "response": none}
        print(prompt, "->", auto["choices"][0]["finish_reason"], auto["usage"], flush=True)
    root = args.base_url.removesuffix("/v1")
    document = {
        "vllm_version": get_json(f"{root}/version")["version"],
        "model": SERVED_MODEL_NAME,
        "recorded_on": dt.date.today().isoformat(),
        "pairs": pairs,
    }
    path = FIXTURES / "raw-text.json"
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
