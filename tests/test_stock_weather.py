"""The stock weather tool against a fake Open-Meteo: a real HTTP server on 127.0.0.1, no network.

The fake answers are shaped like the real geocoding (``/v1/search``) and forecast (``/v1/forecast``)
APIs, including their habits: no ``results`` key when nothing matches, ``{"error": true,
"reason": ...}`` on a bad request. Like the real service it has two hosts: geocoding and forecast
listen on two ports, so error messages show which one failed.
"""

import asyncio
import errno
import inspect
import json
import re
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from yarl import URL

from foxagent import Tool, ToolError
from foxagent_tools import STOCK_TOOLS, load_stock_tool
from foxagent_tools.weather import (
    FORECAST_URL,
    GEOCODING_URL,
    WMO_WEATHER_CODES,
    OpenMeteoClient,
    WeatherTool,
    _host,
    get_weather,
    make_weather_tool,
)

Handler = Callable[[web.Request], web.StreamResponse | Awaitable[web.StreamResponse]]

GEOCODING_PATH = urlsplit(GEOCODING_URL).path
FORECAST_PATH = urlsplit(FORECAST_URL).path

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
        self.requests: list[URL] = []

    def __call__(self, request: web.Request) -> web.Response:
        self.requests.append(request.url)
        if request.path == GEOCODING_PATH:
            found = self.places.get(request.query["name"], [])
            body: dict[str, Any] = {"generationtime_ms": 0.61}
            if found:
                body["results"] = found[: int(request.query["count"])]
            return web.json_response(body)
        assert request.path == FORECAST_PATH
        unit = request.query.get("temperature_unit", "celsius")
        return web.json_response(forecast_body(unit, **self.current))

    def params(self, index: int) -> dict[str, str]:
        return dict(self.requests[index].query)


def bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


class OpenMeteoServer:
    """Fake Open-Meteo hosts on 127.0.0.1; each request is answered by the latest ``handler``."""

    def __init__(self, geocoding_port: int, forecast_port: int) -> None:
        self.geocoding_host = f"127.0.0.1:{geocoding_port}"
        self.forecast_host = f"127.0.0.1:{forecast_port}"
        self.geocoding_url = f"http://{self.geocoding_host}{GEOCODING_PATH}"
        self.forecast_url = f"http://{self.forecast_host}{FORECAST_PATH}"
        self.handler: Handler | None = None

    async def answer(self, request: web.Request) -> web.StreamResponse:
        assert self.handler is not None
        response = self.handler(request)
        return await response if inspect.isawaitable(response) else response

    def tool(self, handler: Handler, **options: float) -> WeatherTool:
        self.handler = handler
        client = OpenMeteoClient(
            geocoding_url=self.geocoding_url, forecast_url=self.forecast_url, **options
        )
        return make_weather_tool(client)


@pytest.fixture(autouse=True)
def straight_to_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client honours proxy variables, as the real service may sit behind one; not 127.0.0.1.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1")


@pytest.fixture
async def open_meteo() -> AsyncIterator[OpenMeteoServer]:
    sockets = [bound_socket(), bound_socket()]
    server = OpenMeteoServer(*map(port_of, sockets))
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", server.answer)
    # Handlers still waiting (the deadline test) are cancelled at once on cleanup.
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    try:
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
def refusing_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with bound_socket() as sock:
        return port_of(sock)


@pytest.fixture
async def hang_up_port() -> AsyncIterator[int]:
    """A port on 127.0.0.1 whose server reads each request and hangs up without an answer."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        yield port_of(server.sockets[0])


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full: connecting hangs (Linux drops the SYN)."""
    with bound_socket() as listener:
        listener.listen(0)
        waiting = [socket.socket() for _ in range(3)]
        try:
            for sock in waiting:
                sock.setblocking(False)
                sock.connect_ex(listener.getsockname())
            yield port_of(listener)
        finally:
            for sock in waiting:
                sock.close()


async def refused(tool: WeatherTool, location: str, **kwargs: Any) -> str:
    with pytest.raises(ToolError) as caught:
        await tool(location, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


async def test_current_weather_in_celsius(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]})

    result = await open_meteo.tool(fake)("Berlin")

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
    assert [str(url.with_query(None)) for url in fake.requests] == [
        open_meteo.geocoding_url,
        open_meteo.forecast_url,
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


async def test_current_weather_in_fahrenheit(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]}, temperature_2m=88.2, apparent_temperature=96.6)

    result = await open_meteo.tool(fake)("Berlin", unit="fahrenheit")

    assert fake.params(1)["temperature_unit"] == "fahrenheit"
    assert fake.params(1)["wind_speed_unit"] == "mph"
    assert (result["temperature"], result["feels_like"]) == (88.2, 96.6)
    assert (result["unit"], result["wind_speed_unit"]) == ("fahrenheit", "mph")


async def test_chinese_place_name_is_searched_in_chinese(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({"新竹": [HSINCHU_ZH]}, weather_code=61)

    result = await open_meteo.tool(fake)("新竹")

    assert fake.params(0) == {"name": "新竹", "count": "1", "language": "zh", "format": "json"}
    assert (fake.params(1)["latitude"], fake.params(1)["longitude"]) == ("24.80361", "120.96861")
    assert result["location"] == "新竹市, 臺灣省, 臺灣"
    assert result["description"] == "Slight rain"


@pytest.mark.parametrize(
    ("location", "language"),
    [("Taipei", "en"), ("臺中", "zh"), ("东京", "zh"), ("とうきょう", "ja"), ("서울", "ko")],
)
async def test_search_language_follows_the_script(
    open_meteo: OpenMeteoServer, location: str, language: str
) -> None:
    fake = FakeOpenMeteo({})

    await refused(open_meteo.tool(fake), location)

    assert fake.params(0)["language"] == language


async def test_chinese_spellings_are_tried_in_turn(open_meteo: OpenMeteoServer) -> None:
    # Users write 台 or 臺 and add or drop 市; the service may know only one of the forms.
    fake = FakeOpenMeteo({"臺北市": [TAIPEI_ZH]})

    result = await open_meteo.tool(fake)("台北市")

    assert [fake.params(i)["name"] for i in range(2)] == ["台北市", "臺北市"]
    assert fake.params(2)["latitude"] == "25.04776"
    assert result["location"] == "臺北市, 臺灣"


async def test_chinese_name_without_suffix_is_tried_last(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({"新竹": [HSINCHU_ZH]})

    await open_meteo.tool(fake)("新竹縣")

    assert [url.query["name"] for url in fake.requests[:-1]] == ["新竹縣", "新竹"]


async def test_country_or_state_after_a_comma_picks_the_match(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({"Paris": [PARIS_FR, PARIS_TX]})

    result = await open_meteo.tool(fake)("Paris, Texas")

    assert fake.params(0) == {"name": "Paris", "count": "10", "language": "en", "format": "json"}
    assert result["location"] == "Paris, Texas, United States"


async def test_unmatched_qualifier_falls_back_to_the_best_match(
    open_meteo: OpenMeteoServer,
) -> None:
    fake = FakeOpenMeteo({"Paris": [PARIS_FR, PARIS_TX]})

    result = await open_meteo.tool(fake)("Paris，Atlantis")

    assert result["location"] == "Paris, Île-de-France, France"


async def test_unknown_place(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({})

    assert (
        await refused(open_meteo.tool(fake), "Atlantis") == "No place called 'Atlantis' was found."
    )
    assert len(fake.requests) == 1


async def test_empty_location(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({})

    message = await refused(open_meteo.tool(fake), "  ")

    assert message == "No location given: name a city, e.g. 'Taipei' or '新竹'."
    assert fake.requests == []


async def test_connect_error(refusing_port: int) -> None:
    url = f"http://127.0.0.1:{refusing_port}{GEOCODING_PATH}"

    assert await refused(make_weather_tool(OpenMeteoClient(geocoding_url=url)), "Berlin") == (
        f"Weather service unreachable: 127.0.0.1:{refusing_port} "
        f"([Errno {errno.ECONNREFUSED}] Connect call failed ('127.0.0.1', {refusing_port}))."
    )


async def test_server_hanging_up(hang_up_port: int) -> None:
    url = f"http://127.0.0.1:{hang_up_port}{GEOCODING_PATH}"

    assert await refused(make_weather_tool(OpenMeteoClient(geocoding_url=url)), "Berlin") == (
        f"Weather service unreachable: 127.0.0.1:{hang_up_port} (Server disconnected)."
    )


@pytest.mark.skipif(sys.platform != "linux", reason="needs Linux dropping SYNs to a full queue")
async def test_connect_timeout(full_backlog: int) -> None:
    url = f"http://127.0.0.1:{full_backlog}{GEOCODING_PATH}"
    client = OpenMeteoClient(geocoding_url=url, timeout=30, connect_timeout=0.2)

    assert await refused(make_weather_tool(client), "Berlin") == (
        f"Weather service unreachable: 127.0.0.1:{full_backlog} did not answer in time."
    )


async def test_whole_lookup_has_a_deadline(open_meteo: OpenMeteoServer) -> None:
    reached = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        reached.set()
        await asyncio.sleep(60)  # cancelled by the fixture's cleanup
        return web.json_response({})

    message = await refused(open_meteo.tool(handler, timeout=0.5), "Berlin")

    assert message == "Weather service unreachable: no answer within 0.5 seconds."
    assert reached.is_set()


async def test_http_500_from_the_forecast(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]})

    def handler(request: web.Request) -> web.Response:
        if request.path == FORECAST_PATH:
            return web.Response(status=500, text="Internal Server Error")
        return fake(request)

    assert await refused(open_meteo.tool(handler), "Berlin") == (
        f"Weather service error: {open_meteo.forecast_host} answered HTTP 500."
    )


async def test_http_400_carries_the_reason_open_meteo_gives(open_meteo: OpenMeteoServer) -> None:
    def handler(request: web.Request) -> web.Response:
        reason = "Parameter 'count' must be between 1 and 100."
        return web.json_response({"error": True, "reason": reason}, status=400)

    assert await refused(open_meteo.tool(handler), "Berlin") == (
        f"Weather service error: {open_meteo.geocoding_host} answered HTTP 400 "
        "(Parameter 'count' must be between 1 and 100.)."
    )


async def test_malformed_json(open_meteo: OpenMeteoServer) -> None:
    def handler(request: web.Request) -> web.Response:
        return web.Response(text="<html>Bad gateway</html>", content_type="text/html")

    message = await refused(open_meteo.tool(handler), "Berlin")

    assert re.fullmatch(r"Weather service sent an unexpected answer: Invalid JSON: .+\.", message)


async def test_redirects_are_not_followed(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]})

    def handler(request: web.Request) -> web.Response:
        if request.query.get("name") == "Berlin":
            fake.requests.append(request.url)
            moved = request.url.with_query(dict(request.query, name="Atlantis"))
            return web.Response(status=302, headers={"Location": str(moved)})
        return fake(request)

    message = await refused(open_meteo.tool(handler), "Berlin")

    assert re.fullmatch(r"Weather service sent an unexpected answer: Invalid JSON: .+\.", message)
    assert [url.query["name"] for url in fake.requests] == ["Berlin"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"results": [{"name": "Berlin"}]}, "results.0.latitude: Field required"),
        ({"results": "Berlin"}, "results: Input should be a valid array"),
        ([], "Input should be an object"),
    ],
)
async def test_geocoding_answer_of_the_wrong_shape(
    open_meteo: OpenMeteoServer, body: object, problem: str
) -> None:
    def handler(request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")

    assert await refused(open_meteo.tool(handler), "Berlin") == (
        f"Weather service sent an unexpected answer: {problem}."
    )


async def test_forecast_answer_without_current_values(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]})

    def handler(request: web.Request) -> web.Response:
        if request.path == FORECAST_PATH:
            body = forecast_body("celsius")
            del body["current"]["temperature_2m"]
            return web.json_response(body)
        return fake(request)

    assert await refused(open_meteo.tool(handler), "Berlin") == (
        "Weather service sent an unexpected answer: current.temperature_2m: Field required."
    )


async def test_missing_values_and_unknown_codes_pass_through(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo(
        {"Berlin": [BERLIN]}, relative_humidity_2m=None, wind_speed_10m=None, weather_code=42
    )

    result = await open_meteo.tool(fake)("Berlin")

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


async def test_the_agent_path_validates_and_runs_the_tool(open_meteo: OpenMeteoServer) -> None:
    fake = FakeOpenMeteo({"Berlin": [BERLIN]})

    result = await open_meteo.tool(fake).invoke({"location": "Berlin", "unit": "fahrenheit"})

    assert result["unit"] == "fahrenheit"


def test_the_default_client_asks_the_real_service() -> None:
    client = OpenMeteoClient()

    assert (client.geocoding_url, client.forecast_url) == (GEOCODING_URL, FORECAST_URL)
    assert GEOCODING_URL == "https://geocoding-api.open-meteo.com/v1/search"
    assert FORECAST_URL == "https://api.open-meteo.com/v1/forecast"


def test_messages_name_the_host_with_its_port_if_any_and_no_credentials() -> None:
    assert _host(GEOCODING_URL) == "geocoding-api.open-meteo.com"
    assert _host(FORECAST_URL) == "api.open-meteo.com"
    assert _host("http://user:secret@127.0.0.1:8080/v1/search") == "127.0.0.1:8080"
    assert _host("https://[::1]:8443/v1/search") == "::1:8443"


def test_stock_registry_loads_the_weather_tool() -> None:
    assert STOCK_TOOLS["get_weather"] == "foxagent_tools.weather:get_weather"
    assert load_stock_tool("get_weather") is get_weather
