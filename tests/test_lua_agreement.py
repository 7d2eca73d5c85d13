"""The write scripts (Lua) and reindex (Python) must read timestamps and numbers identically.

Derived figures are maintained by Lua on every write and rebuilt by Python in reindex; if the two
parsers disagreed, a reindexed store would answer differently from a live one.
"""

from __future__ import annotations

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training_analytics._codec import progress_figures
from training_analytics._protocol import Script
from training_analytics._time import parse_timestamp_ms
from training_analytics._writes import APPLY
from training_analytics.helpers import js_round, safe_parse_number

PROBE = Script(
    name="probe",
    definitions=APPLY.definitions,  # the prelude's parsers, as every write uses them
    body="""
local out = {}
for i = 1, #ARGV do
  local ts = parse_ts(ARGV[i])
  local n = parse_number(ARGV[i])
  out[#out + 1] = ts and string.format('%.0f', ts) or ''
  out[#out + 1] = n and string.format('%.0f', math.floor(n * 1000 + 0.5)) or ''
end
return out
""",
)

FIGURES = Script(
    name="figures",
    definitions=APPLY.definitions,
    body="""
local out = {}
for i = 1, #ARGV, 3 do
  local milli, time = progress_figures(ARGV[i], ARGV[i + 1], ARGV[i + 2])
  out[#out + 1] = milli and string.format('%.0f', milli) or ''
  out[#out + 1] = time and string.format('%.0f', time) or ''
end
return out
""",
)

digits = st.integers(min_value=0, max_value=99).map(lambda n: f"{n:02d}")
timestamps = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, zone: f"{y:04d}-{mo}-{d}{sep}{h}:{mi}{s}{frac}{zone}",
    st.integers(min_value=1900, max_value=2200),
    st.integers(min_value=0, max_value=13).map(lambda n: f"{n:02d}"),
    st.integers(min_value=0, max_value=32).map(lambda n: f"{n:02d}"),
    st.sampled_from(["T", " ", "x"]),
    st.integers(min_value=0, max_value=25).map(lambda n: f"{n:02d}"),
    digits,
    st.one_of(st.just(""), digits.map(lambda s: f":{s}")),
    st.one_of(st.just(""), st.from_regex(r"\.\d{1,7}", fullmatch=True)),
    st.sampled_from(["", "Z", "+02:00", "-0530", "+1", "z"]),
)
numbers = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(repr),
    st.integers(min_value=-1000, max_value=1000).map(str),
    st.from_regex(r"\s?[+-]?\d{0,3}\.?\d{0,3}(e[+-]?\d)?[a-z ]{0,2}", fullmatch=True),
)


def _python(value: str) -> tuple[str, str]:
    ts = parse_timestamp_ms(value)
    number = safe_parse_number(value, float("nan"))
    parsed = "" if number != number else str(js_round(number * 1000))  # noqa: PLR0124 - NaN test
    return ("" if ts is None else str(ts), parsed)


# The client is only read through (EVAL of a pure script), so sharing it across examples is safe.
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(timestamps, numbers, st.dates().map(str)), min_size=1, max_size=20))
def test_lua_and_python_parse_alike(client: redis.Redis, values: list[str]) -> None:
    reply = client.eval(PROBE.source, 0, *values)
    lua = [(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]
    assert lua == [_python(v) for v in values]


# The write function reads a stored hash's figures with the prelude's progress_figures and takes
# the new ones the client computed (_codec.progress_figures), and when a stored text equals the
# new one it takes the client's figure for both: the two must agree on every text.
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.one_of(numbers, st.integers(min_value=0, max_value=10**20).map(str), st.just("")),
            st.one_of(timestamps, st.just("")),
            st.one_of(timestamps, st.just("")),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_lua_and_python_progress_figures_alike(
    client: redis.Redis, saves: list[tuple[str, str, str]]
) -> None:
    reply = client.eval(FIGURES.source, 0, *(text for save in saves for text in save))
    lua = [(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]
    python = [progress_figures(*save) for save in saves]
    assert lua == [tuple("" if x is None else str(x) for x in figures) for figures in python]
