// The ops console (/console) in headless Chromium against a real `mss serve` (see tests/browser.rs):
// refused without a valid key and with a key lacking the scope; signed in, it shows the paused mailbox with
// its reason and what to do, retries a failed recipient until it is sent, cancels what waits of a batch,
// marks a received patient message in error (the MDN is queued), shows each endpoint's last connection;
// usable at 1366×768, by keyboard, with AA contrast. Usage: node console.mjs BASE_URL OPS_KEY WEAK_KEY ARTEFACT_DIR RETRIED_ADDRESS TOKEN_FILE
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import assert from "node:assert/strict";

const [base, key, weak, artefacts, retried, tokenFile] = process.argv.slice(2);
if (!tokenFile) {
  console.error("usage: node console.mjs BASE_URL OPS_KEY WEAK_KEY ARTEFACT_DIR RETRIED_ADDRESS TOKEN_FILE");
  process.exit(2);
}
mkdirSync(artefacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = 0;
let passed = 0;
async function check(name, body) {
  try {
    await body();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAILED - ${name}: ${e.message}`);
  }
}

const WAIT = { timeout: 45000 };
const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: "fr-FR" });
const page = await context.newPage();
page.on("console", (m) => { if (m.type() === "error" && !/40[13]/.test(m.text())) console.error(`console: ${m.text()}`); });
page.on("dialog", (d) => d.accept());
// every request the page makes: the key must never travel in a URL
const urls = [];
page.on("request", (r) => urls.push(r.url()));
// the page polls every second here, so that the checks below need not wait long
await page.goto(`${base}/console?every=1000`, { waitUntil: "domcontentloaded" });

async function signIn(k) {
  if (await page.locator("#signout").isVisible()) await page.click("#signout");
  await page.fill("#key", k);
  await page.press("#key", "Enter");
}

await check("the page is served without a key; its data routes are not", async () => {
  assert.equal(await page.locator("#view-outbox").isVisible(), false);
  assert.ok(await page.locator("#intro").isVisible());
  const status = await page.evaluate(async () => (await fetch("/v1/outbox")).status);
  assert.equal(status, 401);
  await signIn("mss_sk_notakey_000000000000000000000000");
  await page.locator("#status.error").filter({ hasText: "not valid" }).waitFor(WAIT);
  assert.equal(await page.locator("#view-outbox").isVisible(), false, "signed out again");
});

await check("a key lacking the scope is refused, naming it", async () => {
  await signIn(weak);
  await page.locator("#status.error").filter({ hasText: "outbox:read" }).waitFor(WAIT);
  assert.equal(await page.locator("#senders tbody tr[data-sender]").count(), 0);
  await page.screenshot({ path: `${artefacts}/console-refused-scope.png` });
});

await check("signed in: the key stays in the tab, never in a URL or a cookie", async () => {
  await signIn(key);
  await page.locator("#senders tbody tr[data-sender]").first().waitFor(WAIT);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("mss-console-key")), key);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.equal(await page.evaluate(() => document.cookie), "");
  assert.ok(urls.every((u) => !u.includes(key)), "the key in a URL");
  assert.equal(await page.inputValue("#key"), "", "the field is emptied");
});

await check("the paused mailbox comes first, with the reason and what to do", async () => {
  const alert = page.locator("#alerts .alert").filter({ hasText: "alice@sante.test is paused" });
  await alert.waitFor(WAIT);
  const text = await alert.innerText();
  assert.match(text, /authentication of alice@sante\.test/);
  assert.ok(text.includes(tokenFile), `what to do names the token file: ${text}`);
  const first = page.locator("#senders tbody tr").first();
  assert.equal(await first.getAttribute("data-sender"), "alice@sante.test");
  // its three letters wait (queued, or deferred by the refused attempt)
  let waiting = 0;
  for (const st of ["queued", "sending", "deferred"]) waiting += Number(await first.locator(`td[data-state=${st}]`).innerText());
  assert.equal(waiting, 3);
  await page.screenshot({ path: `${artefacts}/console-outbox.png` });
});

await check("a failed recipient retried by hand goes to sent", async () => {
  const row = page.locator(`#troubles tr[data-address="${retried}"]`);
  await row.waitFor(WAIT);
  assert.match(await row.innerText(), /550 5\.7\.1/);
  await row.getByRole("button", { name: `Retry ${retried} now` }).click();
  await page.locator("#notice").filter({ hasText: "back in the queue" }).waitFor(WAIT);
  // the workers send it through Postfix: the latest changes show it sent, and it leaves the troubles
  await page.locator("#latest tbody tr").filter({ hasText: retried }).locator(".badge.sent").waitFor(WAIT);
  await row.waitFor({ state: "detached", timeout: 10000 });
  await page.screenshot({ path: `${artefacts}/console-retried.png` });
});

await check("what waits of a batch is cancelled", async () => {
  const row = page.locator('#batches tr[data-batch="letters-paused"]');
  await row.getByRole("button", { name: "Cancel what waits of batch letters-paused" }).click();
  await page.locator("#notice").filter({ hasText: "letters-paused: 3 recipient(s) cancelled" }).waitFor(WAIT);
  // counted as cancelled, apart from the failed ones, for the mailbox and the batch
  await page.locator('#senders tr[data-sender="alice@sante.test"] td[data-state=cancelled]').filter({ hasText: /^3$/ }).waitFor(WAIT);
  assert.equal(await page.locator('#senders tr[data-sender="alice@sante.test"] td[data-state=failed]').innerText(), "0");
  assert.equal(await row.locator("td[data-state=cancelled]").innerText(), "3");
});

await check("a patient message is marked in error by keyboard; the MDN is queued", async () => {
  await page.getByRole("button", { name: "Inbox" }).focus();
  await page.keyboard.press("Enter");
  const row = page.locator("#inbox-new tbody tr[data-id]").filter({ hasText: "Question sur mon traitement" });
  await row.waitFor(WAIT);
  assert.match(await row.locator(".badge.patient").innerText(), /Patient/);
  assert.match(await row.innerText(), /Leo Dupond/);
  // the raw message, fetched with the key (a plain link could not carry it) and saved
  const [download] = await Promise.all([page.waitForEvent("download", WAIT),
    row.getByRole("button", { name: /Raw message/ }).click()]);
  const raw = readFileSync(await download.path(), "utf8");
  assert.match(raw, /^From: Leo Dupond <279035121518989@patient\.mssante\.fr>/m);
  assert.match(download.suggestedFilename(), /^message-\d+\.eml$/);
  await page.screenshot({ path: `${artefacts}/console-inbox.png` });
  await row.getByRole("button", { name: /in error/ }).focus();
  await page.keyboard.press("Enter");
  await page.locator("#error-dialog").waitFor({ state: "visible" });
  await page.selectOption("#error-code", "902");
  await page.fill("#error-label", "Patient inconnu");
  await page.locator("#error-ok").focus();
  await page.keyboard.press("Enter");
  await page.locator("#notice").filter({ hasText: /marked in error; mdn queued as outbox #\d+/ }).waitFor(WAIT);
  const inError = page.locator("#inbox-error tbody tr[data-id]").filter({ hasText: "Question sur mon traitement" });
  await inError.waitFor(WAIT);
  assert.match(await inError.innerText(), /902 Patient inconnu/);
  await page.screenshot({ path: `${artefacts}/console-inbox-error.png` });
});

await check("sources: the index and the endpoints, the paused one said so, each last connection", async () => {
  await page.getByRole("button", { name: "Sources" }).click();
  const alice = page.locator("#endpoints tbody tr").filter({ hasText: "alice@sante.test" });
  await alice.locator(".badge.paused").waitFor(WAIT);
  // its workers' last submission met the refused token; the other mailbox sent and read through its own
  const refused = alice.locator("[data-endpoint=submission]");
  await refused.locator(".badge.failed").waitFor(WAIT);
  assert.match(await refused.innerText(), /credentials refused/);
  const other = page.locator("#endpoints tbody tr").filter({ hasNotText: "alice@sante.test" });
  await other.locator("[data-endpoint=submission] .badge.ok").waitFor(WAIT);
  await other.locator("[data-endpoint=imap] .badge.ok").waitFor(WAIT);
  assert.match(await page.locator("#index-size").innerText(), /entries in the index/);
  assert.equal(await page.locator("#sources tbody tr").count(), 3);
  // the service's hourly harvest of a directory that does not answer: the failure, and the next run ahead
  const ldap = page.locator("#sources tbody tr[data-source=ldap]");
  await ldap.locator("[data-outcome=failed] .badge.failed").waitFor(WAIT);
  assert.match(await ldap.innerText(), /transient: .*127\.0\.0\.1:1/);
  const next = Date.parse(await ldap.locator("[data-next]").getAttribute("data-next"));
  assert.ok(next > Date.now() + 30 * 60 * 1000, `next run within the hour: ${next}`);
  assert.match(await page.locator("#sources tbody tr[data-source=fhir]").innerText(), /not run by the service \(fhir_sync_every\)/);
  await page.screenshot({ path: `${artefacts}/console-sources.png` });
  await page.getByRole("button", { name: "Outbox" }).click();
});

await check("usable at 1366×768: nothing wider than the screen", async () => {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 1366, `page ${width}px wide`);
});

await check("text contrast is at least 4.5:1 (WCAG 2.1 AA)", async () => {
  const worst = await page.evaluate(() => {
    const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    let low = { ratio: 99 };
    for (const el of document.querySelectorAll("body *")) {
      if (!el.offsetParent && el.tagName !== "BODY") continue;
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own) continue;
      const fg = rgb(getComputedStyle(el).color).slice(0, 3);
      const [a, b] = [lum(fg), lum(background(el))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < low.ratio) low = { ratio, text: el.textContent.trim().slice(0, 40), tag: el.tagName };
    }
    return low;
  });
  assert.ok(worst.ratio >= 4.5, `${worst.ratio.toFixed(2)}:1 for ${worst.tag} "${worst.text}"`);
});

await check("every control is reached by the keyboard", async () => {
  await page.locator("body").focus();
  const reached = new Set();
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press("Tab");
    const id = await page.evaluate(() => {
      const a = document.activeElement;
      return a ? (a.id || a.getAttribute("aria-label") || a.textContent.trim()) : "";
    });
    reached.add(id);
  }
  for (const want of ["signout", "Outbox", "Inbox", "Sources"]) assert.ok(reached.has(want), `${want} not reached: ${[...reached].join(", ")}`);
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
