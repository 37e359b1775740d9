"""The stock weather tool against a fake Open-Meteo (httpx.MockTransport; no network).

The fake answers are shaped like the real geocoding (``/v1/search``) and forecast (``/v1/forecast``)
APIs, including their habits: no ``results`` key when nothing matches, ``{"error": true,
"reason": ...}`` on a bad request.
"""

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from foxagent import Tool, ToolError
from foxagent_tools import STOCK_TOOLS, load_stock_tool
from foxagent_tools.weather import (
    FORECAST_URL,
    GEOCODING_URL,
    WMO_WEATHER_CODES,
    OpenMeteoClient,
    WeatherTool,
    get_weather,
    make_weather_tool,
)

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]

BERLIN = {
    "id": 2950159,
    "name": "Berlin",
    "latitude": 52.52437,
    "longitude": 13.41053,
    "elevation": 74.0,
    "feature_code": "PPLC",
    "country_code": "DE",
    "admin1_id": 2950157,
    "timezone": "Europe/Berlin",
    "population": 3426354,
    "postcodes": ["10967", "13347"],
    "country_id": 2921044,
    "country": "Germany",
    "admin1": "State of Berlin",
}
HSINCHU_ZH = {
    "id": 1675151,
    "name": "新竹市",
    "latitude": 24.80361,
    "longitude": 120.96861,
    "elevation": 36.0,
    "feature_code": "PPLA",
    "country_code": "TW",
    "timezone": "Asia/Taipei",
    "population": 404109,
    "country_id": 1668284,
    "country": "臺灣",
    "admin1": "臺灣省",
}
TAIPEI_ZH = {
    "id": 1668341,
    "name": "臺北市",
    "latitude": 25.04776,
    "longitude": 121.53185,
    "feature_code": "PPLC",
    "country_code": "TW",
    "timezone": "Asia/Taipei",
    "country": "臺灣",
    "admin1": "臺北市",
}
PARIS_FR = {
    "id": 2988507,
    "name": "Paris",
    "latitude": 48.85341,
    "longitude": 2.3488,
    "country_code": "FR",
    "country": "France",
    "admin1": "Île-de-France",
}
PARIS_TX = {
    "id": 4717560,
    "name": "Paris",
    "latitude": 33.66094,
    "longitude": -95.55551,
    "country_code": "US",
    "country": "United States",
    "admin1": "Texas",
}


def forecast_body(unit: str, **current: object) -> dict[str, Any]:
    temperature, wind = ("°F", "mp/h") if unit == "fahrenheit" else ("°C", "km/h")
    values: dict[str, object] = {
        "time": "2024-07-01T14:00",
        "interval": 900,
        "temperature_2m": 31.2,
        "relative_humidity_2m": 68,
        "apparent_temperature": 35.9,
        "weather_code": 2,
        "wind_speed_10m": 11.5,
    }
    values.update(current)
    return {
        "latitude": 52.52,
        "longitude": 13.419998,
        "generationtime_ms": 0.0514984130859375,
        "utc_offset_seconds": 7200,
        "timezone": "Europe/Berlin",
        "timezone_abbreviation": "CEST",
        "elevation": 38.0,
        "current_units": {
            "time": "iso8601",
            "interval": "seconds",
            "temperature_2m": temperature,
            "relative_humidity_2m": "%",
            "apparent_temperature": temperature,
            "weather_code": "wmo code",
            "wind_speed_10m": wind,
        },
        "current": values,
    }


class FakeOpenMeteo:
    """Answers geocoding from ``places`` (by exact name) and forecasts with ``current``."""

    def __init__(self, places: dict[str, list[dict[str, Any]]], **current: object) -> None:
        self.places = places
        self.current = current
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "geocoding-api.open-meteo.com":
            found = self.places.get(request.url.params["name"], [])
            body: dict[str, Any] = {"generationtime_ms": 0.61}
            if found:
                body["results"] = found[: int(request.url.params["count"])]
            return httpx.Response(200, json=body)
        unit = request.url.params.get("temperature_unit", "celsius")
        return httpx.Response(200, json=forecast_body(unit, **self.current))

    def params(self, index: int) -> dict[str, str]:
        return dict(self.requests[index].url.params)


def weather_tool(handler: Handler, **options: float) -> WeatherTool:
    return make_weather_tool(OpenMeteoClient(transport=httpx.MockTransport(handler), **options))


async def refused(tool: WeatherTool, location: str, **kwargs: Any) -> str:
    with pytest.raises(ToolError) as caught:
        await tool(location, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


async def test_current_weather_in_celsius() -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]})

    result = await weather_tool(fake)("Berlin")

    assert result == {
        "location": "Berlin, State of Berlin, Germany",
        "latitude": 52.52437,
        "longitude": 13.41053,
        "time": "2024-07-01T14:00",
        "temperature": 31.2,
        "feels_like": 35.9,
        "unit": "celsius",
        "humidity_percent": 68,
        "wind_speed": 11.5,
        "wind_speed_unit": "km/h",
        "weather_code": 2,
        "description": "Partly cloudy",
    }
    assert [str(r.url.copy_with(query=None)) for r in fake.requests] == [
        GEOCODING_URL,
        FORECAST_URL,
    ]
    assert fake.params(0) == {"name": "Berlin", "count": "1", "language": "en", "format": "json"}
    assert fake.params(1) == {
        "latitude": "52.52437",
        "longitude": "13.41053",
        "current": (
            "temperature_2m,relative_humidity_2m,apparent_temperature,weather_code,wind_speed_10m"
        ),
        "temperature_unit": "celsius",
        "wind_speed_unit": "kmh",
        "timezone": "auto",
    }


async def test_current_weather_in_fahrenheit() -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]}, temperature_2m=88.2, apparent_temperature=96.6)

    result = await weather_tool(fake)("Berlin", unit="fahrenheit")

    assert fake.params(1)["temperature_unit"] == "fahrenheit"
    assert fake.params(1)["wind_speed_unit"] == "mph"
    assert (result["temperature"], result["feels_like"]) == (88.2, 96.6)
    assert (result["unit"], result["wind_speed_unit"]) == ("fahrenheit", "mph")


async def test_chinese_place_name_is_searched_in_chinese() -> None:
    fake = FakeOpenMeteo({"新竹": [HSINCHU_ZH]}, weather_code=61)

    result = await weather_tool(fake)("新竹")

    assert fake.params(0) == {"name": "新竹", "count": "1", "language": "zh", "format": "json"}
    assert (fake.params(1)["latitude"], fake.params(1)["longitude"]) == ("24.80361", "120.96861")
    assert result["location"] == "新竹市, 臺灣省, 臺灣"
    assert result["description"] == "Slight rain"


@pytest.mark.parametrize(
    ("location", "language"),
    [("Taipei", "en"), ("臺中", "zh"), ("东京", "zh"), ("とうきょう", "ja"), ("서울", "ko")],
)
async def test_search_language_follows_the_script(location: str, language: str) -> None:
    fake = FakeOpenMeteo({})

    await refused(weather_tool(fake), location)

    assert fake.params(0)["language"] == language


async def test_chinese_spellings_are_tried_in_turn() -> None:
    # Users write 台 or 臺 and add or drop 市; the service may know only one of the forms.
    fake = FakeOpenMeteo({"臺北市": [TAIPEI_ZH]})

    result = await weather_tool(fake)("台北市")

    assert [fake.params(i)["name"] for i in range(2)] == ["台北市", "臺北市"]
    assert fake.params(2)["latitude"] == "25.04776"
    assert result["location"] == "臺北市, 臺灣"


async def test_chinese_name_without_suffix_is_tried_last() -> None:
    fake = FakeOpenMeteo({"新竹": [HSINCHU_ZH]})

    await weather_tool(fake)("新竹縣")

    assert [r.url.params["name"] for r in fake.requests[:-1]] == ["新竹縣", "新竹"]


async def test_country_or_state_after_a_comma_picks_the_match() -> None:
    fake = FakeOpenMeteo({"Paris": [PARIS_FR, PARIS_TX]})

    result = await weather_tool(fake)("Paris, Texas")

    assert fake.params(0) == {"name": "Paris", "count": "10", "language": "en", "format": "json"}
    assert result["location"] == "Paris, Texas, United States"


async def test_unmatched_qualifier_falls_back_to_the_best_match() -> None:
    fake = FakeOpenMeteo({"Paris": [PARIS_FR, PARIS_TX]})

    result = await weather_tool(fake)("Paris，Atlantis")

    assert result["location"] == "Paris, Île-de-France, France"


async def test_unknown_place() -> None:
    fake = FakeOpenMeteo({})

    assert await refused(weather_tool(fake), "Atlantis") == "No place called 'Atlantis' was found."
    assert len(fake.requests) == 1


async def test_empty_location() -> None:
    fake = FakeOpenMeteo({})

    message = await refused(weather_tool(fake), "  ")

    assert message == "No location given: name a city, e.g. 'Taipei' or '新竹'."
    assert fake.requests == []


async def test_connect_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)

    assert await refused(weather_tool(handler), "Berlin") == (
        "Weather service unreachable: geocoding-api.open-meteo.com "
        "([Errno -3] Temporary failure in name resolution)."
    )


async def test_read_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    assert await refused(weather_tool(handler), "Berlin") == (
        "Weather service unreachable: geocoding-api.open-meteo.com did not answer in time."
    )


async def test_whole_lookup_has_a_deadline() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        return httpx.Response(200, json={})

    message = await refused(weather_tool(handler, timeout=0.01), "Berlin")

    assert message == "Weather service unreachable: no answer within 0.01 seconds."


async def test_http_500_from_the_forecast() -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]})

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.open-meteo.com":
            return httpx.Response(500, text="Internal Server Error")
        return fake(request)

    assert await refused(weather_tool(handler), "Berlin") == (
        "Weather service error: api.open-meteo.com answered HTTP 500."
    )


async def test_http_400_carries_the_reason_open_meteo_gives() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        reason = "Parameter 'count' must be between 1 and 100."
        return httpx.Response(400, json={"error": True, "reason": reason})

    assert await refused(weather_tool(handler), "Berlin") == (
        "Weather service error: geocoding-api.open-meteo.com answered HTTP 400 "
        "(Parameter 'count' must be between 1 and 100.)."
    )


async def test_malformed_json() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>Bad gateway</html>")

    message = await refused(weather_tool(handler), "Berlin")

    assert re.fullmatch(r"Weather service sent an unexpected answer: Invalid JSON: .+\.", message)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"results": [{"name": "Berlin"}]}, "results.0.latitude: Field required"),
        ({"results": "Berlin"}, "results: Input should be a valid array"),
        ([], "Input should be an object"),
    ],
)
async def test_geocoding_answer_of_the_wrong_shape(body: object, problem: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(body).encode())

    assert await refused(weather_tool(handler), "Berlin") == (
        f"Weather service sent an unexpected answer: {problem}."
    )


async def test_forecast_answer_without_current_values() -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]})

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.open-meteo.com":
            body = forecast_body("celsius")
            del body["current"]["temperature_2m"]
            return httpx.Response(200, json=body)
        return fake(request)

    assert await refused(weather_tool(handler), "Berlin") == (
        "Weather service sent an unexpected answer: current.temperature_2m: Field required."
    )


async def test_missing_values_and_unknown_codes_pass_through() -> None:
    fake = FakeOpenMeteo(
        {"Berlin": [BERLIN]}, relative_humidity_2m=None, wind_speed_10m=None, weather_code=42
    )

    result = await weather_tool(fake)("Berlin")

    assert (result["humidity_percent"], result["wind_speed"]) == (None, None)
    assert (result["weather_code"], result["description"]) == (42, "Unknown")


def test_wmo_table_covers_the_codes_open_meteo_sends() -> None:
    codes = {0, 1, 2, 3, 45, 48, 51, 53, 55, 56, 57, 61, 63, 65, 66, 67, 71, 73, 75, 77}
    codes |= {80, 81, 82, 85, 86, 95, 96, 99}
    assert set(WMO_WEATHER_CODES) == codes


def test_the_tool_offered_to_the_model() -> None:
    assert isinstance(get_weather, Tool)
    assert get_weather.name == "get_weather"
    assert get_weather.is_async
    properties = get_weather.parameters["properties"]
    assert get_weather.parameters["required"] == ["location"]
    assert properties["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert properties["unit"]["default"] == "celsius"
    assert "新竹" in properties["location"]["description"]


async def test_the_agent_path_validates_and_runs_the_tool() -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]})

    result = await weather_tool(fake).invoke({"location": "Berlin", "unit": "fahrenheit"})

    assert result["unit"] == "fahrenheit"


def test_stock_registry_loads_the_weather_tool() -> None:
    assert STOCK_TOOLS["get_weather"] == "foxagent_tools.weather:get_weather"
    assert load_stock_tool("get_weather") is get_weather
