"""Does the store hold training data? What the demo asks before it writes (its data must not mix
with anyone else's): a few EXISTS, never a SCAN of the store.

On a single server: one EXISTS of the catalog, the certificates, the two event series and the
index marker. On a cluster those keys are per course or per bucket, so it asks the catalog, the
course registry (every course with an event is registered before its first write), the
store-wide marker and every certificate bucket's set, one EXISTS each (a command may only name
keys of one slot): one round trip per node.
"""

from __future__ import annotations

from ._context import Context
from ._protocol import Op, batch, cmd


def holds_training_data(ctx: Context) -> Op[bool]:
    """True when the store (under the facade's prefix) holds courses, certificates or events."""
    k = ctx.keys
    if not k.cluster:
        found = yield batch(
            cmd(
                "EXISTS",
                k.all_training_courses(),
                k.all_training_certifications(),
                k.enrollment_timeseries(),
                k.completion_timeseries(),
                k.index_marker(),
            )
        )
        return bool(int(found[0]))
    keys = [
        k.all_training_courses(),
        k.course_registry(),
        k.index_marker(),
        *(k.all_training_certifications(b) for b in k.certification_buckets()),
    ]
    found = yield batch(*(cmd("EXISTS", key) for key in keys))
    return any(int(n) for n in found)
