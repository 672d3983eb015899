"""The README front page stays short, and every link in it and in docs/ leads somewhere."""

import glob
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(
  os.path.relpath(path, REPO)
  for path in glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True)
)
# [text](target) and ![alt](target), outside code.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _read(path):
  with open(os.path.join(REPO, path), encoding="utf-8") as f:
    return f.read()


def _without_code(text):
  return re.sub(r"```.*?```", "", text, flags=re.S)


def _anchors(path):
  """GitHub's anchors of a page's headings."""
  anchors = set()
  for heading in re.findall(r"^#+ (.+)$", _without_code(_read(path)), flags=re.M):
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
    anchors.add(slug)
  return anchors


def test_the_front_page_is_at_most_15_kb_and_starts_with_the_quick_start():
  readme = _read("README.md")
  assert len(readme.encode("utf-8")) <= 15_000
  commands = re.findall(r"```sh\n(.*?)\n```", readme, flags=re.S)[:2]
  assert "--gin_file=gin/tvn/smoke_latency.gin" in commands[0]
  assert "python -m pytest -q" in commands[1]


def test_every_docs_page_is_linked_from_the_front_page():
  linked = {os.path.normpath(t.split("#")[0]) for t in _LINK.findall(_read("README.md"))}
  assert set(PAGES) - {"README.md"} <= linked


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
  folder = os.path.dirname(os.path.join(REPO, page))
  for target in _LINK.findall(_without_code(_read(page))):
    if re.match(r"[a-z]+://", target):
      continue
    path, _, anchor = target.partition("#")
    resolved = os.path.normpath(os.path.join(folder, path)) if path else os.path.join(REPO, page)
    assert os.path.exists(resolved), f"{page}: {target} does not exist"
    if anchor:
      assert anchor in _anchors(os.path.relpath(resolved, REPO)), f"{page}: no heading #{anchor}"
