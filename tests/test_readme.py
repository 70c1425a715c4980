"""The README stays a few screens long and true: its word budget, its first two commands, every `./run` subcommand and
`python -m` module it names, and every relative link (and `#anchor`) of the README, CONTRIBUTING.md and docs/."""

import re
from pathlib import Path

import pytest

from tests.support.stacks import ROOT

README = ROOT / "README.md"
WORD_BUDGET = 2500
PAGES = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def code_blocks(text: str) -> list[str]:
    """The contents of the fenced code blocks, in order."""
    return [block.split("\n", 1)[1].rsplit("\n", 1)[0] for block in (m.group(0) for m in FENCE.finditer(text))]


def commands(block: str) -> list[str]:
    """The shell commands of a code block: its lines without comments, blank lines or continuation lines."""
    found = []
    for line in block.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            found.append(line)
    return found


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: the text without markup, lower-cased, punctuation but `-` and `_` dropped,
    spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[`*]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor the page's headings give (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"#{1,6} +(.*?) *#* *$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    """The link targets of a page outside code (fenced blocks and inline code spans)."""
    text = re.sub(r"`[^`\n]*`", "code", FENCE.sub("", page.read_text()))
    return LINK.findall(text)


def run_subcommands() -> set[str]:
    """The subcommands `./run` has: the branches of its case statement."""
    return set(re.findall(r"^  ([a-z][a-z-]*)\)$", (ROOT / "run").read_text(), re.M))


def test_the_readme_keeps_to_its_word_budget():
    words = len(README.read_text().split())
    assert words <= WORD_BUDGET, f"README.md has {words} words; move depth to docs/ (budget {WORD_BUDGET})"


def test_the_readme_starts_with_the_preflight_and_the_tests_and_ci_runs_that_test_command():
    first = commands(code_blocks(README.read_text())[0])
    assert first[:2] == ["./run preflight dev", "./run tests"]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip().startswith("./run tests")]
    assert ci and all(line.split()[:2] == ["./run", "tests"] for line in ci)


def test_every_command_in_the_readme_names_a_real_subcommand_or_module():
    subcommands = run_subcommands()
    assert {"preflight", "tests", "capacity"} <= subcommands
    named_runs, named_modules = 0, 0
    for block in code_blocks(README.read_text()):
        for line in commands(block):
            for sub in re.findall(r"(?:^|[\s;&|(])\./run\s+([\w-]+)", line):
                named_runs += 1
                assert sub in subcommands, line
            for module in re.findall(r"python3?\s+-m\s+([\w.]+)", line):
                named_modules += 1
                path = ROOT.joinpath(*module.split("."))
                assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), line
    assert named_runs >= 4


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_heading(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == []


def test_the_anchor_rules_are_githubs():
    assert slug("Destroy, renames and edits that lose data") == "destroy-renames-and-edits-that-lose-data"
    assert slug("Load on the dev data path: `./run bench-load`") == "load-on-the-dev-data-path-run-bench-load"
    assert slug("Switching a region to its DR copy (AWS; Azure below)") == "switching-a-region-to-its-dr-copy-aws-azure-below"
    assert links(README).count("docs/architecture.svg") == 1


def test_every_stack_example_in_the_docs_is_a_valid_stack_file():
    """A `Pulumi.<stack>.yaml` example in the README or docs/ passes the stack file's schema and the config models'
    own checks (the cross-field ones too), so a reader who copies it gets no config error."""
    import json

    import jsonschema
    import yaml

    import config

    schema = json.loads((ROOT / "config" / "stack.schema.json").read_text())
    examples = 0
    for page in PAGES:
        for block in (match.group(0) for match in FENCE.finditer(page.read_text())):
            if not block.startswith("```yaml") or "thanos:config:" not in block:
                continue
            document = yaml.safe_load(block.split("\n", 1)[1].rsplit("\n", 1)[0])
            if not isinstance(document, dict) or "config" not in document:
                continue  # a fragment of a stack file
            examples += 1
            jsonschema.validate(document, schema)
            config.load(document["config"]["thanos:config"], source=page.name)
    assert examples >= 3


def table(page: Path, header: str) -> list[list[str]]:
    """The rows (cells stripped) of the page's table whose header row starts with `header`."""
    lines = page.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def shipped_secrets() -> dict[str, list[str]]:
    """Per shipped stack, the secrets the preflight lists under "Secrets to set before `pulumi up`" (a shipped stack
    file holds none of them)."""
    import yaml

    import config
    from preflight.report import secrets_to_set

    found = {}
    for page in sorted(ROOT.glob("Pulumi.*.yaml")):
        raw = yaml.safe_load(page.read_text())["config"]
        found[page.name.split(".")[1]] = sorted(s.key for s in secrets_to_set(raw, config.load(config.fold_path_keys(raw))))
    return found


def test_the_secrets_tables_list_what_the_preflight_asks_each_shipped_stack_for():
    """The README's and docs/outputs-and-secrets.md's per-stack secrets are what the code asks for: the preflight's
    list, from the entry point's auth and each Alertmanager receiver's `*-secret` keys."""
    expected = shipped_secrets()
    documented: dict[str, list[str]] = {}
    for stacks, secrets in table(ROOT / "docs" / "outputs-and-secrets.md", "| stack | secrets |"):
        for stack in stacks.split(", "):
            documented[stack] = sorted(re.findall(r"`([^`]+)`", secrets))
    assert documented == expected
    readme = {stack: sorted(re.findall(r"`([^`]+)`", row[-1]))
              for row in table(README, "| cloud |") for stack in re.findall(r"\(`(\w+)`\)", row[0])}
    assert readme == {stack: expected[stack] for stack in readme} and set(readme) == {"prod", "gcp", "azure"}


def test_the_secrets_reference_names_every_secret_key_the_code_reads():
    """docs/outputs-and-secrets.md's key table names each receiver integration's `*-secret` key and the entry point's
    secrets (`require_secret` and `get_secret` in components/)."""
    import typing

    from config.observability import ReceiverSpec

    keys = " ".join(row[0] for row in table(ROOT / "docs" / "outputs-and-secrets.md", "| key |"))
    for kind, field in ReceiverSpec.model_fields.items():
        integration = next((a for a in typing.get_args(field.annotation) if a is not type(None)), None)
        for name, secret in (integration.model_fields.items() if integration else ()):
            if name.endswith("_secret"):
                assert f"`{kind}.{secret.alias}`" in keys, (kind, secret.alias)
    read = set()
    for path in (ROOT / "components").rglob("*.py"):
        read |= set(re.findall(r"config\.(?:require|get)_secret\(\"(\w+)\"\)", path.read_text()))
    assert read and all(f"`thanos:{key}`" in keys for key in read), (read, keys)
