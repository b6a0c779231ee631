// Drives the autocomplete widget served by a running `mss serve` in Debian's headless Chromium.
// Usage: node autocomplete.mjs BASE_URL ARTEFACT_DIR
// Exits non-zero on the first failed check; prints one line per check.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const [base, artefacts] = process.argv.slice(2);
if (!base || !artefacts) {
  console.error("usage: node autocomplete.mjs BASE_URL ARTEFACT_DIR");
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
const page = await browser.newPage({ viewport: { width: 900, height: 700 }, locale: "fr-FR" });
page.on("pageerror", (e) => { console.error(`page error: ${e.message}`); failed++; });

const input = page.locator("mss-address-input input[role=combobox]");
const options = page.locator("mss-address-input [role=option]");
const listbox = page.locator("mss-address-input [role=listbox]");

async function check(name, body) {
  try {
    await body();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAILED - ${name}: ${e.message}`);
    await page.screenshot({ path: `${artefacts}/failed-${name.replace(/\W+/g, "-")}.png` }).catch(() => {});
  }
}

async function typeFresh(text) {
  await input.fill("");
  await input.pressSequentially(text, { delay: 40 });
}

async function labels() {
  // the answer to what is typed now, not to an earlier keystroke still on screen
  const typed = (await input.inputValue()).trim();
  await page.locator(`mss-address-input [role=listbox][data-query="${typed}"]`).waitFor({ state: "attached", timeout: 5000 });
  await options.first().waitFor({ state: "visible", timeout: 5000 });
  return options.locator(".label").allInnerTexts();
}

await page.goto(base, { waitUntil: "domcontentloaded" });

await check("combobox pattern attributes", async () => {
  assert.equal(await input.getAttribute("aria-autocomplete"), "list");
  assert.equal(await input.getAttribute("aria-expanded"), "false");
  const controls = await input.getAttribute("aria-controls");
  assert.equal(await listbox.getAttribute("id"), controls);
});

await check("typing dup shows highlighted suggestions", async () => {
  await typeFresh("dup");
  const got = await labels();
  assert.ok(got.length > 0, "no suggestion");
  assert.ok(got.every((l) => /dup/i.test(l)), `a suggestion without dup: ${got.join(" | ")}`);
  assert.equal(await input.getAttribute("aria-expanded"), "true");
  const marks = await options.first().locator("mark").allInnerTexts();
  assert.ok(marks.some((m) => /^dup/i.test(m)), `first option highlights ${JSON.stringify(marks)}`);
  const meta = await options.first().locator(".meta").innerText();
  assert.ok(meta.length > 0, "profession/city line is empty");
  await page.screenshot({ path: `${artefacts}/autocomplete-dup.png` });
});

await check("arrow down then Enter fills the input with the address", async () => {
  await typeFresh("dup");
  await labels();
  await input.press("ArrowDown");
  assert.equal(await options.nth(0).getAttribute("aria-selected"), "true");
  await input.press("ArrowDown");
  assert.equal(await options.nth(1).getAttribute("aria-selected"), "true");
  assert.equal(await input.getAttribute("aria-activedescendant"), await options.nth(1).getAttribute("id"));
  const address = await options.nth(1).locator(".addr").innerText();
  await input.press("Enter");
  assert.equal(await input.inputValue(), address);
  assert.equal(await input.getAttribute("aria-expanded"), "false");
  assert.ok(await listbox.isHidden(), "list still shown");
  assert.ok((await page.locator("#chosen").innerText()).includes(address), "mss-select event not seen");
  const hidden = await page.locator("mss-address-input input[type=hidden][name=to]").inputValue();
  assert.equal(hidden, address, "form field not set");
});

await check("a typo still finds the name", async () => {
  await typeFresh("bernrad");
  const got = await labels();
  assert.ok(got.some((l) => l.includes("Bernard")), `no Bernard in ${got.join(" | ")}`);
  await page.screenshot({ path: `${artefacts}/autocomplete-typo.png` });
});

await check("accents typed or not", async () => {
  await typeFresh("francois");
  const plain = await labels();
  assert.ok(plain.some((l) => l.includes("François")), `no François in ${plain.join(" | ")}`);
  await typeFresh("françois");
  const accented = await labels();
  assert.deepEqual(accented, plain);
});

await check("mouse selection", async () => {
  await typeFresh("dupont");
  await labels();
  const address = await options.nth(0).locator(".addr").innerText();
  await options.nth(0).click();
  assert.equal(await input.inputValue(), address);
});

await check("Escape closes the list", async () => {
  await typeFresh("dup");
  await labels();
  await input.press("Escape");
  assert.ok(await listbox.isHidden());
  assert.equal(await input.getAttribute("aria-expanded"), "false");
});

await check("no result state", async () => {
  await typeFresh("zzqxwv");
  const status = page.locator("mss-address-input li.status");
  await status.waitFor({ state: "visible", timeout: 5000 });
  assert.match(await status.innerText(), /Aucune/);
});

await check("error state", async () => {
  await page.route("**/v1/directory/autocomplete*", (route) =>
    route.fulfill({ status: 503, contentType: "application/problem+json",
      body: JSON.stringify({ type: "about:blank", title: "Service Unavailable", status: 503, detail: "index loading" }) }));
  await typeFresh("martin");
  const status = page.locator("mss-address-input li.status.error");
  await status.waitFor({ state: "visible", timeout: 5000 });
  assert.match(await status.innerText(), /indisponible/);
  await page.screenshot({ path: `${artefacts}/autocomplete-error.png` });
  await page.unroute("**/v1/directory/autocomplete*");
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
