"""Random streams applied twice in a row (a history imported again) against the model.

The certificates have moved on by the second pass: the model says which of its issues and
claims are replays (unchanged) and which events are still refused, and the library must agree
event by event and in every certificate figure. test_properties.py's streams rarely repeat an
event; here every event comes back."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .factories import NOW
from .model import Model
from .test_properties import (
    COURSES,
    _apply_model,
    _as_event,
    _call,
    _setup,
    check_invariants,
    events,
    issue_events,
    status_events,
)

# Weighted towards certificate events, the ones a replay can refuse.
certificate_events = st.one_of(issue_events(), status_events())


@pytest.mark.single_server(
    reason="checks the invariants on the single-server layout's raw keys, as test_properties"
)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stream=st.lists(st.one_of(events, certificate_events, certificate_events), max_size=25),
    batch_size=st.one_of(st.none(), st.integers(min_value=1, max_value=15)),
)
def test_a_stream_applied_twice_equals_the_model(
    analytics: Any, client: redis.Redis, stream: list[tuple[Any, ...]], batch_size: int | None
) -> None:
    client.flushdb()
    _setup(analytics)
    stream = stream + stream
    model = Model(modules=COURSES)
    expected = [_apply_model(model, event) for event in stream]
    if batch_size is None:
        for event, outcome in zip(stream, expected, strict=True):
            if isinstance(outcome, type):
                with pytest.raises(outcome):
                    _call(analytics, event)
            else:
                assert _call(analytics, event) == outcome, event
    else:
        result = analytics.record_many([_as_event(e) for e in stream], batch_size=batch_size)
        refused = {r.index: r.error for r in result.rejected}
        assert refused == {i: o.__name__ for i, o in enumerate(expected) if isinstance(o, type)}
        assert result.applied == sum(1 for o in expected if o is True)
        assert result.unchanged == sum(1 for o in expected if o is False)
    assert analytics.get_credential_claim_analytics().model_dump() == model.claim_analytics(NOW)
    assert analytics.get_credential_stats().model_dump() == model.credential_stats(NOW)
    check_invariants(client)
