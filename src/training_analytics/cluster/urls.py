"""Cluster URLs: ``redis+cluster://[user:password@]host:port`` and ``rediss+cluster://`` (TLS).

Any one node is the seed: the client asks it for the cluster's nodes and slots and connects to
the others itself. A cluster has one database, 0, so a URL naming another is refused. The query
string takes redis-py's connection options as in a ``redis://`` URL.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..errors import InvalidInputError

#: Cluster scheme -> the scheme of one node's connection.
CLUSTER_SCHEMES: Final = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return urlsplit(url).scheme.lower() in CLUSTER_SCHEMES


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (any scheme), for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}:***@{hostport}", parts.path, parts.query, ""))


def node_url(url: str) -> str:
    """The seed node's ``redis://`` / ``rediss://`` URL of a cluster URL, for redis-py's
    ``RedisCluster.from_url``. Raises InvalidInputError (the password left out) when the URL
    has no host or names a database other than 0."""
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise InvalidInputError(f"not a cluster URL: {redact(url)}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        raise InvalidInputError(f"invalid cluster URL {redact(url)}: {exc}") from exc
    if not host:
        raise InvalidInputError(f"a cluster URL needs a seed node's host: {redact(url)}")
    database = parts.path.strip("/")
    databases = parse_qs(parts.query).get("db", [])
    if database not in ("", "0") or any(db != "0" for db in databases):
        raise InvalidInputError(
            f"a cluster has database 0 only; leave the database out of {redact(url)}"
        )
    del port  # checked above; the URL keeps it as written
    return urlunsplit((scheme, parts.netloc, "", parts.query, ""))
