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
  return lib.render(text);
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
    this.statusNode = document.createElement("div");
    this.statusNode.className = "asst-status jp-OutputArea-output";
    el.append(this.statusNode);
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
      this.el.insertBefore(part.node, this.statusNode);
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
  return () => {
    clearInterval(timer);
    model.off("change", pump);
  };
}

export default { render };
