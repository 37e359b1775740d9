"""A small FastAPI service: FoxBrain conversations with sessions, streaming and approvals.

    pip install "foxagent[service]"        # fastapi and uvicorn
    FOXAGENT_BASE_URL=http://127.0.0.1:8883/v1 FOXAGENT_API_KEY=... \\
        uvicorn examples.service:app --port 8080

Endpoints (one conversation per ``session_id``, kept in SQLite at ``$FOXAGENT_SESSIONS_DB``,
default ``sessions.db``):

* ``POST /chat/{session_id}`` ``{"question": ...}``: run to the end; the answer, or the calls
  waiting for approval.
* ``POST /chat/{session_id}/stream`` ``{"question": ...}``: the same run as server-sent events
  (``event: <kind>``, ``data: <json>``), as it advances.
* ``GET /sessions/{session_id}``: the stored conversation and its pending calls.
* ``POST /sessions/{session_id}/approvals/{call_id}`` ``{"approve": true|false, "reason": ...}``
* ``POST /sessions/{session_id}/resume``: continue a run once its calls are decided.

One ``Agent`` (one connection pool, at most ``FOXAGENT_MAX_IN_FLIGHT`` model requests at once)
serves every request; each run has a deadline. Errors come back as JSON with the error's type.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from foxagent import Agent, RunError, RunResult, UserError, tool
from foxagent.events import event_payload
from foxagent.models.vllm import VLLMModel
from foxagent.sessions import Session, SQLiteStore
from foxagent_tools.calculator import calculator


@tool(requires_approval=True)
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email (this example only pretends to).

    Args:
        to: The recipient's address.
        subject: The subject line.
        body: The text of the email.
    """
    return f"sent to {to}"


class Question(BaseModel):
    question: str


class Decision(BaseModel):
    approve: bool
    reason: str = ""


def _result(result: RunResult) -> dict[str, Any]:
    return {
        "answer": result.answer,
        "steps": result.steps,
        "tool_calls": [asdict(call) for call in result.tool_calls],
        "pending": [asdict(call) for call in result.pending],
    }


def create_app(
    base_url: str | None = None,
    database: str | None = None,
    *,
    run_timeout: float = 300.0,
    max_in_flight: int | None = None,
) -> FastAPI:
    """The service, for a vLLM at ``base_url`` and sessions in ``database`` (env defaults)."""
    limit = max_in_flight or int(os.environ.get("FOXAGENT_MAX_IN_FLIGHT", "64"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = SQLiteStore(database or os.environ.get("FOXAGENT_SESSIONS_DB", "sessions.db"))
        model = VLLMModel(base_url, max_concurrent_requests=limit)
        app.state.store = store
        app.state.agent = Agent(
            tools=[calculator, send_email], model=model, run_timeout=run_timeout
        )
        yield
        await app.state.agent.aclose()
        await store.aclose()

    app = FastAPI(title="foxagent example service", lifespan=lifespan)

    def session(request: Request, session_id: str) -> Session:
        return Session(request.app.state.store, session_id)

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> JSONResponse:
        return JSONResponse({"error": "UserError", "detail": str(error)}, status_code=409)

    @app.exception_handler(RunError)
    async def run_error(request: Request, error: RunError) -> JSONResponse:
        body = {"error": type(error).__name__, "detail": str(error)}
        return JSONResponse(body, status_code=502)

    @app.post("/chat/{session_id}")
    async def chat(request: Request, session_id: str, question: Question) -> dict[str, Any]:
        agent: Agent = request.app.state.agent
        result = await agent.arun(question.question, session=session(request, session_id))
        return _result(result)

    @app.post("/chat/{session_id}/stream")
    async def chat_stream(request: Request, session_id: str, question: Question) -> Any:
        agent: Agent = request.app.state.agent

        async def events() -> AsyncIterator[str]:
            run = agent.iter(question.question, session=session(request, session_id))
            try:
                async for event in run:
                    data = json.dumps(event_payload(event), ensure_ascii=False, default=str)
                    yield f"event: {event.kind}\ndata: {data}\n\n"
            except (RunError, UserError) as error:
                data = json.dumps({"error": type(error).__name__, "detail": str(error)})
                yield f"event: error\ndata: {data}\n\n"

        # A client that goes away ends the generator, which cancels the run and its tools.
        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/sessions/{session_id}")
    async def show(request: Request, session_id: str) -> dict[str, Any]:
        conversation = session(request, session_id)
        pending = [asdict(call) for call in await conversation.pending()]
        return {"messages": await conversation.messages(), "pending": pending}

    @app.post("/sessions/{session_id}/approvals/{call_id}")
    async def decide(
        request: Request, session_id: str, call_id: str, decision: Decision
    ) -> dict[str, Any]:
        conversation = session(request, session_id)
        if decision.approve:
            await conversation.approve(call_id)
        else:
            await conversation.deny(call_id, decision.reason)
        return {"call_id": call_id, "approved": decision.approve}

    @app.post("/sessions/{session_id}/resume")
    async def resume(request: Request, session_id: str) -> dict[str, Any]:
        agent: Agent = request.app.state.agent
        if not await session(request, session_id).pending():
            raise HTTPException(404, f"session {session_id!r} has no run waiting for approval")
        return _result(await agent.resume(session(request, session_id)))

    return app


app = create_app()
