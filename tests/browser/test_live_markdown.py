"""The live view's half-written Markdown, in Debian's chromium: ``live.js closeOpen``.

The real ``live.js`` and the real Markdown library (the two anywidget modules the page
gets) run in a blank page; the real renderer and op diff feed them an answer growing
one character at a time, as a stream does. At every step what the user sees has no
raw ``**``, backtick or fence marker, and the page closes the text exactly as
``asst_magic.markup`` does (its Python twin, which renders the final answer).
"""

from __future__ import annotations

from typing import Any

import pytest

from asst_magic.accumulate import Snapshot, apply
from asst_magic.live import LiveDiff
from asst_magic.live.widget import _classes
from asst_magic.markup import DOLLAR, for_display
from asst_magic.render import Renderer

ANSWERS = [
    "Revenue grew **562,000** in Q2, led by `north_region`.\n\n"
    "```python\ndf.groupby('region')['revenue'].sum()\n```\n\n"
    "The fit is $$\\hat{\\beta} = (X^TX)^{-1}X^Ty$$ and **that** is all.\n",
    "| region | total |\n|---|---|\n| **north** | `1,200` |\n\n"
    "- item **one**\n- item `two`\n\n~~~\nplain code\n~~~\nDone.",
]
# A prefix ending in one of these is mid-marker (``*`` of ``**``, the first backtick
# of a fence): it may show for one repaint, as any typed character does.
MID_MARKER = "*`~$\\"

JS_LOAD = """async ([library, live]) => {
  const load = async (source) => (await import(
    URL.createObjectURL(new Blob([source], {type: 'text/javascript'})))).default;
  (await load(library)).initialize();
  const mod = await import(URL.createObjectURL(new Blob([live], {type: 'text/javascript'})));
  const state = {}, handlers = [];
  const model = {get: (k) => state[k], on: (_, f) => handlers.push(f), off: () => {}};
  const el = document.createElement('div');
  document.body.append(el);
  mod.default.render({model, el});
  let n = 0;
  window.__step = ([ops, text]) => {
    n += 1;
    state[`b${n}`] = ops;
    handlers.forEach((f) => f());
    const part = el.querySelector('.jp-RenderedMarkdown');
    const prose = part.cloneNode(true);
    prose.querySelectorAll('code, pre').forEach((c) => c.remove());
    return {closed: mod.closeOpen(text), prose: prose.textContent,
            code: Array.from(part.querySelectorAll('pre code')).map((c) => c.textContent)};
  };
}"""


@pytest.fixture
def live_page(page: Any) -> Any:
    """A blank page running the live view's two modules, as anywidget loads them."""
    library, live = _classes()
    page.set_content("<!doctype html><html><body></body></html>")
    page.evaluate(JS_LOAD, [library._esm, live._esm])
    return page


@pytest.mark.parametrize("answer", ANSWERS, ids=["prose-code-math", "table-list-tilde"])
def test_half_written_markdown_shows_no_raw_markers_while_it_streams(
    live_page: Any, answer: str
) -> None:
    snap, renderer, diff = Snapshot(run={"status": "in_progress"}), Renderer(), LiveDiff()
    message = {"id": "msg_1", "role": "assistant", "status": "in_progress", "content": []}
    apply(snap, "thread.message.created", message)
    for end in range(1, len(answer) + 1):
        delta = {"content": [{"index": 0, "type": "text", "text": {"value": answer[end - 1]}}]}
        apply(snap, "thread.message.delta", {"id": "msg_1", "delta": delta})
        ops, _ = diff.ops(renderer.live(snap))
        text = answer[:end]
        seen = live_page.evaluate("(args) => window.__step(args)", [ops, text])
        # The page closes the text as its Python twin does while an answer streams (which
        # also protects literal dollars: the page leaves those as they are).
        twin = for_display(text, streaming=True).replace(DOLLAR, "$")
        assert seen["closed"] == twin, repr(text)
        if text[-1] in MID_MARKER:
            continue
        for marker in ("**", "`", "~~~"):
            assert marker not in seen["prose"], f"{marker!r} shown raw after {text!r}"
        last = text.rsplit("\n", 1)[-1]
        if (text.count("```") % 2 or text.count("~~~") % 2) and last[:1] not in "`~":
            # An open fence shows as code, up to the line being written.
            assert seen["code"] and last in seen["code"][-1], repr(text)
