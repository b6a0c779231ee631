// The widget on a vendor's page (another origin than mss) with a publishable key, in headless Chromium:
// it answers from the key's origin, and is refused from any other and without its key.
// Usage: node publishable.mjs BASE_URL KEY ALLOWED_ORIGIN OTHER_ORIGIN ARTEFACT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const [base, key, allowed, other, artefacts] = process.argv.slice(2);
if (!artefacts) {
  console.error("usage: node publishable.mjs BASE_URL KEY ALLOWED_ORIGIN OTHER_ORIGIN ARTEFACT_DIR");
  process.exit(2);
}
mkdirSync(artefacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    // the vendor's page is a made-up public origin and mss listens on loopback: without this, Chromium's
    // private-network checks would block the page before mss's own checks are reached
    "--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,LocalNetworkAccessChecks"],
});
let failed = 0;
let passed = 0;

// the vendor's page, served by the browser itself for its origin (no second web server needed)
async function vendorPage(origin, withKey) {
  const page = await browser.newPage({ viewport: { width: 900, height: 600 }, locale: "fr-FR" });
  page.on("console", (m) => { if (m.type() === "error") console.error(`console: ${m.text()}`); });
  const attr = withKey ? ` key="${key}"` : "";
  await page.route(`${origin}/**`, (route) => route.fulfill({
    status: 200, contentType: "text/html; charset=utf-8",
    body: `<!doctype html><html lang="fr"><meta charset="utf-8"><title>DPI</title>
      <script src="${base}/widget/mss-autocomplete.js" defer></script>
      <form><mss-address-input endpoint="${base}"${attr} name="to"></mss-address-input></form></html>`,
  }));
  await page.goto(`${origin}/courrier`, { waitUntil: "domcontentloaded" });
  return page;
}

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

async function typeIn(page, text) {
  const input = page.locator("mss-address-input input[role=combobox]");
  await input.waitFor({ state: "visible", timeout: 5000 });
  await input.pressSequentially(text, { delay: 40 });
}

await check("suggestions from the key's origin", async () => {
  const page = await vendorPage(allowed, true);
  const sent = [];
  page.on("request", (r) => { if (r.url().includes("/v1/directory/autocomplete")) sent.push(r.headers()["x-api-key"]); });
  await typeIn(page, "dup");
  const options = page.locator("mss-address-input [role=option]");
  await options.first().waitFor({ state: "visible", timeout: 5000 });
  const labels = await options.locator(".label").allInnerTexts();
  assert.ok(labels.length > 0 && labels.every((l) => /dup/i.test(l)), labels.join(" | "));
  assert.ok(sent.length > 0 && sent.every((k) => k === key), "the key travels in X-Api-Key");
  await page.screenshot({ path: `${artefacts}/publishable-allowed.png` });
  await page.close();
});

for (const [name, origin, withKey] of [
  ["refused from another origin", other, true],
  ["refused without the key", allowed, false],
]) {
  await check(name, async () => {
    const page = await vendorPage(origin, withKey);
    await typeIn(page, "dup");
    const status = page.locator("mss-address-input li.status.error");
    await status.waitFor({ state: "visible", timeout: 5000 });
    assert.match(await status.innerText(), /indisponible/);
    assert.equal(await page.locator("mss-address-input [role=option]").count(), 0);
    await page.close();
  });
}

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
