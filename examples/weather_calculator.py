"""FoxBrain's function-calling guide (weather + calculator), rewritten with foxagent.

Start FoxBrain with the guide's tested command (vLLM, `--enable-auto-tool-choice
--tool-call-parser llama3_json --chat-template ...`), then:

    export FOXAGENT_BASE_URL=http://127.0.0.1:8883/v1 FOXAGENT_API_KEY=...
    python examples/weather_calculator.py

The guide's client parses each call's arguments with `json.loads`, calls the function and sends a
`role: "tool"` message back by hand; foxagent does that loop, and also recovers the calls vLLM's
parser misses, validates the arguments and parses FoxBrain's tagged answer.
"""

from __future__ import annotations

import sys
from typing import Literal

from foxagent import Agent, tool
from foxagent_tools.calculator import calculator

# The guide's get_weather returns canned data; foxagent_tools.weather has a real one (Open-Meteo).
_CANNED = {
    "san francisco": {"temperature": 18, "condition": "foggy"},
    "new york": {"temperature": 22, "condition": "sunny"},
    "tokyo": {"temperature": 26, "condition": "humid"},
    "london": {"temperature": 15, "condition": "rainy"},
    "台北": {"temperature": 30, "condition": "晴時多雲"},
}


@tool
def get_weather(
    location: str, unit: Literal["celsius", "fahrenheit"] = "celsius"
) -> dict[str, object]:
    """Get the current weather in a given location.

    Args:
        location: The city, e.g. "San Francisco" or "台北".
        unit: The temperature unit.
    """
    data = _CANNED.get(location.strip().lower(), {"temperature": 20, "condition": "clear"})
    temperature = int(data["temperature"])  # type: ignore[call-overload]
    if unit == "fahrenheit":
        temperature = round(temperature * 9 / 5 + 32)
    return {"location": location, "temperature": temperature, "unit": unit, **data}


QUESTIONS = [
    "What's the weather like in Tokyo right now, in fahrenheit?",
    "台北現在天氣如何？如果氣溫再升高 15%，會是幾度？",
]


def main() -> int:
    agent = Agent(tools=[get_weather, calculator])
    for question in sys.argv[1:] or QUESTIONS:
        result = agent.run(question)
        print(f"Q: {question}")
        for call in result.tool_calls:
            outcome = call.result if call.status == "ok" else call.error
            print(f"  tool {call.name}({call.arguments}) -> {call.status}: {outcome}")
        print(result.parsed.pretty() if result.parsed.tagged else result.answer)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
