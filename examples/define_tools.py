"""Define tools with @tool, see the schemas FoxBrain gets, and validate a model's arguments.

Run: python examples/define_tools.py
"""

from __future__ import annotations

import json
from typing import Literal

from foxagent import ToolArgumentsError, ToolError, Toolset, tool


@tool
async def get_weather(
    location: str, unit: Literal["celsius", "fahrenheit"] = "celsius"
) -> dict[str, object]:
    """Get the current weather for a place.

    Args:
        location: City name in any language, e.g. "台北" or "Hsinchu".
        unit: Temperature unit.
    """
    if location == "Atlantis":
        raise ToolError("No place called 'Atlantis' was found.")  # sent back to the model
    return {"location": location, "temperature": 23, "unit": unit}


def main() -> None:
    tools = Toolset([get_weather])
    print(json.dumps(tools.openai_schemas(), ensure_ascii=False, indent=2))
    print(get_weather.validate_arguments({"location": "台北", "unit": "Celsius"}))
    try:
        get_weather.validate_arguments({"location": "台北", "unit": "kelvin"})
    except ToolArgumentsError as error:
        print(error)


if __name__ == "__main__":
    main()
