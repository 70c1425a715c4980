"""The policy pack's version for `pulumi policy publish`: the CLI sends the `version` of policies/PulumiPolicy.yaml,
and the service refuses a version it already holds ("already exists"), so one fixed version fails every merge after
the first. The version counts the commits that changed the pack (`0.<count>.0`): the same pack keeps its version
(and the deploy workflow skips publishing it again), a changed pack gets a higher one.

    python ci/policy_version.py stamp                          # writes the version into PulumiPolicy.yaml, prints it
    python ci/policy_version.py published ls.json NAME VERSION  # exit 0 when `pulumi policy ls --json` lists it
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACK = "policies"
_VERSION_LINE = re.compile(r"^version:.*$", re.MULTILINE)


def pack_version(root: Path = ROOT) -> str:
    """`0.<commits that changed policies/>.0` (needs the history: actions/checkout with fetch-depth 0)."""
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
    if shallow == "true":
        raise SystemExit("policy_version: a shallow clone cannot count the pack's commits (fetch-depth: 0)")
    count = subprocess.run(["git", "rev-list", "--count", "HEAD", "--", PACK], cwd=root, capture_output=True,
                           text=True, check=True).stdout.strip()
    if int(count) == 0:
        raise SystemExit(f"policy_version: no commit in {root} touches {PACK}/")
    return f"0.{int(count)}.0"


def stamp(root: Path = ROOT) -> str:
    """Writes the pack's version into PulumiPolicy.yaml and returns it."""
    version = pack_version(root)
    path = root / PACK / "PulumiPolicy.yaml"
    text = path.read_text()
    path.write_text(_VERSION_LINE.sub(f"version: {version}", text) if _VERSION_LINE.search(text)
                    else f"{text.rstrip()}\nversion: {version}\n")
    return version


def published(listing: str, name: str, version: str) -> bool:
    """Whether `pulumi policy ls --json` output lists that version of that pack."""
    return any(p.get("name") == name and version in (p.get("versions") or []) for p in json.loads(listing or "[]"))


def main(argv: list[str]) -> int:
    if argv[:1] == ["stamp"] and len(argv) == 1:
        print(stamp())
        return 0
    if argv[:1] == ["published"] and len(argv) == 4:
        return 0 if published(Path(argv[1]).read_text(), argv[2], argv[3]) else 1
    print("usage:\n" + "\n".join(__doc__.strip().splitlines()[-2:]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
