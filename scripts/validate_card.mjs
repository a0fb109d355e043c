// Validate Teams messages with the Adaptive Cards SDK (npm `adaptivecards`), the renderer Teams builds on.
//
// Usage: node scripts/validate_card.mjs message.json [more.json ...]
// Each file is a Workflows envelope ({"type": "message", "attachments": [...]}) or a bare card.
// Prints one JSON line per file ({file, ok, problems}) and exits 1 if any file has a problem:
// an envelope out of shape, a card version other than 1.4, any parse or validation event the SDK
// logs when targeting 1.4 (unknown element, property newer than 1.4, bad enum, empty collection,
// duplicate id...), or a card the SDK cannot render.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const name of Object.getOwnPropertyNames(dom.window)) {
  if (/^(HTML|SVG|Node|Element|Event|Document|Text|CSS|getComputedStyle)/.test(name) && !(name in globalThis)) {
    globalThis[name] = dom.window[name];
  }
}
// The package's ESM build does not resolve under Node; its UMD bundle (the same code) does.
const AC = createRequire(import.meta.url)("adaptivecards/dist/adaptivecards.js");

// Teams renders a Markdown subset; the SDK only needs to be told that something handles it.
AC.AdaptiveCard.onProcessMarkdown = (text, result) => {
  result.outputHtml = text.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
  result.didProcess = true;
};

const TARGET = "1.4";
const ADAPTIVE = "application/vnd.microsoft.card.adaptive";

function envelopeProblems(doc) {
  if (doc.type === "AdaptiveCard") return [[], doc];
  const problems = [];
  if (doc.type !== "message") problems.push(`envelope type is ${JSON.stringify(doc.type)}, not "message"`);
  const attachments = Array.isArray(doc.attachments) ? doc.attachments : [];
  if (attachments.length !== 1) problems.push(`expected exactly one attachment, got ${attachments.length}`);
  const first = attachments[0] || {};
  if (first.contentType !== ADAPTIVE) problems.push(`attachment contentType is ${JSON.stringify(first.contentType)}`);
  return [problems, first.content || {}];
}

function eventText(event) {
  return `${AC.ValidationPhase[event.phase]}: ${AC.ValidationEvent[event.event]}: ${event.message}`;
}

function validate(doc) {
  const [problems, content] = envelopeProblems(doc);
  if (content.type !== "AdaptiveCard") problems.push("content is not an AdaptiveCard");
  if (content.version !== TARGET) problems.push(`card version is ${JSON.stringify(content.version)}, not ${TARGET}`);
  const context = new AC.SerializationContext(AC.Versions.v1_4);
  const card = new AC.AdaptiveCard();
  card.parse(content, context);
  for (let i = 0; i < context.eventCount; i++) problems.push(eventText(context.getEventAt(i)));
  for (const event of card.validateProperties().validationEvents) problems.push(eventText(event));
  const rendered = card.render();
  if (!rendered || !rendered.textContent.trim()) problems.push("the SDK rendered nothing");
  return problems;
}

let failed = false;
for (const file of process.argv.slice(2)) {
  let problems;
  try {
    problems = validate(JSON.parse(readFileSync(file, "utf8")));
  } catch (error) {
    problems = [`cannot validate: ${error.message}`];
  }
  failed ||= problems.length > 0;
  console.log(JSON.stringify({ file, ok: problems.length === 0, problems }));
}
process.exit(failed ? 1 : 0);
