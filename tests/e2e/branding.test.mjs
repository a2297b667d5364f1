// Branding in a real browser: the owner sets a product name, accent colour, support contact
// and logo on the Branding page; the IT admin's portal shows them (the accent through the
// brand stylesheet, which the CSP allows) and nothing says Roster.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startEnv, shots, WAIT, waitForText } from "./helpers.mjs";

let env;

before(async () => {
  env = await startEnv();
});

after(async () => {
  await env?.stop();
});

const LOGO = `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40"><rect width="120" height="40" rx="6" fill="#1d4ed8"/><circle cx="20" cy="20" r="10" fill="#fff"/></svg>`;

test("the owner's brand colours the portal's buttons and replaces Roster's name", async () => {
  const { link } = env.orgWithLink("Branded Corp");
  const owner = await env.ownerPage();
  await owner.page.getByRole("link", { name: "Branding", exact: true }).click();
  await owner.page.getByLabel("Product name").fill("Acme Cloud");
  await owner.page.getByLabel("Accent colour").fill("#1d4ed8");
  await owner.page.getByLabel("Support contact").fill("help@acme.example");
  await owner.page.getByRole("button", { name: "Save branding" }).click();
  await waitForText(owner.page, "#branding-saved", { has: ["Saved"] }, "the saved notice", WAIT);
  await owner.page.getByLabel("Logo file").setInputFiles({ name: "logo.svg", mimeType: "image/svg+xml", buffer: Buffer.from(LOGO) });
  await owner.page.getByRole("button", { name: "Upload logo" }).click();
  await owner.page.locator("#logo-preview").waitFor(WAIT);
  // A colour white text cannot be read on is refused, with its ratio.
  await owner.page.getByLabel("Accent colour").fill("#ffcc00");
  await owner.page.getByRole("button", { name: "Save branding" }).click();
  await waitForText(owner.page, "#branding-error", { has: ["1.51:1", "4.5:1"] }, "the contrast refusal", WAIT);
  await owner.context.close();

  const { page, errors } = await env.freshPage();
  await page.goto(link);
  await page.getByRole("link", { name: "Users", exact: true }).waitFor(WAIT);
  await page.getByRole("link", { name: "SCIM Provisioning", exact: true }).click();
  await waitForText(page, ".topbar .brand", { has: ["Acme Cloud"] }, "the product name", WAIT);
  await waitForText(page, "#support-contact", { has: ["help@acme.example"] }, "the support contact", WAIT);
  const logoWidth = await page.locator(".topbar img.brand-logo").evaluate((img) => img.naturalWidth);
  assert.ok(logoWidth > 0, "the logo loads");
  assert.ok(!(await page.content()).includes("Roster"), "the portal does not say Roster");
  await page.screenshot({ path: join(shots, "branding-portal.png"), fullPage: true });

  // Buttons carry the accent colour (#1d4ed8), and the active tab its text colour.
  const button = page.locator("main button:not(.secondary):not(.outline)").first();
  await button.waitFor(WAIT);
  assert.equal(await button.evaluate((b) => getComputedStyle(b).backgroundColor), "rgb(29, 78, 216)");
  const tab = page.locator(".tabs a[aria-current=page]");
  assert.equal(await tab.evaluate((a) => getComputedStyle(a).color), "rgb(29, 78, 216)");
  assert.deepEqual(errors, [], "no script or CSP errors");
});
