// tests/webui/check.js - drive DataChat's own web UI, served from its own
// origin, against datachatd in headless Chromium (playwright-core), and
// fail on any error the UI shows or any request the browser blocks.
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
    // the chat page's WebSocket is issue 14's; everything else must work
    if (!r.url().includes("/ws/"))
      problems.push("request failed: " + r.method() + " " + r.url() + " " +
        (r.failure() ? r.failure().errorText : ""));
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

  await browser.close();
  if (problems.length) throw new Error(problems.join("\n"));
  step("OK: no blocked request, no failed API call");
}

main().catch((e) => {
  console.error("webui: FAILED: " + e.message);
  if (problems.length) console.error(problems.join("\n"));
  process.exit(1);
});
