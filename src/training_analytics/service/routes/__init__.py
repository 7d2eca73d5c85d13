"""The API's routes, one module per endpoint group. Each route validates its input, calls one
facade method and returns its model (serialised with the seed's camelCase names).

Each router carries the API prefix itself, so that a route's own path (the metrics' label) is
the full template."""

from typing import Annotated, Final

from fastapi import Path

API_PREFIX: Final = "/api/v1"
#: What an id may be (``keys.check_id``): no ':', braces, glob characters, backslashes,
#: whitespace or control characters; at most 200 characters.
ID_PATTERN: Final = r"^[^:{}*?\[\]\\\s\x00-\x1f\x7f]{1,200}$"

# Path parameters, one definition each (with the examples the API docs show).
CourseId = Annotated[str, Path(alias="courseId", pattern=ID_PATTERN, examples=["sales-101"])]
UserId = Annotated[str, Path(alias="userId", pattern=ID_PATTERN, examples=["ana"])]
CertId = Annotated[str, Path(alias="certId", pattern=ID_PATTERN, examples=["cert-1"])]
