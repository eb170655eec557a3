// tests/webui/check.js - drive DataChat's own web UI, served from its own
// origin, against datachatd in headless Chromium (playwright-core), and
// fail on any error the UI shows or any request the browser blocks.
// The chat page asks two questions over /ws/chat: "list tables" (from
// the catalog) and one the LLM answers (run.py's recording mock streams
// the answer slowly); each must show its answer and its result table, the
// second its text growing piece by piece before the answer is complete.
//
// Environment: FRONT (the UI's origin), TARGET_URL (a database URL to
// register), TARGET_URL2 (a second one), CHROMIUM (the browser), SHOTS (a
// directory for screenshots), PROFILE (a fresh user-data-dir).
// Prints one line per step; exits non-zero on the first failure.
"use strict";

const { chromium } = require("playwright-core");

const FRONT = process.env.FRONT;
const SHOTS = process.env.SHOTS;
const problems = [];

function step(msg) {
  console.log("webui: " + msg);
}

async function shownErrors(page) {
  // the UI shows its errors in text-destructive blocks
  return (await page.locator(".text-destructive").allInnerTexts())
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

async function settle(page) {
  await page.waitForLoadState("networkidle", { timeout: 30000 }).catch(() => {});
  await page.waitForTimeout(1500);
}

async function connectionRow(page, name) {
  return page
    .locator("div.border-b", { has: page.locator("div.font-medium", { hasText: name }) })
    .first();
}

const ASSISTANT = '[role="article"][aria-label="Assistant message"]';

// Ask question on the chat page; check the events, the answer shown and
// its result table.  kind "llm": the answer must appear piece by piece.
async function ask(page, frames, question, kind) {
  const t0 = Date.now();
  const before = await page.locator(ASSISTANT).count();
  frames.length = 0;
  await page.getByLabel("Chat query input").fill(question);
  await page.getByLabel("Send chat message").click();
  const msg = page.locator(ASSISTANT).nth(before);
  await msg.waitFor({ timeout: 30000 });
  // the message's text as it changes, until the complete event
  const seen = [];
  let last = null;
  for (let i = 0; i < 600; i++) {
    const text = (await msg.innerText().catch(() => "")).replace(/\s+/g, " ").trim();
    if (text !== last) {
      seen.push([Date.now() - t0, text]);
      last = text;
    }
    if (frames.some((f) => f.event === "complete" || f.event === "error"))
      break;
    await page.waitForTimeout(100);
  }
  const names = frames.map((f) => f.event + (f.agent ? ":" + f.agent : ""));
  step(question + ": events " + names.join(", "));
  const done = frames.find((f) => f.event === "complete");
  if (!done)
    throw new Error(question + ": no complete event (" + names.join(", ") + ")");
  const chunks = frames.filter((f) => f.event === "answer_chunk");
  if (chunks.length === 0) throw new Error(question + ": no answer_chunk event");
  step(question + ": " + chunks.length + " answer_chunk event(s), the first " +
    (done._t - chunks[0]._t) + " ms before complete");
  step(question + ": the message as the page showed it:");
  for (const [ms, text] of seen)
    console.log("    +" + ms + " ms  ..." + JSON.stringify(text.slice(-110)));
  if (kind === "llm") {
    if (chunks.length < 5 || done._t - chunks[0]._t < 1500)
      throw new Error(question + ": the answer was not streamed");
    // what the page showed before the complete event came
    const growing = seen.filter(([, t]) => t.length > 0);
    if (growing.length < 3)
      throw new Error(question + ": the page did not show the answer growing");
  }
  await page.waitForTimeout(1000);
  const shown = (await msg.innerText()).replace(/\s+/g, " ");
  const first = done.answer.split("\n")[0].trim();
  if (!shown.includes(first))
    throw new Error(question + ": the page shows \"" + shown + "\", not the answer \"" + first + "\"");
  step(question + ": the page shows the answer \"" + first + "\"");
  await msg.getByLabel("Toggle result table").click();
  const table = msg.getByLabel("Query result table");
  await table.waitFor({ timeout: 10000 });
  const cols = await table.locator("th").allInnerTexts();
  const rows = (await table.locator("tbody tr").allInnerTexts())
    .map((t) => t.replace(/\s+/g, " ").trim());
  step(question + ": result table [" + cols.join(", ") + "]: " + rows.join(" / "));
  if (rows.length === 0) throw new Error(question + ": an empty result table");
  const errs = await shownErrors(page);
  if (errs.length) throw new Error(question + ": error banner: " + errs.join(" | "));
  if (SHOTS) await page.screenshot({ path: SHOTS + "/chat-" + kind + ".png", fullPage: true });
}

async function main() {
  // a new profile each run (the --user-data-dir playwright passes)
  const browser = await chromium.launchPersistentContext(process.env.PROFILE, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
      "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync",
    ],
  });
  const page = await browser.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" && /CORS|blocked|Failed to fetch/i.test(m.text()))
      problems.push("console: " + m.text());
  });
  page.on("requestfailed", (r) => {
    problems.push("request failed: " + r.method() + " " + r.url() + " " +
      (r.failure() ? r.failure().errorText : ""));
  });
  // what the chat page's WebSocket receives, with the time it came
  const frames = [];
  page.on("websocket", (ws) => {
    if (!ws.url().endsWith("/ws/chat")) return;
    ws.on("framereceived", (f) => {
      try {
        const e = JSON.parse(f.payload);
        e._t = Date.now();
        frames.push(e);
      } catch (x) {
        problems.push("a /ws/chat frame that is not JSON: " + f.payload);
      }
    });
    ws.on("socketerror", (e) => problems.push("/ws/chat: " + e));
  });
  page.on("response", (r) => {
    if (r.status() >= 400 && r.url().includes("/api/v1/"))
      problems.push("HTTP " + r.status() + ": " + r.request().method() + " " + r.url());
  });

  // --- Database Management page ---
  await page.goto(FRONT + "/databases", { waitUntil: "domcontentloaded" });
  await page.getByRole("heading", { name: "Connections" }).waitFor({ timeout: 60000 });
  await settle(page);
  let errs = await shownErrors(page);
  if (errs.length) throw new Error("error banner on open: " + errs.join(" | "));
  step("databases page opened, no error banner");

  async function add(name, url, dflt) {
    const card = page.locator("div", { has: page.getByRole("heading", { name: "Add Connection" }) }).last();
    await card.getByPlaceholder("Name").fill(name);
    await card.getByPlaceholder("postgresql://user:pass@host:5432/db").fill(url);
    await card.getByPlaceholder("Description (optional)").fill("added by webui-check");
    if (dflt) await card.getByRole("checkbox").check();
    await card.getByRole("button", { name: "Add Connection" }).click();
    await page.locator("div.font-medium", { hasText: name }).first().waitFor({ timeout: 30000 });
  }
  await add("webui-one", process.env.TARGET_URL, true);
  await add("webui-two", process.env.TARGET_URL2, false);
  await settle(page);
  step("added two connections: " +
    (await page.locator("div.border-b div.font-medium").allInnerTexts()).join(", "));

  // edit: rename the second
  let row = await connectionRow(page, "webui-two");
  await row.getByRole("button", { name: "Edit" }).click();
  const nameBox = row.getByPlaceholder("Name");
  await nameBox.fill("webui-renamed");
  await row.getByRole("button", { name: "Save" }).click();
  await page.locator("div.font-medium", { hasText: "webui-renamed" }).first().waitFor({ timeout: 30000 });
  step("edited: webui-two is now webui-renamed");

  // set default
  row = await connectionRow(page, "webui-renamed");
  await row.getByRole("button", { name: "Set Default" }).click();
  await row.locator("text=Default").first().waitFor({ timeout: 30000 });
  step("set default: webui-renamed shows Default");

  // delete the first
  row = await connectionRow(page, "webui-one");
  await row.getByRole("button", { name: "Delete" }).click();
  await page.locator("div.font-medium", { hasText: "webui-one" }).waitFor({ state: "detached", timeout: 30000 });
  await settle(page);
  step("deleted webui-one; listed: " +
    (await page.locator("div.border-b div.font-medium").allInnerTexts()).join(", "));
  errs = await shownErrors(page);
  if (errs.length) throw new Error("error banner after the edits: " + errs.join(" | "));
  step("no error banner after add, edit, set default, delete");
  if (SHOTS) await page.screenshot({ path: SHOTS + "/databases.png", fullPage: true });

  // --- chat page: reachable backend and its target selector ---
  await page.goto(FRONT + "/", { waitUntil: "domcontentloaded" });
  const target = page.getByLabel("Target database");
  await target.waitFor({ timeout: 60000 });
  const status = page.getByRole("status");
  await page.waitForFunction(() => {
    const s = document.querySelector('[role="status"]');
    return s && /Ready|Streaming|Connected/.test(s.textContent || "");
  }, null, { timeout: 30000 });
  const options = await target.locator("option").allInnerTexts();
  step("chat page: status \"" + (await status.first().innerText()).trim() +
    "\", target selector: " + options.join(" / "));
  await settle(page);
  if (SHOTS) await page.screenshot({ path: SHOTS + "/chat.png", fullPage: true });

  // --- questions over /ws/chat ---
  await target.selectOption({ label: options.find((o) => o.includes("webui-renamed")) });
  await ask(page, frames, "list tables", "catalog");
  await ask(page, frames, "Who are the top 3 customers by revenue?", "llm");

  await browser.close();
  if (problems.length) throw new Error(problems.join("\n"));
  step("OK: no blocked request, no failed API call");
}

main().catch((e) => {
  console.error("webui: FAILED: " + e.message);
  if (problems.length) console.error(problems.join("\n"));
  process.exit(1);
});
