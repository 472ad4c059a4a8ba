"""What a person sees in JupyterLab: the quickstart streaming live, then reopened from disk.

Drives Debian's chromium with Playwright against a real JupyterLab server and a
real kernel. The quickstart's replay cassette (copied) gets a per-chunk delay so
the answer streams slowly enough to watch. Screenshots: ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import nbformat

NOTEBOOK = "quickstart.ipynb"
CASSETTE = "quickstart.jsonl"
CHUNK_DELAY = 0.12  # seconds before each replayed chunk: slow enough to see it grow
QUESTION_CELL = "What can you do with a CSV"  # the first %%assistant cell (a text answer)
ANALYSIS_CELL = "%%assistant --file sales.csv"  # the code-interpreter cell (code, logs, plot)
RUN_TIMEOUT = 120_000  # ms, for the whole notebook

# ── JavaScript run in the page (window.jupyterapp: --LabApp.expose_app_in_browser) ──

JS_PANEL = """(path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  return Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
}"""

JS_CELL_NODE = f"""([path, marker]) => {{
  const panel = ({JS_PANEL})(path);
  const cell = panel.content.widgets.find(
    c => c.model.type === "code" && c.model.sharedModel.getSource().includes(marker));
  return cell ? cell.node : null;
}}"""

JS_KERNEL_IDLE = f"""(path) => {{
  const panel = ({JS_PANEL})(path);
  const kernel = panel && panel.context.isReady && panel.sessionContext.session?.kernel;
  return !!kernel && kernel.status === 'idle';
}}"""

JS_RENDERED = f"""(path) => {{
  const panel = ({JS_PANEL})(path);
  return !!panel && panel.context.isReady && panel.content.widgets.length > 0
    && panel.content.node.querySelectorAll('.jp-OutputArea-output').length > 0;
}}"""

JS_ALL_EXECUTED = f"""(path) => {{
  const panel = ({JS_PANEL})(path);
  const code = panel.content.widgets.filter(c => c.model.type === 'code');
  return code.every(c => c.model.executionCount !== null && c.model.executionState !== 'running');
}}"""

# Samples, at every animation frame (what is painted), how many leading words of the
# expected answer are on screen and whether the live widget is what shows them.
JS_RECORD_GROWTH = """(node, words) => {
  const norm = (s) => s.replace(/\\s+/g, ' ').trim();
  const rec = {states: [], words: words.length, stop: false};
  window.__growth = rec;
  const sample = () => {
    const text = norm(node.innerText);
    let n = 0;
    for (let k = words.length; k > 0; k--) {
      if (text.includes(words.slice(0, k).join(' '))) { n = k; break; }
    }
    const live = !!node.querySelector('.asst-live');
    const last = rec.states[rec.states.length - 1];
    if (!last || last.n !== n || last.live !== live) rec.states.push({n, live});
    if (!rec.stop) requestAnimationFrame(sample);
  };
  requestAnimationFrame(sample);
}"""

JS_STOP_RECORDING = "() => { window.__growth.stop = true; return window.__growth; }"

JS_PARTIAL_SHOWN = """() => !!window.__growth
  && window.__growth.states.some(s => s.n > 0 && s.n < window.__growth.words)"""

JS_CODE_COLOURS = """(node) => {
  const pre = Array.from(node.querySelectorAll('.jp-OutputArea-output pre'))
    .find(p => p.textContent.includes('read_csv'));
  if (!pre) return null;
  const spans = Array.from(pre.querySelectorAll('span[class]'));
  const colour = (el) => getComputedStyle(el).color;
  const keyword = spans.find(s => s.classList.contains('kn') || s.classList.contains('k'));
  return {
    spans: spans.length,
    classes: Array.from(new Set(spans.map(s => s.className))),
    colours: Array.from(new Set(spans.map(colour))),
    keyword: keyword ? colour(keyword) : null,
    plain: colour(pre),
  };
}"""

JS_IMAGE_LOADED = """(node) => {
  const img = node.querySelector('.jp-OutputArea-output img');
  return !!img && img.complete && img.naturalWidth > 0;
}"""

JS_TRANSCRIPT_SHOWN = f"""([question, analysis]) => question.innerText.includes('pandas')
  && /\\bcompleted\\b/.test(analysis.innerText)
  && !!analysis.querySelector('pre span.kn')
  && ({JS_IMAGE_LOADED})(analysis)"""

JS_SAVE_AND_CLOSE = f"""async (path) => {{
  const panel = ({JS_PANEL})(path);
  await panel.context.save();
  await window.jupyterapp.commands.execute('application:close-all');
}}"""

JS_OPEN_WITHOUT_KERNEL = """async (path) => {
  const app = window.jupyterapp;
  await app.restored;
  // The state "No Kernel" gives: the notebook factory neither prefers nor starts one.
  const factory = app.docRegistry.getWidgetFactory('Notebook');
  factory._preferKernel = false;
  factory._canStartKernel = false;
  await app.commands.execute('docmanager:open', {path});
}"""


# ── the test ───────────────────────────────────────────────────────────────────────


def test_quickstart_streams_live_and_reopens_from_disk(lab: Any, page: Any, artifacts: Path):
    """Committed transcript shows; a run streams live; the saved file reopens without a kernel."""
    words = _slow_down_cassette(lab.root / CASSETTE)

    _open_without_kernel(page, lab)
    _assert_transcript(page, "committed")
    _screenshots(page, artifacts, "00-committed-no-kernel")
    page.close()

    page = page.context.new_page()
    _run_all_watching_answer(page, lab, words, artifacts)
    _assert_transcript(page, "after the run")
    _screenshots(page, artifacts, "02-completed")
    _save_and_close(page, lab)
    _assert_saved_file_is_static(lab.root / NOTEBOOK)

    _shut_down_kernels(lab)
    page = page.context.new_page()
    _open_without_kernel(page, lab)
    _assert_transcript(page, "reopened without a kernel")
    _screenshots(page, artifacts, "03-reopened-no-kernel")
    assert _api(lab, "GET", "/api/kernels") == [], "reopening the notebook started a kernel"


# ── steps ──────────────────────────────────────────────────────────────────────────


def _slow_down_cassette(path: Path) -> list[str]:
    """Give every entry a per-chunk delay; return the words of the first answer's opening."""
    entries = [json.loads(line) for line in path.read_text().splitlines() if _is_entry(line)]
    path.write_text("".join(json.dumps({**e, "delay": CHUNK_DELAY}) + "\n" for e in entries))
    first = next(e for e in entries if e["user"].startswith(QUESTION_CELL))
    text = "".join(first["turns"][0]["text"])
    return text.split("\n\n")[0].split()


def _is_entry(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _open_without_kernel(page: Any, lab: Any) -> None:
    page.goto(f"{lab.url}/lab?reset&token={lab.token}")
    page.wait_for_function("() => !!window.jupyterapp")
    page.evaluate(JS_OPEN_WITHOUT_KERNEL, NOTEBOOK)
    page.wait_for_function(JS_RENDERED, arg=NOTEBOOK)


def _run_all_watching_answer(page: Any, lab: Any, words: list[str], artifacts: Path) -> None:
    """Run every cell; capture the first answer while it grows, with the live widget."""
    page.goto(lab.lab_url(NOTEBOOK))
    page.wait_for_function(JS_KERNEL_IDLE, arg=NOTEBOOK, timeout=60_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    _output(page, QUESTION_CELL).evaluate(JS_RECORD_GROWTH, words)
    # Not awaited: the command's promise settles only when the last cell has run.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

    _wait_quietly(page, JS_PARTIAL_SHOWN, None, timeout=60_000)
    # A window screenshot: an element screenshot would wait for the growing cell to keep still.
    _cell(page, QUESTION_CELL).evaluate("(node) => node.scrollIntoView({block: 'start'})")
    page.screenshot(path=artifacts / "01-streaming.png")
    page.wait_for_function(JS_ALL_EXECUTED, arg=NOTEBOOK, timeout=RUN_TIMEOUT)
    _assert_grew_live(page.evaluate(JS_STOP_RECORDING))


def _assert_grew_live(growth: dict[str, Any]) -> None:
    states, total = growth["states"], growth["words"]
    partial = {s["n"] for s in states if 0 < s["n"] < total}
    assert len(partial) >= 2, f"the answer did not visibly grow: states seen {states}"
    assert any(s["live"] for s in states if 0 < s["n"] < total), (
        f"the growing answer was not shown by the live widget: {states}"
    )
    live = [s["n"] for s in states if s["live"]]
    assert live == sorted(live), f"the live answer flickered or shrank: {states}"
    assert states[-1]["n"] == total, f"the final answer is incomplete: {states[-1]}"
    assert not states[-1]["live"], "the live widget was not replaced by static outputs"


def _assert_transcript(page: Any, when: str) -> None:
    """The answer text, highlighted code, a loaded plot and "completed" are on screen."""
    question, analysis = _output(page, QUESTION_CELL), _output(page, ANALYSIS_CELL)
    _wait_quietly(page, JS_TRANSCRIPT_SHOWN, [question, analysis])  # outputs render async
    assert "pandas" in question.inner_text(), f"{when}: the text answer is missing"
    assert re.search(r"\bcompleted\b", analysis.inner_text()), f"{when}: no 'completed' status"
    _assert_highlighted(analysis.evaluate(JS_CODE_COLOURS), when)
    assert analysis.evaluate(JS_IMAGE_LOADED), f"{when}: the plot is not a loaded <img>"


def _assert_highlighted(code: dict[str, Any] | None, when: str) -> None:
    assert code is not None, f"{when}: no code block with the analysis code"
    assert code["spans"] >= 10, f"{when}: code is not split into Pygments tokens: {code}"
    assert {"kn", "nn"} <= set(code["classes"]), f"{when}: no Pygments token classes: {code}"
    assert len(code["colours"]) >= 3, f"{when}: tokens are not coloured differently: {code}"
    assert code["keyword"] != code["plain"], f"{when}: keywords look like plain text: {code}"


def _save_and_close(page: Any, lab: Any) -> None:
    page.evaluate(JS_SAVE_AND_CLOSE, NOTEBOOK)
    page.close()


def _assert_saved_file_is_static(path: Path) -> None:
    """The saved transcript is ordinary outputs (no widget views) with text, code and a PNG."""
    cells = nbformat.read(path, as_version=4).cells
    outputs = [o for c in cells if c.cell_type == "code" for o in c.outputs]
    mimes = [m for o in outputs for m in o.get("data", {})]
    assert "application/vnd.jupyter.widget-view+json" not in mimes, "a widget view was saved"
    assert "image/png" in mimes, "the saved notebook lost the plot"
    plain = "".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "read_csv" in plain and "completed" in plain, "the saved notebook lost the transcript"


def _shut_down_kernels(lab: Any) -> None:
    for session in _api(lab, "GET", "/api/sessions"):
        _api(lab, "DELETE", f"/api/sessions/{session['id']}")
    for kernel in _api(lab, "GET", "/api/kernels"):
        _api(lab, "DELETE", f"/api/kernels/{kernel['id']}")
    assert _api(lab, "GET", "/api/kernels") == []


# ── helpers ────────────────────────────────────────────────────────────────────────


def _screenshots(page: Any, artifacts: Path, name: str) -> None:
    """The window, and the analysis cell (code, logs, plot) on its own."""
    page.screenshot(path=artifacts / f"{name}.png")
    _cell(page, ANALYSIS_CELL).screenshot(path=artifacts / f"{name}-analysis-cell.png")


def _wait_quietly(page: Any, js: str, arg: Any, timeout: float = 30_000) -> None:
    """Wait until ``js`` holds; on timeout, return and let the precise assertions report."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(js, arg=arg, timeout=timeout)


def _cell(page: Any, marker: str) -> Any:
    """The DOM node of the notebook cell whose source contains ``marker``."""
    handle = page.evaluate_handle(JS_CELL_NODE, [NOTEBOOK, marker]).as_element()
    assert handle is not None, f"no cell containing {marker!r} in {NOTEBOOK}"
    return handle


def _output(page: Any, marker: str) -> Any:
    """The output area of that cell."""
    return _cell(page, marker).query_selector(".jp-Cell-outputWrapper")


def _api(lab: Any, method: str, path: str) -> Any:
    request = urllib.request.Request(
        lab.url + path, method=method, headers={"Authorization": f"token {lab.token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None
