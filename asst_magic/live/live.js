// The live view of one run. The kernel sends batches of small ops as model attributes
// b1, b2, ... (each sent once, kept by the model), so a view that renders late, or a
// second view of the same widget, replays them all. See asst_magic/live/ops.py.

const SLOT = "<!--asst-slot-->";
const SAFE_URL = /^(https?:|mailto:|data:image\/|#|\/|\.|[^:]*$)/i;
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => ESCAPES[c]);
}

// The Markdown library arrives in a separate widget, sent once per kernel (see widget.py).
function library() {
  const g = globalThis;
  if (!g.__asstMagicMarkdown) {
    let resolve;
    const ready = new Promise((r) => (resolve = r));
    g.__asstMagicMarkdown = { ready, resolve, render: null };
  }
  return g.__asstMagicMarkdown;
}

function renderMarkdown(text) {
  const lib = library();
  if (!lib.render) {
    return `<pre style="white-space:pre-wrap;margin:0">${escapeHtml(text)}</pre>`;
  }
  return lib.render(closeOpen(text));
}

// Half-written Markdown closed for display only (the text itself only grows): an open
// code fence, $$ block, code span or ** is closed, so no raw markers flash while it
// streams. The same rules as asst_magic/markup.py: tests/browser/test_live_markdown.py
// runs this in chromium on a growing answer and compares the two.
function closeOpen(text) {
  const lines = text.split("\n");
  let fence = null;
  for (const line of lines) {
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence === null && m) fence = m[1];
    else if (fence !== null && line.trim().startsWith(fence) && new Set(line.trim()).size === 1) fence = null;
  }
  if (fence !== null) return text + (text.endsWith("\n") ? "" : "\n") + fence;
  const prose = text.replace(/^ {0,3}(`{3,}|~{3,})[\s\S]*?^ {0,3}\1[`~]*\s*$/gm, "");
  const paragraph = prose.split("\n\n").pop();
  const spans = paragraph.replace(/(?<!`)(`+)(?!`)[\s\S]+?(?<!`)\1(?!`)/g, "");
  let tail = "";
  const tick = /(?<!`)`+(?!`)/.exec(spans);
  if (tick) tail += tick[0];
  const plain = tick ? spans.slice(0, tick.index) : spans;
  if (((prose.match(/\$\$/g) || []).length) % 2) tail += "$$";
  if (((plain.match(/\*\*/g) || []).length) % 2) tail += "**";
  return text + tail;
}

// The swap from this live view to the final outputs clears the cell's output area
// first; JupyterLab's own guard measures the height after the clear, so without this
// the cell collapses to a line for a frame or more. The view remembers the output's
// height and, when it is removed, pins it until the final status line is there with
// its images decoded and the outputs as tall again (at most 1.5 s).
function holdHeight(el) {
  let wrap = null;
  let live = 0;
  const observer = new ResizeObserver(() => {
    wrap = wrap || el.closest(".jp-Cell-outputWrapper");
    if (wrap && el.isConnected) live = wrap.getBoundingClientRect().height;
  });
  observer.observe(el);
  return () => {
    observer.disconnect();
    if (!wrap || !live) return;
    const area = wrap.querySelector(".jp-Cell-outputArea") || wrap;
    const since = performance.now();
    wrap.style.minHeight = `${live}px`;
    const check = () => {
      const done = area.querySelector(".asst-status.asst-final")
        && Array.from(area.querySelectorAll("img")).every((img) => img.complete);
      const tall = area.getBoundingClientRect().height >= live - 2;
      if ((done && tall) || performance.now() - since > 1500) {
        wrap.style.minHeight = "";
        return;
      }
      requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  };
}

// Raw HTML in model text is shown as text; links and images keep only safe URLs.
function sanitized(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  for (const node of template.content.querySelectorAll("[href], [src]")) {
    for (const name of ["href", "src"]) {
      const url = node.getAttribute(name);
      if (url !== null && !SAFE_URL.test(url.trim())) node.removeAttribute(name);
    }
  }
  return template.content;
}

class LiveView {
  constructor(el) {
    this.el = el;
    this.parts = new Map();
    this.dirty = new Set();
    el.classList.add("asst-live");
    // The same markup as the final status line (render.status_line), so nothing moves.
    const box = document.createElement("div");
    box.className = "jp-RenderedHTMLCommon jp-RenderedHTML jp-OutputArea-output";
    this.statusNode = document.createElement("div");
    this.statusNode.className = "asst-status";
    this.statusNode.style.cssText = "font-size:var(--jp-ui-font-size1,13px);padding:1px 0";
    box.append(this.statusNode);
    el.append(box);
    this.statusBox = box;
    this.state = null;
  }

  apply(ops) {
    for (const [name, ...args] of ops) {
      if (typeof this[`op_${name}`] === "function") this[`op_${name}`](...args);
    }
    for (const part of this.dirty) {
      part.node.replaceChildren(sanitized(renderMarkdown(part.text)));
    }
    this.dirty.clear();
  }

  rerenderMarkdown() {
    for (const part of this.parts.values()) if (part.mode === "markdown") this.dirty.add(part);
    this.apply([]);
  }

  op_part(key, mode, shell) {
    let part = this.parts.get(key);
    if (!part) {
      part = { node: document.createElement("div") };
      this.el.insertBefore(part.node, this.statusBox);
      this.parts.set(key, part);
    }
    Object.assign(part, { mode, text: "", done: null, open: null });
    const kind = mode === "markdown" ? "jp-RenderedMarkdown" : "jp-RenderedHTML";
    part.node.className = `jp-RenderedHTMLCommon ${kind} jp-OutputArea-output`;
    if (mode === "markdown") {
      part.node.replaceChildren();
    } else if (mode === "html") {
      part.node.innerHTML = shell; // rendered by the kernel's renderer, text escaped there
    } else {
      part.node.innerHTML = shell.replace(
        SLOT, '<span class="asst-done"></span><span class="asst-open"></span>');
      part.done = part.node.querySelector(".asst-done");
      part.open = part.node.querySelector(".asst-open");
    }
  }

  op_shell(key, shell) {
    const part = this.parts.get(key);
    if (!part) return;
    if (part.mode === "markdown") return;
    const slot = '<span class="asst-done"></span><span class="asst-open"></span>';
    part.node.innerHTML = shell.replace(SLOT, slot);
    if (part.done) {
      part.node.querySelector(".asst-done").replaceWith(part.done);
      part.node.querySelector(".asst-open").replaceWith(part.open);
    }
  }

  op_add(key, text) {
    const part = this.parts.get(key);
    if (!part) return;
    part.text += text;
    if (part.mode === "markdown") this.dirty.add(part);
    else if (part.done) part.done.append(document.createTextNode(text));
  }

  op_set(key, text) {
    const part = this.parts.get(key);
    if (!part) return;
    part.text = text;
    if (part.mode === "markdown") this.dirty.add(part);
    else if (part.done) part.done.textContent = text;
  }

  op_code(key, doneHtml, openHtml) {
    const part = this.parts.get(key);
    if (!part || !part.done) return;
    if (doneHtml) part.done.insertAdjacentHTML("beforeend", doneHtml);
    part.open.innerHTML = openHtml;
  }

  op_status(before, after, elapsed, running, failed) {
    this.state = { before, after, elapsed, running, since: performance.now() };
    this.statusNode.style.color = failed
      ? "var(--jp-error-color1,#d9534f)" : "var(--jp-ui-font-color2,#888)";
    this.tick();
  }

  tick() {
    const s = this.state;
    if (!s) return;
    const seconds = s.elapsed + (s.running ? (performance.now() - s.since) / 1000 : 0);
    const words = [s.before, `${seconds.toFixed(1)} s`];
    if (s.after) words.push(s.after);
    this.statusNode.textContent = words.join(" · ");
  }
}

function render({ model, el }) {
  const view = new LiveView(el);
  let next = 1;
  const pump = () => {
    for (let ops = model.get(`b${next}`); ops; ops = model.get(`b${next}`)) {
      view.apply(ops);
      next += 1;
    }
  };
  pump();
  model.on("change", pump);
  const lib = library();
  if (!lib.render) lib.ready.then(() => view.rerenderMarkdown());
  const timer = setInterval(() => view.tick(), 100);
  const release = holdHeight(el);
  return () => {
    clearInterval(timer);
    model.off("change", pump);
    release();
  };
}

export default { render };
export { closeOpen }; // for tests/browser/test_live_markdown.py
