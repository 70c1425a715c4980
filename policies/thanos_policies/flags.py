"""Flags: every Thanos flag exists in the release the image runs and is not deprecated (the pinned release is judged
by its full flag table, another release only by the flags a release removed)."""

from ._register import resource_policy
from ._workloads import FLAG_TABLE, WORKLOAD_TYPES, _version_text, image_version, thanos_containers


_FLAGS = FLAG_TABLE["commands"]
PINNED = tuple(int(n) for n in FLAG_TABLE["version"].lstrip("v").split("."))
"""The release whose full flag table the pack carries."""
REMOVED = {command: {name: tuple(int(n) for n in version.split(".")) for name, version in flags.items()}
           for command, flags in FLAG_TABLE["removed"].items()}
"""Flags a release removed, by command: true of every later release."""


def validate_flags(args, report):
    """Refuses a Thanos flag the image's release does not have or deprecates: Thanos exits on a flag it does not know."""
    if args.resource_type not in WORKLOAD_TYPES:
        return
    for c, command, flags in thanos_containers(args.props):
        known = _FLAGS.get(command)
        version = image_version(c.get("image") or "")
        if not known or version is None:
            continue  # an unpinned image is the hardening rule's finding; its flags cannot be judged
        for f in flags:
            name = f[2:].split("=", 1)[0] if f.startswith("--") else f
            base = name[3:] if name.startswith("no-") and name[3:] in known["negatable"] else name
            removed = REMOVED.get(command, {}).get(base)
            if version != PINNED:
                # Another release: only what holds across releases (a removed flag stays removed), never its table.
                if removed and version >= removed:
                    report(f"thanos {command} has no flag --{name} since {_version_text(removed)} "
                           f"(the image is {_version_text(version)}).")
            elif base not in known["flags"]:
                report(f"thanos {command} has no flag --{name} in v0.42.4.")
            elif base in known["deprecated"]:
                report(f"thanos {command} --{name} is deprecated in v0.42.4.")


POLICIES = [
    resource_policy("thanos-flags-known", "Every Thanos flag exists in the pinned v0.42.4 release and is not deprecated.",
                    validate_flags),
]
