"""``examples/service.py`` over real HTTP: uvicorn on 127.0.0.1 in a thread, talking to
FakeVLLMServer, with its SQLite sessions in a temporary folder."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from foxagent.testing import FakeVLLMServer, Reply

EXAMPLE = Path(__file__).parent.parent / "examples" / "service.py"
ANSWER = "<answer>台北 23°C</answer>"
CALC = '{"name": "calculator", "parameters": {"expression": "6 * 7"}}'
EMAIL = json.dumps(
    {"name": "send_email", "parameters": {"to": "a@b.tw", "subject": "hi", "body": "42"}}
)


def _load_example() -> Any:
    spec = importlib.util.spec_from_file_location("service_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["service_example"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def service(fake_server: FakeVLLMServer, tmp_path: Path) -> Iterator[httpx.Client]:
    app = _load_example().create_app(fake_server.base_url, str(tmp_path / "sessions.db"))
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def sse(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_chat_answers_and_keeps_the_conversation(
    service: httpx.Client, fake_server: FakeVLLMServer
) -> None:
    fake_server.add(CALC, ANSWER, "<answer>新竹 21°C</answer>")
    first = service.post("/chat/user-1", json={"question": "6 乘以 7？"}).json()
    assert first["answer"] == "台北 23°C" and first["pending"] == []
    assert [c["result"] for c in first["tool_calls"]] == ["42"]
    second = service.post("/chat/user-1", json={"question": "那新竹呢？"}).json()
    assert second["answer"] == "新竹 21°C"
    stored = service.get("/sessions/user-1").json()["messages"]
    assert [m["role"] for m in stored] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
    ]
    # The model saw the first exchange when asked the second question.
    sent = fake_server.requests[-1]["messages"]
    assert [m["role"] for m in sent][:5] == [m["role"] for m in stored[:5]]


def test_stream_sends_each_event_as_it_happens(
    service: httpx.Client, fake_server: FakeVLLMServer
) -> None:
    fake_server.add(CALC, ANSWER)
    response = service.post("/chat/user-2/stream", json={"question": "6*7?"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response)
    assert [kind for kind, _ in events] == [
        "step",
        "tool_call_detected",
        "tool_started",
        "tool_finished",
        "step",
        "text",
        "final_answer",
    ]
    assert events[3][1]["record"]["result"] == "42"
    assert events[-1][1]["answer"] == "台北 23°C"


def test_a_call_waits_for_approval_over_http(
    service: httpx.Client, fake_server: FakeVLLMServer
) -> None:
    fake_server.add(EMAIL, ANSWER)
    paused = service.post("/chat/user-3", json={"question": "寄信"}).json()
    assert paused["answer"] == "" and [p["name"] for p in paused["pending"]] == ["send_email"]
    call_id = paused["pending"][0]["id"]
    busy = service.post("/chat/user-3", json={"question": "再問"})
    assert busy.status_code == 409 and "waiting for approval" in busy.json()["detail"]
    assert service.get("/sessions/user-3").json()["pending"][0]["id"] == call_id
    decided = service.post(f"/sessions/user-3/approvals/{call_id}", json={"approve": True})
    assert decided.json() == {"call_id": call_id, "approved": True}
    resumed = service.post("/sessions/user-3/resume").json()
    assert resumed["answer"] == "台北 23°C"
    assert [c["status"] for c in resumed["tool_calls"]] == ["ok"]
    assert service.post("/sessions/user-3/resume").status_code == 404


def test_server_errors_come_back_typed(service: httpx.Client, fake_server: FakeVLLMServer) -> None:
    fake_server.add(Reply(status=400, text="context too long"))
    response = service.post("/chat/user-4", json={"question": "x"})
    assert response.status_code == 502
    assert response.json()["error"] == "ModelHTTPError"
    assert "context too long" in response.json()["detail"]
    fake_server.add(Reply(status=400, text="again"))
    events = sse(service.post("/chat/user-4/stream", json={"question": "y"}))
    assert events[-1][0] == "error" and events[-1][1]["error"] == "ModelHTTPError"
