"""``foxagent doctor``: check a FoxBrain server the way a user needs before a demo.

Each check gives a finding and, when it fails, the fix:

1. reachable, and the API key accepted (``GET /models``);
2. which model is served, and its ``max_model_len`` (the guide runs 32768);
3. auto tool choice with a tool parser is on: a tiny probe with one tool; a 400 saying
   ``"auto" tool choice requires --enable-auto-tool-choice`` means it is off;
4. the chat template is foxagent's: the probe prompt is rendered through vLLM's ``/tokenize``
   (when the server has it) and searched for the line foxagent's template writes;
5. with ``--strict``: whether ``"strict": true`` tools are honoured. vLLM 0.32+ constrains a
   strict tool's arguments to its schema, but the constraint can silently not apply or fail
   with a 500 (vLLM #53745). The probe forces a call to a tool whose one argument is an enum
   and asks for a value outside it: honoured, the arguments keep to the schema. foxagent
   validates arguments either way; this tells whether ``strict_tools`` buys anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from foxagent.cli._backend import connect_problem

__all__ = ["Finding", "run_checks"]

_PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "ping",
        "description": "Answer pong. Call it whenever the user asks for a ping.",
        "parameters": {"type": "object", "properties": {}},
    },
}
_PROBE_MESSAGES = [{"role": "user", "content": "Call the ping tool now."}]
# Every Llama 3.1 tool template writes the first; only foxagent's writes the second (its
# instruction that a call is bare JSON, which FoxBrain's tag-asking system prompt would override).
_LLAMA_MARK = "Environment: ipython"
_FOXAGENT_MARK = "reply with only the JSON for the call: no tags, no other text"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One check's outcome."""

    check: str
    ok: bool | None  # None: could not be checked
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {True: "✓", False: "✗", None: "?"}[self.ok]
        text = f"{mark} {self.check}: {self.detail}"
        return f"{text}\n    fix: {self.fix}" if self.fix and self.ok is not True else text


async def run_checks(
    base_url: str, api_key: str | None, timeout: float = 30.0, *, strict: bool = False
) -> list[Finding]:
    """Run every check against the server at ``base_url`` (its ``/v1`` URL); ``strict`` adds
    the strict-tools probe."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    client_timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
    async with aiohttp.ClientSession(headers=headers, timeout=client_timeout) as session:
        reach, card = await _check_reachable(session, base_url)
        if card is None:
            return [reach]
        findings = [reach, _check_model(card)]
        model = str(card.get("id"))
        findings.append(await _check_tools(session, base_url, model))
        findings.append(await _check_template(session, base_url, model))
        if strict:
            findings.append(await _check_strict(session, base_url, model))
        return findings


async def _get_json(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    async with session.request(method, url, json=body) as response:
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def _check_reachable(
    session: aiohttp.ClientSession, base_url: str
) -> tuple[Finding, dict[str, Any] | None]:
    check = "server reachable"
    try:
        status, data = await _get_json(session, "GET", f"{base_url}/models")
    except (aiohttp.ClientError, TimeoutError) as error:
        fix = f"start vLLM (`foxagent serve MODEL_PATH`) or point --base-url at it ({base_url})"
        problem = connect_problem(base_url) or type(error).__name__
        detail = f"cannot connect to {base_url}: {problem}"
        return Finding(check=check, ok=False, detail=detail, fix=fix), None
    if status == 404 and not base_url.rstrip("/").endswith("/v1"):
        detail = f"HTTP 404 at {base_url}/models: no OpenAI API at that path"
        fix = f"the base URL must end in /v1, where vLLM serves it: --base-url {base_url}/v1"
        return Finding(check=check, ok=False, detail=detail, fix=fix), None
    if status in (401, 403):
        fix = "pass the server's --api-key as --api-key or FOXAGENT_API_KEY"
        return Finding(check=check, ok=False, detail=f"HTTP {status}: key refused", fix=fix), None
    try:
        card = data["data"][0]
    except (KeyError, IndexError, TypeError):
        detail = f"HTTP {status}, /models lists no model"
        fix = "is this a vLLM (OpenAI-compatible) server?"
        return Finding(check=check, ok=False, detail=detail, fix=fix), None
    return Finding(check=check, ok=True, detail=f"{base_url} answers"), card


def _check_model(card: dict[str, Any]) -> Finding:
    length = card.get("max_model_len")
    detail = f"serving '{card.get('id')}', max_model_len={length}"
    if isinstance(length, int) and length < 32768:
        fix = "restart with --max-model-len 32768, as the guide does (long tool results get cut)"
        return Finding(check="model", ok=False, detail=detail, fix=fix)
    return Finding(check="model", ok=True, detail=detail)


async def _check_tools(session: aiohttp.ClientSession, base_url: str, model: str) -> Finding:
    check = "auto tool choice (llama3_json parser)"
    body = {
        "model": model,
        "messages": _PROBE_MESSAGES,
        "tools": [_PROBE_TOOL],
        "tool_choice": "auto",
        "max_tokens": 64,
        "temperature": 0,
    }
    try:
        status, data = await _get_json(session, "POST", f"{base_url}/chat/completions", body)
    except (aiohttp.ClientError, TimeoutError) as error:
        return Finding(check=check, ok=None, detail=f"probe failed: {type(error).__name__}")
    if status == 400 and "enable-auto-tool-choice" in json.dumps(data):
        fix = "restart vLLM with --enable-auto-tool-choice --tool-call-parser llama3_json"
        return Finding(check=check, ok=False, detail="off: the server refuses tools", fix=fix)
    if status != 200:
        return Finding(check=check, ok=None, detail=f"probe answered HTTP {status}: {data}")
    message = (data.get("choices") or [{}])[0].get("message") or {}
    if message.get("tool_calls"):
        name = message["tool_calls"][0]["function"]["name"]
        return Finding(check=check, ok=True, detail=f"on: the probe came back as a call to {name}")
    detail = "on (the server accepted tools), but the model answered in text"
    return Finding(check=check, ok=True, detail=detail)


async def _check_template(session: aiohttp.ClientSession, base_url: str, model: str) -> Finding:
    check = "chat template"
    root = base_url.removesuffix("/v1")
    body: dict[str, Any] = {"model": model, "messages": _PROBE_MESSAGES, "tools": [_PROBE_TOOL]}
    body["return_token_strs"] = True
    try:
        status, data = await _get_json(session, "POST", f"{root}/tokenize", body)
    except (aiohttp.ClientError, TimeoutError):
        status, data = 0, None
    if status != 200 or not isinstance(data, dict) or "token_strs" not in data:
        detail = "not checked: the server has no /tokenize that returns token strings"
        return Finding(check=check, ok=None, detail=detail)
    prompt = "".join(str(piece) for piece in data.get("token_strs") or ())
    prompt = prompt.replace("Ġ", " ").replace("Ċ", "\n")  # byte-level BPE token spellings
    if _FOXAGENT_MARK in prompt:
        return Finding(check=check, ok=True, detail="foxagent's Llama 3.1 template is in use")
    fix = "restart vLLM with --chat-template $(foxagent template path)"
    if _LLAMA_MARK in prompt:
        detail = "a Llama 3.1 tool template, not foxagent's (FoxBrain's tags may hide calls)"
        return Finding(check=check, ok=False, detail=detail, fix=fix)
    return Finding(check=check, ok=False, detail="tools are not rendered Llama 3.1 style", fix=fix)


_STRICT_TOOL = {
    "type": "function",
    "function": {
        "name": "paint",
        "description": "Paint the wall in one of the allowed colours.",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"colour": {"type": "string", "enum": ["red", "green"]}},
            "required": ["colour"],
            "additionalProperties": False,
        },
    },
}
_STRICT_MESSAGES = [{"role": "user", "content": "Paint the wall purple. Use colour 'purple'."}]


async def _check_strict(session: aiohttp.ClientSession, base_url: str, model: str) -> Finding:
    check = "strict tools"
    body = {
        "model": model,
        "messages": _STRICT_MESSAGES,
        "tools": [_STRICT_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "paint"}},
        "max_tokens": 64,
        "temperature": 0,
    }
    fix = "leave ModelSettings.strict_tools off on this server (foxagent validates anyway)"
    try:
        status, data = await _get_json(session, "POST", f"{base_url}/chat/completions", body)
    except (aiohttp.ClientError, TimeoutError) as error:
        return Finding(check=check, ok=None, detail=f"probe failed: {type(error).__name__}")
    if status >= 500:
        detail = f"a strict tool made the server fail (HTTP {status}; vLLM #53745)"
        return Finding(check=check, ok=False, detail=detail, fix=fix)
    if status != 200:
        return Finding(check=check, ok=None, detail=f"probe answered HTTP {status}: {data}")
    message = (data.get("choices") or [{}])[0].get("message") or {}
    calls = message.get("tool_calls") or []
    if not calls:
        return Finding(check=check, ok=None, detail="the forced probe came back without a call")
    try:
        arguments = json.loads(calls[0]["function"]["arguments"])
    except (KeyError, TypeError, ValueError):
        arguments = None
    if isinstance(arguments, dict) and set(arguments) == {"colour"}:
        if arguments["colour"] in ("red", "green"):
            detail = f"honoured: asked for purple, the arguments kept to the enum ({arguments})"
            return Finding(check=check, ok=True, detail=detail)
    detail = f"ignored: the arguments broke the tool's schema ({calls[0]['function']})"
    return Finding(check=check, ok=False, detail=detail, fix=fix)
