"""The admin API judged by the real Thanos: every planned compactor, store gateway (DR ones too) and bucket web of
each stack, started from the plan with a real block in its bucket, refuses `POST /api/v1/blocks/mark` on its HTTP
port, and no block marker reaches the bucket (a deletion mark has the compactor delete the block)."""

import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support.stacks import STACKS
from tests.realtools import Harness
from tests.realtools.blocks import HOUR_MS, write_blocks
from tests.realtools.loopback import bucket_name, objstore_files, subcommand
from tests.realtools.plan import kubernetes_objects
from tests.realtools.pods import planned_containers

ADMIN_COMMANDS = (["compact"], ["store"], ["tools", "bucket", "web"])
"""The subcommands that serve the blocks API with its mark action on their HTTP port."""
ACTIONS = ("DELETION", "NO_COMPACTION")
MARKERS = ("deletion-mark.json", "no-compact-mark.json")
READY_SECONDS = 60


def mark(url: str, block: str, action: str) -> tuple[int, str]:
    """POST the bucket UI's mark request; (status, body)."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode({"id": block, "action": action}).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def put_block(bucket: Path, workdir: Path) -> str:
    """A real 2h block in `bucket`, writable by every pod user (as the planned bucket lets these identities write:
    a marker refused for file permissions would pass for the wrong reason); returns its ULID."""
    now = int(time.time() * 1000)
    start = (now - 6 * HOUR_MS) // (2 * HOUR_MS) * (2 * HOUR_MS)
    block = write_blocks(workdir, ['admin_api{instance="a"}'], start, start + 2 * HOUR_MS, 60,
                         {"cluster": "admin-api"})[0]
    target = bucket / block.name
    block.rename(target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    return block.name


@pytest.mark.parametrize("stack", STACKS)
def test_no_planned_thanos_lets_anyone_mark_a_block(stack, tmp_path, capsys):
    objects = kubernetes_objects(stack)
    containers = planned_containers(stack, objects)
    targets = [c for c in containers if c.is_thanos and not c.runs_to_completion
               and subcommand(c.args) in ADMIN_COMMANDS]
    assert {" ".join(subcommand(c.args)) for c in targets} == {"compact", "store", "tools bucket web"}, stack
    namespaces = {(c.cluster, c.namespace) for c in targets}
    caches = [c for c in containers if c.image.startswith("docker.io/library/memcached")
              and (c.cluster, c.namespace) in namespaces]
    answers: dict[str, list[tuple[int, str]]] = {}
    with Harness(tmp_path, objects) as harness:
        for cache in caches:  # ready and in DNS before the store gateways that dial them start
            process = harness.start(cache)
            assert harness.wait_published(process, READY_SECONDS), f"{cache.id}:\n{process.output()}"
        processes = [harness.start(c) for c in targets]
        blocks = {}  # a block of its own per server: a marker in it names the server that wrote it
        for index, process in enumerate(processes):
            bucket = bucket_of(harness, process.container)
            blocks[process.container.id] = put_block(bucket, tmp_path / "history" / str(index))
        for process in processes:
            assert process.wait_ready(READY_SECONDS) == "ready", f"{process.container.id}:\n{process.output()}"
            answers[process.container.id] = [mark(process.url("/api/v1/blocks/mark"), blocks[process.container.id],
                                                  action) for action in ACTIONS]
        markers = sorted(str(p.relative_to(harness.sandbox.buckets)) for name in MARKERS
                        for p in harness.sandbox.buckets.rglob(name))
    assert not harness.leftovers(), harness.leftovers()
    statuses = sorted({status for replies in answers.values() for status, _ in replies})
    with capsys.disabled():
        print(f"\n{stack}: {len(answers)} compactors, store gateways and bucket webs answered {statuses}; "
              f"{len(markers)} markers written")
    accepted = [f"{cid} {action}: {status} {body[:200]}" for cid, replies in sorted(answers.items())
                for action, (status, body) in zip(ACTIONS, replies, strict=True)
                if not 400 <= status < 500 or "Admin operations are disabled" not in body]
    assert not accepted, f"{stack}: the admin API accepted (or failed otherwise):\n" + "\n".join(accepted)
    assert markers == [], f"{stack}: markers written into the buckets: {markers}"


def bucket_of(harness: Harness, container) -> Path:
    """The FILESYSTEM folder standing in for the bucket a started container reads."""
    config = yaml.safe_load(harness.sandbox.volume_file(container, objstore_files(container.args)[0]).read_text())
    return harness.sandbox.buckets / bucket_name(config)
