"""Options of what holds blocks or guards them: protected and retained on delete when the stack's `protect-data` is on."""

from typing import Any

import pulumi


def kept(parent: pulumi.Resource, protect: bool, **options: Any) -> pulumi.ResourceOptions:
    """Options for a bucket, a storage account, a container or a setting that guards their data (versioning,
    encryption, public access block, replication, lifecycle). The engine deletes a protected resource's unprotected
    children before it stops at the protected one, so a child that guards the data needs the same protection as the
    data itself; `retain_on_delete` leaves it in the cloud when it leaves the program or the stack."""
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect, **options)
