"""How runs look in JupyterLab, light and dark: math, errors, wide output, sections, no flash,
and the history as turns (separated, older ones folded, failed and cancelled runs marked).

Drives Debian's chromium with Playwright against a real JupyterLab and kernel. The
quickstart shows the first-cell "Starting…" line and the swap from the live widget
to the final outputs (its height sampled by a ResizeObserver, which reports every
frame whose layout changed, after the page's own scripts ran and before paint). A
tour notebook, written here with its own replay cassette (``tour.jsonl``), covers
the harder cases. Screenshots: ``test-artifacts/browser/``; with
``ASST_MAGIC_SCREENSHOT=1`` the light-theme analysis cell also becomes README's
``notebooks/screenshot.png``.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import Any

import nbformat
from test_jupyterlab import (
    ANALYSIS_CELL,
    JS_ALL_EXECUTED,
    JS_CELL_NODE,
    JS_KERNEL_IDLE,
    JS_PANEL,
    NOTEBOOK,
    QUESTION_CELL,
    _slow_down_cassette,
)

TOUR = "tour.ipynb"
HERE = Path(__file__).parent
SCREENSHOT = HERE.parents[1] / "notebooks" / "screenshot.png"
RUN_TIMEOUT = 180_000  # ms
# ms from the previous cell finishing (as the page shows it) to "Starting…" on screen. The
# goal is 100 ms: 0-70 ms measured alone on a shared 2-core machine, up to ~120 ms while
# the rest of the suite runs beside it; the bound leaves that room so CI is not flaky.
STARTING_WITHIN = 150
HEIGHT_SLACK = 4  # px the output may lose when the live widget is swapped for the outputs

TOUR_SETUP = '''import os
import tempfile

import asst_magic

scratch = tempfile.TemporaryDirectory(prefix="asst-magic-tour-")
os.environ["ASST_MAGIC_DATA_DIR"] = scratch.name
%load_ext asst_magic
%config AssistantMagics.files_dir = scratch.name + "/files"
%config AssistantMagics.cassette = "tour.jsonl"


@asst_magic.function
def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: the city.
    """
    return "sunny"'''
TOUR_CELLS = {
    "money": "How did revenue do?",
    "wide": "Show the wide table.",
    "error": "What is in the revenue column?",
    "function": "Weather in Paris?",
    "failed": "Which model answers?",
    "cancelled": "Tell me a long story.",  # ■ pressed while it streams
}
HISTORY_CELL = "%asst_thread history"

# ── JavaScript run in the page ──────────────────────────────────────────────────────

JS_WATCH = """([node, question, setup]) => {
  const wrap = node.querySelector('.jp-Cell-outputWrapper');
  const rec = {sizes: [], frames: 0, openWhileLive: false, stop: false, t0: performance.now(),
               wasLive: false, swapped: false,
               firstText: null, firstTextAt: null, setupDoneAt: null};
  window.__watch = rec;
  const live = () => !!wrap.querySelector('.asst-live');
  new ResizeObserver(() => {
    rec.sizes.push({t: performance.now() - rec.t0, h: wrap.getBoundingClientRect().height,
                    live: live()});
  }).observe(wrap);
  const prompt = setup.querySelector('.jp-InputPrompt');
  const frame = () => {
    rec.frames += 1;
    if (live()) rec.wasLive = true; else if (rec.wasLive) rec.swapped = true;
    if (live() && wrap.querySelector('details.asst-code[open]')) rec.openWhileLive = true;
    const text = question.querySelector('.jp-Cell-outputWrapper').innerText.trim();
    if (rec.firstText === null && text) {
      rec.firstText = text; rec.firstTextAt = performance.now() - rec.t0;
    }
    if (rec.setupDoneAt === null && /\\[\\d+\\]/.test(prompt.innerText)) {
      rec.setupDoneAt = performance.now() - rec.t0;  // the next cell starts in the kernel now
    }
    if (!rec.stop) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}"""

JS_STOP_WATCH = """(node) => {
  window.__watch.stop = true;
  const wrap = node.querySelector('.jp-Cell-outputWrapper');
  return {...window.__watch, settled: wrap.getBoundingClientRect().height};
}"""

JS_VISIBLE = """(el) => !!el && el.getClientRects().length > 0
  && el.getBoundingClientRect().height > 0"""

JS_WIDE = """(node) => {
  const pre = node.querySelector('pre.asst-logs');
  const style = getComputedStyle(pre);
  const lines = pre.innerText.split('\\n').filter(l => l.trim()).length;
  return {whiteSpace: style.whiteSpace, scroll: pre.scrollWidth, client: pre.clientWidth,
          height: pre.getBoundingClientRect().height, lines,
          lineHeight: parseFloat(style.lineHeight) || 1.35 * parseFloat(style.fontSize)};
}"""

JS_COLOURS = """(node) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const contrast = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
  let bg = null;
  for (let el = node; el && !bg; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor;
    if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') bg = rgb(c);
  }
  bg = bg || [255, 255, 255];
  const of = (sel) => {
    const el = node.querySelector(sel);
    return el ? rgb(getComputedStyle(el).color) : null;
  };
  const out = {dark: lum(bg) < 0.2};
  for (const [name, sel] of [['summary', 'summary'], ['error', '.asst-error-message'],
                             ['status', '.asst-status']]) {
    const c = of(sel);
    out[name] = c ? contrast(c, bg) : null;
  }
  return out;
}"""

JS_RUN_CELL = f"""async ([path, marker]) => {{
  const panel = ({JS_PANEL})(path);
  panel.content.activeCellIndex = panel.content.widgets.findIndex(
    c => c.model.sharedModel.getSource().includes(marker));
  await window.jupyterapp.commands.execute('notebook:run-cell');
}}"""

JS_TURNS = """(node) => {
  // A folded <details> keeps its content laid out but unrendered (content-visibility).
  const shown = (el) => !!el && el.checkVisibility() && el.getBoundingClientRect().height > 0;
  const outputs = Array.from(node.querySelectorAll('.jp-OutputArea-output'));
  return {
    perOutput: outputs.map(o => o.querySelectorAll('details.asst-turn').length)
      .filter(n => n > 0),
    turns: Array.from(node.querySelectorAll('details.asst-turn')).map(t => {
      const summary = t.querySelector(':scope > summary');
      const style = getComputedStyle(summary);
      const body = Array.from(t.children).filter(c => c !== summary);
      const box = t.getBoundingClientRect();
      return {open: t.open, summary: summary.innerText, text: t.innerText,
              top: box.top, bottom: box.bottom, bodyShown: body.some(shown),
              rule: parseFloat(getComputedStyle(t).borderTopWidth),
              ruleStyle: getComputedStyle(t).borderTopStyle,
              summaryHeight: summary.getBoundingClientRect().height,
              lineHeight: parseFloat(style.lineHeight) || 1.4 * parseFloat(style.fontSize),
              math: t.querySelectorAll('mjx-container').length,
              plainMath: t.querySelectorAll(
                'summary mjx-container, .asst-status mjx-container').length,
              status: Array.from(t.querySelectorAll('.asst-status')).map(s => s.innerText),
              folded: t.querySelectorAll('details.asst-code:not([open])').length};
    }),
  };
}"""

JS_MARK_COLOURS = """(node) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let bg = null;
  for (let el = node; el && !bg; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor;
    if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') bg = rgb(c);
  }
  bg = bg || [255, 255, 255];
  const colour = (el) => getComputedStyle(el).color;
  const contrast = (c) => {
    const [a, b] = [lum(rgb(c)), lum(bg)];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  };
  const turns = Array.from(node.querySelectorAll('details.asst-turn'));
  return turns.map(t => {
    const mark = t.querySelector('summary .asst-mark');
    const status = t.querySelector('.asst-status');
    const question = t.querySelector('summary');
    return {mark: mark && colour(mark), status: status && colour(status),
            markContrast: mark && contrast(colour(mark)),
            questionContrast: contrast(colour(question))};
  });
}"""

JS_SET_THEME = """async (theme) => {
  await window.jupyterapp.commands.execute('apputils:change-theme', {theme});
}"""


# ── tests ───────────────────────────────────────────────────────────────────────────


def test_first_cell_says_starting_and_the_swap_keeps_the_height(
    lab: Any, page: Any, artifacts: Path
) -> None:
    """The quickstart live: "Starting…" at once, sections open while live, no height drop."""
    _slow_down_cassette(lab.root / "quickstart.jsonl")
    _open_with_kernel(page, lab, NOTEBOOK)
    analysis = _cell(page, NOTEBOOK, ANALYSIS_CELL)
    question = _cell(page, NOTEBOOK, QUESTION_CELL)
    setup = _cell(page, NOTEBOOK, "%load_ext asst_magic")
    page.evaluate(JS_WATCH, [analysis, question, setup])
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.wait_for_function(JS_ALL_EXECUTED, arg=NOTEBOOK, timeout=RUN_TIMEOUT)
    page.wait_for_timeout(500)  # let the last frames after the swap be observed
    watch = analysis.evaluate(JS_STOP_WATCH)

    assert watch["firstText"].startswith("Starting the local assistant server"), watch["firstText"]
    waited = watch["firstTextAt"] - watch["setupDoneAt"]
    print(f"\n'Starting…' shown {waited:.0f} ms after the previous cell finished")
    assert waited < STARTING_WITHIN, f"'Starting…' took {waited:.0f} ms to appear"
    _assert_no_height_drop(watch)
    assert watch["openWhileLive"], "the code section was not open while the code ran"
    _assert_folds_and_unfolds(analysis, "details.asst-code", "read_csv")
    analysis.scroll_into_view_if_needed()
    analysis.screenshot(path=artifacts / "look-light-analysis.png")
    if os.environ.get("ASST_MAGIC_SCREENSHOT") == "1":
        shutil.copyfile(artifacts / "look-light-analysis.png", SCREENSHOT)


def test_tour_reads_well_in_light_and_dark(lab: Any, page: Any, artifacts: Path) -> None:
    """Money, math, a wide table, an error, a function call and a failed run, both themes."""
    shutil.copyfile(HERE / "tour.jsonl", lab.root / "tour.jsonl")
    _write_tour(lab.root / TOUR)
    _open_with_kernel(page, lab, TOUR)
    cells = {name: _cell(page, TOUR, text) for name, text in TOUR_CELLS.items()}
    history = _cell(page, TOUR, HISTORY_CELL)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    _press_stop_while_it_streams(page, cells["cancelled"])
    for name in ("failed", "cancelled"):
        page.wait_for_function(
            "(node) => !!node.querySelector('.asst-status.asst-final')", arg=cells[name]
        )
    # "Run All" stopped at the ■; a cell queued before the kernel is idle again is dropped.
    page.wait_for_function(JS_KERNEL_IDLE, arg=TOUR, timeout=RUN_TIMEOUT)
    page.evaluate(JS_RUN_CELL, [TOUR, HISTORY_CELL])
    page.wait_for_function(JS_ALL_EXECUTED, arg=TOUR, timeout=RUN_TIMEOUT)
    page.wait_for_function(
        "(node) => node.querySelectorAll('details.asst-turn').length > 0", arg=history
    )
    for theme, name in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
        page.evaluate(JS_SET_THEME, theme)
        page.wait_for_function(
            "(light) => document.body.dataset.jpThemeLight === light",
            arg="true" if name == "light" else "false",
        )
        _assert_math_only_where_meant(cells)
        _assert_error_is_readable(cells["error"])
        _assert_wide_output_scrolls(cells["wide"])
        _assert_folds_and_unfolds(cells["function"], "details.asst-function", '"city": "Paris"')
        _assert_readable_colours(cells["error"], dark=name == "dark")
        _assert_history_reads_as_turns(history, artifacts / f"tour-{name}-history-open.png")
        _assert_turns_are_marked(history)
        for key, cell in {**cells, "history": history}.items():
            cell.scroll_into_view_if_needed()
            cell.screenshot(path=artifacts / f"tour-{name}-{key}.png")


# ── assertions ──────────────────────────────────────────────────────────────────────


def _assert_no_height_drop(watch: dict[str, Any]) -> None:
    """Every layout the ResizeObserver saw after the live view, and the settled one, are as tall."""
    sizes = watch["sizes"]
    live = [i for i, s in enumerate(sizes) if s["live"]]
    assert live and watch["swapped"], f"the live widget was never seen, or never replaced: {sizes}"
    before = sizes[live[-1]]["h"]
    after = [round(s["h"]) for s in sizes[live[-1] + 1 :]] + [round(watch["settled"])]
    assert min(after) >= before - HEIGHT_SLACK, (
        f"the output dropped from {before:.0f} px to {min(after)} px during the swap "
        f"(heights after it: {after}; {watch['frames']} frames watched)"
    )
    assert abs(after[-1] - before) <= HEIGHT_SLACK, (
        f"the final outputs are {after[-1]} px tall, the live view was {before:.0f} px"
    )


def _assert_folds_and_unfolds(cell: Any, selector: str, inside: str) -> None:
    section = cell.query_selector(selector)
    assert section is not None, f"no {selector} section"
    assert section.get_attribute("open") is None, f"{selector} is not folded after the run"
    assert inside not in section.inner_text()
    section.query_selector("summary").click()
    assert section.get_attribute("open") is not None
    assert inside in section.inner_text(), f"{selector} does not show {inside!r} when opened"
    section.query_selector("summary").click()
    assert section.get_attribute("open") is None


def _assert_math_only_where_meant(cells: dict[str, Any]) -> None:
    money = cells["money"].query_selector(".jp-RenderedMarkdown")
    assert money is not None
    text = money.inner_text()
    for amount in ("$1.2M", "$3.4M", "US$0.9M"):
        assert amount in text, f"{amount} is not shown as text: {text!r}"
    assert len(money.query_selector_all("mjx-container")) == 2, "the two formulas did not render"
    for cell in cells.values():
        for line in cell.query_selector_all(".asst-status, .asst-error, summary"):
            assert not line.query_selector("mjx-container"), f"math in {line.inner_text()!r}"
    status = cells["failed"].query_selector(".asst-status").inner_text()
    assert "$ASST_MAGIC_CASSETTE" in status, status


def _assert_error_is_readable(cell: Any) -> None:
    message = cell.query_selector(".asst-error-message")
    line = cell.query_selector(".asst-error-line")
    assert message.evaluate(JS_VISIBLE) and message.inner_text() == "KeyError: 'revenue'"
    assert line.evaluate(JS_VISIBLE) and "df['revenue']" in line.inner_text()
    _assert_folds_and_unfolds(cell, "details.asst-traceback", "pandas/core/frame.py")
    assert "Could not get source" not in cell.inner_text()


def _assert_wide_output_scrolls(cell: Any) -> None:
    wide = cell.evaluate(JS_WIDE)
    assert wide["whiteSpace"] == "pre", wide
    assert wide["scroll"] > wide["client"], f"the wide table does not scroll: {wide}"
    # One rendered line per printed line (plus room for the scrollbar): nothing wrapped.
    assert wide["height"] < (wide["lines"] + 1.5) * wide["lineHeight"], wide


def _assert_readable_colours(cell: Any, *, dark: bool) -> None:
    colours = cell.evaluate(JS_COLOURS)
    assert colours["dark"] == dark, colours
    assert colours["error"] >= 3, f"the error line is hard to read: {colours}"
    assert colours["summary"] >= 2.5 and colours["status"] >= 2.5, colours


def _assert_history_reads_as_turns(cell: Any, screenshot: Path) -> None:
    """One output per turn under a rule; older turns folded to one line, the newest open."""
    shown = cell.evaluate(JS_TURNS)
    turns = shown["turns"]
    assert shown["perOutput"] == [1] * len(TOUR_CELLS), shown["perOutput"]
    questions = [t["summary"].split(" · ")[0] for t in turns]
    assert questions == [f"You {text}" for text in TOUR_CELLS.values()], questions
    for before, after in itertools.pairwise(turns):
        assert after["top"] >= before["bottom"], "turns overlap"
    for turn in turns:
        assert turn["rule"] >= 1 and turn["ruleStyle"] == "solid", "no rule above a turn"
        assert turn["summaryHeight"] < 2 * turn["lineHeight"], f"two lines: {turn['summary']}"
        assert turn["plainMath"] == 0, f"math in a summary or status line: {turn['text']!r}"
    *older, newest = turns
    assert newest["open"] and newest["bodyShown"], "the newest turn is not open"
    for turn in older:
        assert not turn["open"] and not turn["bodyShown"], f"not folded: {turn['summary']}"
    assert turns[1]["folded"] == 1, "the code step inside a turn is not folded"
    # The first turn unfolds with its answer as a run showed it (math typeset, $ as text).
    first = cell.query_selector("details.asst-turn")
    assert "$1.2M" not in first.inner_text()
    first.query_selector("summary").click()
    opened = cell.evaluate(JS_TURNS)["turns"][0]
    assert opened["open"] and opened["bodyShown"]
    assert "$1.2M" in opened["text"] and "US$0.9M" in opened["text"], opened["text"]
    assert opened["math"] == 2, "the two formulas did not render in the history"
    first.query_selector("summary").click()
    assert not cell.evaluate(JS_TURNS)["turns"][0]["open"]
    # Every turn opened: the work shows as in a run, and no markup leaks out as text.
    folded = cell.query_selector_all("details.asst-turn:not([open]) > summary")
    for summary in folded:
        summary.click()
    text = cell.inner_text()
    for leak in ("<details", "<div", "&#", "</", "@@"):
        assert leak not in text, f"{leak!r} shows as text in the history"
    assert "df['revenue']" in text and "quarterly_revenue_21" in text, text
    assert "Could not get source" not in text
    cell.scroll_into_view_if_needed()
    cell.screenshot(path=screenshot)
    for summary in folded:
        summary.click()


def _assert_turns_are_marked(cell: Any) -> None:
    """The failed and the cancelled run are marked in their summaries and at their ends."""
    names = list(TOUR_CELLS)
    failed_at, cancelled_at = names.index("failed"), names.index("cancelled")
    turns = cell.evaluate(JS_TURNS)["turns"]
    failed, cancelled = turns[failed_at], turns[cancelled_at]
    assert failed["summary"].endswith(" · ✗ failed"), failed["summary"]
    assert cancelled["summary"].endswith(" · ■ cancelled"), cancelled["summary"]
    assert cancelled["status"] == ["■ cancelled"] and "Once upon" in cancelled["text"]
    assert "word by word." not in cancelled["text"], "the cancelled run kept streaming"
    for n, turn in enumerate(turns):
        if n not in (failed_at, cancelled_at):  # completed runs carry no mark
            assert " · " not in turn["summary"] and not turn["status"], turn["summary"]
    summary = cell.query_selector_all("details.asst-turn > summary")[failed_at]
    summary.click()
    [line] = cell.evaluate(JS_TURNS)["turns"][failed_at]["status"]
    assert line.startswith("✗ failed: No model: set $ASST_MAGIC_CASSETTE"), line
    colours = cell.evaluate(JS_MARK_COLOURS)
    summary.click()
    red, grey = colours[failed_at], colours[cancelled_at]
    assert red["mark"] == red["status"] != grey["mark"], colours  # the error colour
    assert red["markContrast"] >= 3 and grey["markContrast"] >= 2.5, colours
    assert all(c["questionContrast"] >= 4.5 for c in colours), colours


# ── helpers ─────────────────────────────────────────────────────────────────────────


def _press_stop_while_it_streams(page: Any, cell: Any) -> None:
    """The ■ button (interrupt the kernel) once the live answer shows its first words."""
    page.wait_for_function(
        "(node) => (node.querySelector('.asst-live')?.innerText || '').includes('Once upon')",
        arg=cell,
        timeout=RUN_TIMEOUT,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:interrupt-kernel')")


def _write_tour(path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = (
        [nbformat.v4.new_code_cell(TOUR_SETUP)]
        + [nbformat.v4.new_code_cell(f"%%assistant\n{text}") for text in TOUR_CELLS.values()]
        + [nbformat.v4.new_code_cell(HISTORY_CELL)]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, path)


def _open_with_kernel(page: Any, lab: Any, path: str) -> None:
    page.goto(lab.lab_url(path))
    page.wait_for_function(JS_KERNEL_IDLE, arg=path, timeout=60_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")


def _cell(page: Any, path: str, marker: str) -> Any:
    handle = page.evaluate_handle(JS_CELL_NODE, [path, marker]).as_element()
    assert handle is not None, f"no cell containing {marker!r} in {path}"
    return handle
