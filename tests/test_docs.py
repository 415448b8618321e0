"""The docs' Python pages run as written: every ```python block of a page, in order, in one namespace, in a
temporary working directory (so files the page writes land there)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks(page: str) -> list[str]:
    return BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))


def test_quickstart_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = python_blocks("quickstart.md")
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks:
        exec(compile(block, "docs/quickstart.md", "exec"), namespace)
    out = capsys.readouterr().out
    # the page's claims: verified, the class forgotten, and the hidden model's prototype attack far above mnemonic's
    assert "verified" in out
    scores = dict(
        line.split()[:2] for line in out.splitlines() if line.startswith(("mnemonic ", "logit_suppression "))
    )
    assert float(scores["logit_suppression"]) > float(scores["mnemonic"]) + 0.3
    assert (tmp_path / "vit-digits-no3" / "README.md").is_file()


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_doc_links_resolve(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (DOCS / target).exists(), f"{page} links to missing {target}"
