"""``$operations``, one module each. ``builtin()`` lists those the composition root registers.

How to add one: write ``ketnoi/operations/<name>.py`` exposing ``OPERATION`` (an
``interactions.operation.Operation``), add it to ``builtin()``, and test it under tests/operations/.
"""

from __future__ import annotations

from ketnoi.interactions.operation import Operation


def builtin() -> list[Operation]:
    from ketnoi.operations import (
        break_glass,
        bulk_export,
        bulk_import,
        everything,
        expand,
        export_xml130,
        import_xml130,
        lookup,
        match,
        merge,
        reindex,
        subscription_status,
        subsumes,
        translate,
        unmerge,
        validate,
        validate_code,
    )

    return [
        validate.OPERATION,
        reindex.OPERATION,
        reindex.STATUS_OPERATION,
        *bulk_import.OPERATIONS,
        *bulk_export.OPERATIONS,
        import_xml130.OPERATION,
        export_xml130.OPERATION,
        everything.OPERATION,
        break_glass.OPERATION,
        match.OPERATION,
        merge.OPERATION,
        unmerge.OPERATION,
        # The terminology service (docs/terminology.md): read-only, over stored and packaged resources.
        expand.OPERATION,
        lookup.OPERATION,
        validate_code.OPERATION,
        subsumes.OPERATION,
        translate.OPERATION,
        # Subscriptions (docs/subscriptions.md): the backport IG's operations on one Subscription.
        *subscription_status.OPERATIONS,
    ]
