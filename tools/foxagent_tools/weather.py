"""A current-weather tool backed by Open-Meteo (free, no API key).

Each call makes two requests: Open-Meteo's geocoding API turns the place name into coordinates,
then its forecast API reports the current conditions there. Every failure (unknown place, network
down, HTTP error, an answer of the wrong shape) becomes a one-line `ToolError`
the model can read.

The module-level `get_weather` talks to the real service. For tests, a self-hosted
Open-Meteo or custom timeouts build your own with `make_weather_tool`::

    client = OpenMeteoClient(
        geocoding_url="http://127.0.0.1:8080/v1/search",
        forecast_url="http://127.0.0.1:8080/v1/forecast",
    )
    get_weather = make_weather_tool(client)
"""

import asyncio
import json
import re
from collections.abc import Coroutine
from typing import Any, Literal, TypeAlias, TypeVar
from urllib.parse import urlsplit

import aiohttp
import pydantic

from foxagent import Tool, ToolError, tool

__all__ = [
    "FORECAST_URL",
    "GEOCODING_URL",
    "WMO_WEATHER_CODES",
    "OpenMeteoClient",
    "Unit",
    "WeatherTool",
    "get_weather",
    "make_weather_tool",
]

Unit: TypeAlias = Literal["celsius", "fahrenheit"]

GEOCODING_URL = "https://geocoding-api.open-meteo.com/v1/search"
FORECAST_URL = "https://api.open-meteo.com/v1/forecast"

#: WMO weather interpretation codes, as used by Open-Meteo's ``weather_code``.
WMO_WEATHER_CODES: dict[int, str] = {
    0: "Clear sky",
    1: "Mainly clear",
    2: "Partly cloudy",
    3: "Overcast",
    45: "Fog",
    48: "Depositing rime fog",
    51: "Light drizzle",
    53: "Moderate drizzle",
    55: "Dense drizzle",
    56: "Light freezing drizzle",
    57: "Dense freezing drizzle",
    61: "Slight rain",
    63: "Moderate rain",
    65: "Heavy rain",
    66: "Light freezing rain",
    67: "Heavy freezing rain",
    71: "Slight snowfall",
    73: "Moderate snowfall",
    75: "Heavy snowfall",
    77: "Snow grains",
    80: "Slight rain showers",
    81: "Moderate rain showers",
    82: "Violent rain showers",
    85: "Slight snow showers",
    86: "Heavy snow showers",
    95: "Thunderstorm",
    96: "Thunderstorm with slight hail",
    99: "Thunderstorm with heavy hail",
}

_CURRENT_VARIABLES = (
    "temperature_2m,relative_humidity_2m,apparent_temperature,weather_code,wind_speed_10m"
)
# Fahrenheit users expect miles per hour; everyone else km/h. (query value, unit shown)
_WIND_UNITS: dict[Unit, tuple[str, str]] = {
    "celsius": ("kmh", "km/h"),
    "fahrenheit": ("mph", "mph"),
}
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Names come back in the language asked for; kana means Japanese even when Han characters appear.
_SCRIPT_LANGUAGES = (
    (re.compile(r"[\u3040-\u30ff]"), "ja"),
    (re.compile(r"[\uac00-\ud7af]"), "ko"),
    (_HAN, "zh"),
)
# "台北市" is listed as "臺北市" and "新竹縣" may only match as "新竹": retry with these removed.
_CJK_ADMIN_SUFFIXES = ("市", "縣", "县", "區", "区", "鄉", "鎮")
_QUALIFIER = re.compile(r"\s*[,，、]\s*")
_QUALIFIED_COUNT = 10

Model = TypeVar("Model", bound=pydantic.BaseModel)
Params: TypeAlias = dict[str, str | int | float]
# "..." rather than [str, Unit]: a ParamSpec list cannot say that ``unit`` has a default.
WeatherTool: TypeAlias = Tool[..., Coroutine[Any, Any, dict[str, object]]]


class _Place(pydantic.BaseModel):
    name: str
    latitude: float
    longitude: float
    admin1: str | None = None
    country: str | None = None
    country_code: str | None = None

    def label(self) -> str:
        parts = [self.name, self.admin1, self.country]
        return ", ".join(dict.fromkeys(part for part in parts if part))

    def matches(self, qualifier: str) -> bool:
        wanted = _fold(qualifier)
        fields = (self.admin1, self.country, self.country_code)
        return any(wanted in _fold(field) for field in fields if field)


class _Geocoding(pydantic.BaseModel):
    # Open-Meteo leaves the key out entirely when nothing matches.
    results: list[_Place] = pydantic.Field(default_factory=list)


class _Current(pydantic.BaseModel):
    time: str | None = None
    temperature_2m: float | None
    relative_humidity_2m: float | None
    apparent_temperature: float | None
    weather_code: int | None
    wind_speed_10m: float | None


class _Forecast(pydantic.BaseModel):
    current: _Current


class OpenMeteoClient:
    """Looks up the current weather at a named place on Open-Meteo.

    Each call opens (and closes) its own HTTP session, so one ``OpenMeteoClient`` can serve
    calls from different event loops. Proxy settings come from the environment (``HTTPS_PROXY``,
    ``NO_PROXY``, ...); redirects are not followed.

    Args:
        geocoding_url: the geocoding search endpoint, e.g. a local fake's in tests.
        forecast_url: the forecast endpoint.
        timeout: seconds one whole lookup (geocoding and forecast together) may take.
        connect_timeout: seconds to wait for a connection to be established.
    """

    def __init__(
        self,
        *,
        geocoding_url: str = GEOCODING_URL,
        forecast_url: str = FORECAST_URL,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.geocoding_url = geocoding_url
        self.forecast_url = forecast_url
        self._timeout = timeout
        self._connect_timeout = connect_timeout

    async def current_weather(self, location: str, unit: Unit = "celsius") -> dict[str, object]:
        """The current weather at ``location`` as a compact dict (see `make_weather_tool`).

        Raises:
            ToolError: unknown place, service unreachable or failing, or an unexpected answer.
        """
        if not location.strip():
            raise ToolError("No location given: name a city, e.g. 'Taipei' or '新竹'.")
        try:
            return await asyncio.wait_for(self._lookup(location.strip(), unit), self._timeout)
        except asyncio.TimeoutError:
            raise ToolError(
                f"Weather service unreachable: no answer within {self._timeout:g} seconds."
            ) from None

    async def _lookup(self, location: str, unit: Unit) -> dict[str, object]:
        # No total: asyncio.wait_for in current_weather bounds the whole lookup.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._connect_timeout, sock_read=self._timeout
        )
        async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as http:
            place = await self._find_place(http, location)
            current = await self._current(http, place, unit)
        return _summary(place, current, unit)

    async def _find_place(self, http: aiohttp.ClientSession, location: str) -> _Place:
        name, _, qualifier = _QUALIFIER.sub(",", location, count=1).partition(",")
        for spelling in _spellings(name):
            params: Params = {
                "name": spelling,
                "count": _QUALIFIED_COUNT if qualifier else 1,
                "language": _language(spelling),
                "format": "json",
            }
            places = (await _get(http, self.geocoding_url, params, _Geocoding)).results
            if places:
                return next((p for p in places if p.matches(qualifier)), places[0])
        raise ToolError(f"No place called '{location}' was found.")

    async def _current(self, http: aiohttp.ClientSession, place: _Place, unit: Unit) -> _Current:
        params: Params = {
            "latitude": place.latitude,
            "longitude": place.longitude,
            "current": _CURRENT_VARIABLES,
            "temperature_unit": unit,
            "wind_speed_unit": _WIND_UNITS[unit][0],
            "timezone": "auto",
        }
        return (await _get(http, self.forecast_url, params, _Forecast)).current


def make_weather_tool(client: OpenMeteoClient | None = None) -> WeatherTool:
    """Build a ``get_weather`` tool that uses ``client`` (default: the real Open-Meteo service).

    The tool returns a dict such as ``{"location": "Taipei, Taiwan", "temperature": 28.4,
    "feels_like": 32.1, "unit": "celsius", "humidity_percent": 74, "wind_speed": 9.7,
    "wind_speed_unit": "km/h", "weather_code": 2, "description": "Partly cloudy", ...}``.
    """
    service = client if client is not None else OpenMeteoClient()

    @tool(name="get_weather")
    async def get_weather(location: str, unit: Unit = "celsius") -> dict[str, object]:
        """Get the current weather at a place: temperature, feels-like, humidity, wind, sky.

        Args:
            location: City or place name in any language, e.g. "Taipei", "新竹" or
                "Paris, France".
            unit: Temperature unit; wind speed is in km/h for celsius and mph for fahrenheit.
        """
        return await service.current_weather(location, unit)

    return get_weather


async def _get(http: aiohttp.ClientSession, url: str, params: Params, model: type[Model]) -> Model:
    host = _host(url)
    try:
        async with http.get(url, params=params, allow_redirects=False) as response:
            status = response.status
            body = await response.read()
    except asyncio.TimeoutError:  # aiohttp's connect and read timeouts
        raise ToolError(f"Weather service unreachable: {host} did not answer in time.") from None
    except aiohttp.ClientError as error:
        raise ToolError(f"Weather service unreachable: {host} ({_reason(error)}).") from None
    if status >= 400:
        raise ToolError(f"Weather service error: {host} answered HTTP {status}{_api_reason(body)}.")
    try:
        return model.model_validate_json(body)
    except pydantic.ValidationError as error:
        raise ToolError(
            f"Weather service sent an unexpected answer: {_first_problem(error)}."
        ) from None


def _spellings(name: str) -> list[str]:
    """``name``, then the spellings Chinese users treat as the same place (台/臺, 市/縣 or not)."""
    if not _HAN.search(name):
        return [name]
    variants = [name, name.replace("台", "臺"), name.replace("臺", "台")]
    bare = [v[:-1] for v in variants if len(v) > 2 and v.endswith(_CJK_ADMIN_SUFFIXES)]
    return list(dict.fromkeys(variants + bare))


def _language(name: str) -> str:
    return next((language for script, language in _SCRIPT_LANGUAGES if script.search(name)), "en")


def _summary(place: _Place, current: _Current, unit: Unit) -> dict[str, object]:
    code = current.weather_code
    humidity = current.relative_humidity_2m
    return {
        "location": place.label(),
        "latitude": place.latitude,
        "longitude": place.longitude,
        "time": current.time,
        "temperature": current.temperature_2m,
        "feels_like": current.apparent_temperature,
        "unit": unit,
        "humidity_percent": None if humidity is None else round(humidity),
        "wind_speed": current.wind_speed_10m,
        "wind_speed_unit": _WIND_UNITS[unit][1],
        "weather_code": code,
        "description": WMO_WEATHER_CODES.get(code, "Unknown") if code is not None else None,
    }


def _fold(text: str) -> str:
    return text.casefold().replace("臺", "台")


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


def _host(url: str) -> str:
    """The host of ``url``, with its port when one is given (never its user or password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        return host
    return host if port is None else f"{host}:{port}"


def _reason(error: aiohttp.ClientError) -> str:
    # A connector error's own text repeats the host ("Cannot connect to host ..."): keep the cause.
    cause = error.os_error if isinstance(error, aiohttp.ClientConnectorError) else error
    return _one_line(str(cause)) or _one_line(str(error)) or type(error).__name__


def _api_reason(body: bytes) -> str:
    # Open-Meteo explains refusals as {"error": true, "reason": "..."}.
    try:
        reason = json.loads(body).get("reason")
    except (ValueError, AttributeError):
        return ""
    return f" ({_one_line(reason)})" if isinstance(reason, str) and reason.strip() else ""


def _first_problem(error: pydantic.ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}" if where else problem["msg"]


get_weather = make_weather_tool()
