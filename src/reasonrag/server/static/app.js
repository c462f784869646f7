// The reasonrag web UI: no build step, no dependencies. Document text is untrusted, so it
// only ever reaches the page as text nodes, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("key");
keyInput.value = localStorage.getItem("reasonrag-key") || "";
keyInput.addEventListener("change", () => {
  localStorage.setItem("reasonrag-key", keyInput.value);
  refresh();
});

function headers(extra = {}) {
  const key = keyInput.value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function api(path, options = {}) {
  const reply = await fetch(path, { ...options, headers: headers(options.headers) });
  const body = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(body.error ? body.error.message : `HTTP ${reply.status}`);
  return body;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// ------------------------------------------------------------------------- asking
async function loadModels() {
  const select = $("method");
  const { data } = await api("/v1/models");
  select.replaceChildren(...data.map((m) => el("option", m.id.replace("reasonrag-", ""))));
  select.querySelectorAll("option").forEach((o, i) => { o.value = data[i].id; });
}

// Reads the server-sent events of a streamed chat completion, one JSON chunk at a time.
async function* events(reply) {
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data === "[DONE]") return;
      if (data) yield JSON.parse(data);
    }
  }
}

function showStep(step, snippets) {
  const item = el("li");
  if (step.thought) item.append(el("div", step.thought, "thought"));
  item.append(el("div", `${step.action} ${step.argument}`.trim(), "action"));
  for (const s of snippets) {
    const snippet = el("div", undefined, "snippet");
    snippet.append(el("strong", `[${s.chunk_id}] ${s.title}: `), s.text);
    item.append(snippet);
  }
  if (step.note) item.append(el("div", step.note, "muted"));
  $("trace").append(item);
}

function showAnswer(record) {
  const text = $("answer-text");
  text.replaceChildren(record.answer);
  const list = $("citations");
  list.replaceChildren();
  record.citations.forEach((c, i) => {
    const marker = el("span", `[${i + 1}]`, "cite");
    marker.addEventListener("click", () => openChunk(c.chunk_id, record));
    text.append(" ", marker);
    const item = el("li", undefined, "cite");
    item.textContent = `${c.title} (${c.chunk_id})${c.inferred ? " — inferred" : ""}`;
    item.addEventListener("click", () => openChunk(c.chunk_id, record));
    list.append(item);
  });
  $("answer").hidden = false;
}

// The words of the question and answer that the chunk contains: what supports the answer.
function highlighted(text, record) {
  const words = new Set(
    `${record.question} ${record.answer}`.toLowerCase().match(/[\p{L}\p{N}]{4,}/gu) || []
  );
  return text.split(/([\p{L}\p{N}]+)/u).map((part) =>
    words.has(part.toLowerCase()) ? el("mark", part) : document.createTextNode(part)
  );
}

async function openChunk(chunkId, record) {
  try {
    const chunk = await api(`/v1/chunks/${encodeURIComponent(chunkId)}`);
    $("chunk-title").textContent = `${chunk.title} — ${chunk.chunk_id}`;
    $("chunk-context").textContent = chunk.context;
    $("chunk-text").replaceChildren(...highlighted(chunk.text, record));
    $("chunk").hidden = false;
  } catch (error) {
    showError(error.message);
  }
}

$("ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  $("trace").replaceChildren();
  $("answer").hidden = $("chunk").hidden = true;
  $("go").disabled = true;
  try {
    const reply = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({
        model: $("method").value,
        stream: true,
        messages: [{ role: "user", content: $("question").value }],
      }),
    });
    if (!reply.ok) {
      const body = await reply.json().catch(() => ({}));
      throw new Error(body.error ? body.error.message : `HTTP ${reply.status}`);
    }
    for await (const chunk of events(reply)) {
      if (chunk.error) throw new Error(chunk.error.message);
      const extra = chunk.reasonrag;
      if (extra && extra.step) showStep(extra.step, extra.snippets);
      else if (extra && extra.answer !== undefined) showAnswer(extra);
    }
  } catch (error) {
    showError(error.message);
  } finally {
    $("go").disabled = false;
  }
});

// ---------------------------------------------------------------------- documents
async function loadDocuments() {
  const [{ documents }, stats] = await Promise.all([api("/v1/documents"), api("/v1/index")]);
  $("stats").textContent =
    `${stats.documents_total} documents, ${stats.chunks} chunks, ${stats.size}; ` +
    `${stats.embedder}; contexts: ${stats.contexts}`;
  $("documents").replaceChildren(...documents.map((d) => {
    const item = el("li");
    const remove = el("button", "delete");
    remove.addEventListener("click", async () => {
      if (!confirm(`Delete ${d.id} from the index?`)) return;
      try {
        await api(`/v1/documents/${encodeURIComponent(d.id)}`, { method: "DELETE" });
        await loadDocuments();
      } catch (error) {
        showError(error.message);
      }
    });
    item.append(el("span", `${d.id} (${d.chunks})`), remove);
    return item;
  }));
}

$("upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData();
  for (const file of $("files").files) form.append("files", file);
  $("upload-status").textContent = "indexing…";
  try {
    const report = await api("/v1/documents", { method: "POST", body: form });
    const skipped = report.skipped.map((s) => `${s.file}: ${s.reason}`).join("; ");
    $("upload-status").textContent =
      `added ${report.added.join(", ")}` + (skipped ? `; skipped ${skipped}` : "");
    $("files").value = "";
    await loadDocuments();
  } catch (error) {
    $("upload-status").textContent = error.message;
  }
});

async function refresh() {
  try {
    showError("");
    await Promise.all([loadModels(), loadDocuments()]);
  } catch (error) {
    showError(error.message);
  }
}

refresh();
