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
    _setup,
    apply_as_the_model_says,
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
    model = Model(modules=COURSES)
    apply_as_the_model_says(analytics, model, stream + stream, batch_size)
    assert analytics.get_credential_claim_analytics().model_dump() == model.claim_analytics(NOW)
    assert analytics.get_credential_stats().model_dump() == model.credential_stats(NOW)
    check_invariants(client)
