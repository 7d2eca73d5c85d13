"""The API's routes, one module per endpoint group. Each route validates its input, calls one
facade method and returns its model (serialised with the seed's camelCase names).

Each router carries the API prefix itself, so that a route's own path (the metrics' label) is
the full template."""

from typing import Final

API_PREFIX: Final = "/api/v1"
