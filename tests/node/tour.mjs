// Drive the local server with the openai Node SDK, unchanged, the ways the original
// samples did: the AssistantStream helper and its events, a raw `stream: true` run with
// the requires_action -> submitToolOutputsStream loop, a failed run, resuming a thread
// by id, polling. Prints one JSON object of what a Node app would have seen.
//
// usage: BASE_URL=http://127.0.0.1:PORT/v1 TOKEN=... node tour.mjs [openai|openai-6|openai-4] [how]
// where `how` is the client's set-up: `v1` (OpenAI at BASE_URL, the default), `azure-sample`
// (OpenAI at {endpoint}/openai with api-version and api-key, as the Azure AI CLI's sample
// builds it from AZURE_OPENAI_*), or `azure` (the SDK's AzureOpenAI class).

import { readFileSync } from "node:fs";

const [sdk = "openai", how = "v1"] = process.argv.slice(2);
const { OpenAI, AzureOpenAI } = await import(sdk);
const manifest = new URL(`./node_modules/${sdk}/package.json`, import.meta.url);
const version = JSON.parse(readFileSync(manifest, "utf8")).version;
// openai-node 4 (what the samples were written for) puts the thread id first; 5 and later
// take the run id first and the thread id in the body.
const v4 = version.startsWith("4.");
const key = process.env.TOKEN;
const endpoint = process.env.BASE_URL.replace(/\/v1$/, "");
const apiVersion = "2024-05-01-preview";
const clients = {
  v1: () => new OpenAI({ baseURL: process.env.BASE_URL, apiKey: key, maxRetries: 0 }),
  "azure-sample": () =>
    new OpenAI({
      apiKey: key,
      baseURL: `${endpoint.replace(/\/+$/, "")}/openai`,
      defaultQuery: { "api-version": apiVersion },
      defaultHeaders: { "api-key": key },
      maxRetries: 0,
    }),
  azure: () => new AzureOpenAI({ endpoint, apiKey: key, apiVersion, maxRetries: 0 }),
};
const client = clients[how]();
const seen = { sdk, how, version };
const runs = client.beta.threads.runs;
const submitToolOutputsStream = (runId, body) =>
  v4
    ? runs.submitToolOutputsStream(thread.id, runId, body)
    : runs.submitToolOutputsStream(runId, { thread_id: thread.id, ...body });
const listSteps = (runId) =>
  v4 ? runs.steps.list(thread.id, runId) : runs.steps.list(runId, { thread_id: thread.id });

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const assistant = await client.beta.assistants.create({
  model: "replay",
  tools: [{ type: "code_interpreter" }, weather],
});
const thread = await client.beta.threads.create();
const ask = (content) => client.beta.threads.messages.create(thread.id, { role: "user", content });
const textOf = (message) =>
  message.content.map((part) => (part.type === "text" ? part.text.value : `[${part.type}]`)).join("");

// 1. The helper's text events: each delta, and the snapshot it grows (openai-node's AssistantStream).
await ask("hello");
const deltas = [];
let snapshotsAgree = true;
const hello = runs
  .stream(thread.id, { assistant_id: assistant.id })
  .on("textDelta", (delta, snapshot) => {
    deltas.push(delta.value);
    snapshotsAgree &&= snapshot.value === deltas.join("");
  });
const helloRun = await hello.finalRun();
seen.text = {
  deltas,
  snapshotsAgree,
  status: helloRun.status,
  usage: helloRun.usage,
  final: (await hello.finalMessages()).map(textOf),
};

// 2. Code interpreter: the code as it is typed, then its logs and image (the Azure console sample).
await ask("plot it");
const code = { input: "", logs: "", images: 0, events: [], done: [] };
const plot = runs
  .stream(thread.id, { assistant_id: assistant.id })
  .on("event", (event) => code.events.push(event.event))
  .on("toolCallDelta", (delta) => {
    if (delta.type !== "code_interpreter") return;
    code.input += delta.code_interpreter.input ?? "";
    for (const output of delta.code_interpreter.outputs ?? []) {
      if (output.type === "logs") code.logs += output.logs;
      if (output.type === "image") code.images += 1;
    }
  })
  .on("toolCallDone", (call) => code.done.push(call.type));
// The helper's other events, each counted (openai-node's AssistantStream reference).
const helperEvents = ["messageCreated", "messageDone", "textCreated", "textDone", "imageFileDone",
  "runStepCreated", "runStepDone", "toolCallCreated", "end"];
code.helper = Object.fromEntries(helperEvents.map((name) => [name, 0]));
for (const name of helperEvents) plot.on(name, () => (code.helper[name] += 1));
const plotRun = await plot.finalRun();
code.finalSteps = (await plot.finalRunSteps()).map((step) => `${step.type}:${step.status}`);
const plotSteps = await listSteps(plotRun.id);
seen.code = {
  ...code,
  events: [...new Set(code.events)],
  status: plotRun.status,
  answer: (await plot.finalMessages()).map(textOf),
  steps: plotSteps.data.map((step) => step.type),
};

// 3. Function calling with a raw `stream: true` run, as the Next.js sample loops: at
//    requires_action it leaves the stream at once (the connection closes mid-stream), runs
//    the calls, and reads on from submitToolOutputsStream, until the run completes.
await ask("weather twice");
const rounds = [];
let answer = "";
let ended = null;
let pending = null; // [run id, tool outputs] to submit
while (ended === null) {
  const stream = pending
    ? submitToolOutputsStream(pending[0], { tool_outputs: pending[1] })
    : await runs.create(thread.id, { assistant_id: assistant.id, stream: true });
  pending = null;
  for await (const event of stream) {
    if (event.event === "thread.message.delta") {
      for (const part of event.data.delta.content ?? []) answer += part.text?.value ?? "";
    } else if (event.event === "thread.run.requires_action") {
      const calls = event.data.required_action.submit_tool_outputs.tool_calls;
      const cities = calls.map((call) => JSON.parse(call.function.arguments).city);
      rounds.push(cities);
      const outputs = calls.map((call, i) => ({ tool_call_id: call.id, output: `sunny in ${cities[i]}` }));
      pending = [event.data.id, outputs];
      break;
    } else if (["thread.run.completed", "thread.run.failed"].includes(event.event)) {
      ended = event.data.status;
    }
  }
  if (pending === null && ended === null) ended = "stream ended without an outcome";
}
seen.functions = { rounds, answer, ended };

// 4. A failed run is reported with its error.
await ask("fail please");
const failed = await runs.stream(thread.id, { assistant_id: assistant.id }).finalRun();
seen.failed = { status: failed.status, error: failed.last_error };

// 5. Poll instead of streaming.
await ask("and again");
const polled = await runs.createAndPoll(thread.id, { assistant_id: assistant.id });
seen.polled = polled.status;

// 6. Resume the thread by id and print its history, oldest first (auto-paginated, 2 a page).
const resumed = await client.beta.threads.retrieve(thread.id);
seen.history = [];
for await (const message of client.beta.threads.messages.list(resumed.id, { order: "asc", limit: 2 })) {
  seen.history.push(`${message.role}: ${textOf(message)}`);
}

// 7. A mistake gets the SDK's typed error, with the server's message.
try {
  await client.beta.threads.retrieve("thread_does_not_exist");
} catch (error) {
  seen.missing = { type: error.constructor.name, status: error.status, message: error.message };
}

console.log(JSON.stringify(seen));
