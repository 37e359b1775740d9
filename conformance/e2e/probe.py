"""Ask a running vLLM (see serve.py) the tool-calling questions foxagent depends on.

Standard library only, so any Python runs it::

    python conformance/e2e/probe.py [--base-url http://127.0.0.1:8399/v1] [--start]

With ``--start`` it starts a server on a free port for the run and stops it afterwards. It prints
one JSON document: ``/v1/models``, ``/tokenize`` (chat form, with tools) and five chat completions
at temperature 0 with a ``get_weather`` and a ``calculator`` tool: tool_choice auto (plain and
streamed), "required", a named function, and no tools. Streams are shown chunk by chunk (only the
``choices`` part, plus ``usage`` when present), because the shape of the last chunks is part of
what is being checked.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MODEL = "smollm2-e2e"


def function_tool(name: str, description: str, parameter: str) -> dict[str, Any]:
    parameters = {
        "type": "object",
        "properties": {parameter: {"type": "string"}},
        "required": [parameter],
    }
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


TOOLS = [
    function_tool("get_weather", "Get the current weather in a city.", "location"),
    function_tool("calculator", "Evaluate an arithmetic expression.", "expression"),
]
WEATHER = [{"role": "user", "content": "What is the weather like in Paris today?"}]
SUM = [{"role": "user", "content": "What is 17 * 23? Use the calculator."}]
CALCULATOR = {"type": "function", "function": {"name": "calculator"}}
# Without "strict": true (or vLLM's --tool-strict-level parameter) required and named choices
# constrain only the call's envelope; the arguments may be any JSON object.
STRICT_TOOLS = [{**t, "function": {**t["function"], "strict": True}} for t in TOOLS]
CASES: dict[str, dict[str, Any]] = {
    "a_auto": {"messages": WEATHER, "tools": TOOLS, "tool_choice": "auto"},
    "b_auto_stream": {"messages": WEATHER, "tools": TOOLS, "tool_choice": "auto", "stream": True},
    "c_required": {"messages": WEATHER, "tools": TOOLS, "tool_choice": "required"},
    "c_required_strict": {"messages": WEATHER, "tools": STRICT_TOOLS, "tool_choice": "required"},
    "c_required_stream": {
        "messages": WEATHER,
        "tools": STRICT_TOOLS,
        "tool_choice": "required",
        "stream": True,
    },
    "d_named": {"messages": SUM, "tools": TOOLS, "tool_choice": CALCULATOR},
    "d_named_strict": {"messages": SUM, "tools": STRICT_TOOLS, "tool_choice": CALCULATOR},
    "d_named_stream": {
        "messages": SUM,
        "tools": STRICT_TOOLS,
        "tool_choice": CALCULATOR,
        "stream": True,
    },
    "e_no_tools": {"messages": [{"role": "user", "content": "Hello! Who are you?"}]},
}


def request(url: str, body: dict[str, Any] | None = None) -> urllib.request.Request:
    data = None if body is None else json.dumps(body).encode()
    return urllib.request.Request(url, data, {"Content-Type": "application/json"})


def call(url: str, body: dict[str, Any] | None = None) -> Any:
    with urllib.request.urlopen(request(url, body), timeout=300) as response:
        return json.load(response)


def events(url: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a server-sent event stream, up to ``data: [DONE]``."""
    with urllib.request.urlopen(request(url, body), timeout=300) as response:
        for raw in response:
            line = raw.decode().strip()
            if line == "data: [DONE]":
                return
            if line.startswith("data: "):
                yield json.loads(line[len("data: ") :])


def chat(base_url: str, case: dict[str, Any]) -> dict[str, Any]:
    body = {"model": MODEL, "temperature": 0, "max_tokens": 64, **case}
    started = time.monotonic()
    if not body.get("stream"):
        # vLLM's token ids, detokenized with special tokens, show the raw text the parser saw.
        response = call(f"{base_url}/chat/completions", body | {"return_token_ids": True})
        seconds = round(time.monotonic() - started, 2)
        response.pop("prompt_token_ids", None)
        ids = response["choices"][0].pop("token_ids")
        raw = call(f"{base_url.removesuffix('/v1')}/detokenize", {"model": MODEL, "tokens": ids})
        return {"seconds": seconds, "raw_output": raw["prompt"], "response": response}
    body["stream_options"] = {"include_usage": True}
    chunks = [
        {key: chunk[key] for key in ("choices", "usage") if chunk.get(key) is not None}
        for chunk in events(f"{base_url}/chat/completions", body)
    ]
    return {"seconds": round(time.monotonic() - started, 2), "chunks": chunks}


def probe(base_url: str) -> dict[str, Any]:
    root = base_url.removesuffix("/v1")
    tokenized = call(
        f"{root}/tokenize",
        {"model": MODEL, "messages": WEATHER, "tools": TOOLS, "return_token_strs": True},
    )
    strings = tokenized.pop("token_strs")
    tokenized |= {"tokens": tokenized["tokens"][:12], "first_token_strs": strings[:12]}
    report = {"models": call(f"{base_url}/models")["data"], "tokenize": tokenized}
    for name, case in CASES.items():
        report[name] = chat(base_url, case)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8399/v1")
    parser.add_argument("--start", action="store_true", help="start a server for this run")
    args = parser.parse_args()
    if not args.start:
        report = probe(args.base_url)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script
        from conformance.e2e.serve import running_server

        with running_server() as base_url:
            report = probe(base_url)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
