// The Admin Portal embedded in a vendor's page on another origin: the owner allows that
// origin, the vendor's backend gets an embed link, the page frames the portal, Configure runs
// inside the frame and the page receives Roster's postMessage events; a page of an origin
// the owner did not allow cannot frame it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startEnv, shots, WAIT, LIVE, scim, user } from "./helpers.mjs";

const example = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), "../../examples/embed.html"), "utf8");

let env, vendor, stranger;

/** Roster as the browser reaches it: http://localhost:PORT (its public URL names 127.0.0.1). */
const viaLocalhost = (url) => url.replace("://127.0.0.1:", "://localhost:");

/**
 * The vendor's own tiny web server on http://127.0.0.1:PORT2, another origin (and site) than
 * Roster's http://localhost:PORT: serves the example page framing `embedUrl()`.
 */
function vendorServer(embedUrl) {
  return new Promise((ok) => {
    const server = createServer(async (req, res) => {
      const url = viaLocalhost(await embedUrl());
      const html = example.replaceAll("__EMBED_URL__", url).replaceAll("__ROSTER_ORIGIN__", new URL(viaLocalhost(env.base)).origin);
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end(html);
    });
    server.listen(0, "127.0.0.1", () => {
      const origin = `http://127.0.0.1:${server.address().port}`;
      ok({ server, origin });
    });
  });
}

let apiKey, orgId;

/** What the vendor's backend does before serving its page: a fresh embed link. */
async function embedLink() {
  const res = await fetch(`${env.base}/api/v1/organizations/${orgId}/portal-links`, {
    method: "POST",
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ embed: true }),
  });
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return body.url;
}

/** Waits until the vendor page has received an event of `type`; fails listing what came. */
async function waitForEvent(page, type, options = LIVE) {
  try {
    await page.waitForFunction((t) => window.rosterEvents.some((e) => e.type === t), type, options);
  } catch (e) {
    const got = await page.evaluate(() => window.rosterEvents.map((e) => e.type));
    assert.fail(`no ${type} message within ${options.timeout} ms; received: ${JSON.stringify(got)}`);
  }
  return page.evaluate((t) => window.rosterEvents.find((e) => e.type === t), type);
}

before(async () => {
  env = await startEnv();
  const org = JSON.parse(env.roster("org", "create", "Framed Corp", "--scim-enabled", "--json"));
  orgId = org.id;
  apiKey = JSON.parse(env.roster("api-key", "create", "vendor backend", "--json")).key;
  vendor = await vendorServer(embedLink);
  stranger = await vendorServer(embedLink);
  // The owner allows the vendor's origin (only) on the settings page.
  const { page, context } = await env.ownerPage();
  await page.goto(`${env.base}/owner/settings`);
  await page.getByLabel("Allowed origins").fill("https://bad.example/path");
  await page.getByRole("button", { name: "Save origins" }).click();
  await page.getByText("is not an origin").waitFor(WAIT);
  await page.getByLabel("Allowed origins").fill(vendor.origin);
  await page.getByRole("button", { name: "Save origins" }).click();
  await page.waitForURL(/\/owner\/settings/, WAIT);
  assert.equal(await page.getByLabel("Allowed origins").inputValue(), vendor.origin);
  await context.close();
});

after(async () => {
  vendor?.server.close();
  stranger?.server.close();
  await env?.stop();
});

test("a page of an allowed origin frames the portal, configures a directory and hears about it", async () => {
  const { page, errors } = await env.freshPage();
  await page.goto(`${vendor.origin}/`);
  const frame = page.frameLocator("iframe#roster");
  await frame.getByRole("button", { name: "Configure Okta" }).click(WAIT);
  const created = await waitForEvent(page, "roster:directory_created");
  assert.ok(created.directory_id, JSON.stringify(created));
  const endpoint = (await frame.locator("#endpoint-url").textContent(WAIT)).trim();
  const token = (await frame.locator("#bearer-token").textContent(WAIT)).trim();

  // The identity provider's first request, then its first user.
  assert.equal((await scim("GET", `${endpoint}/Users?count=1`, token)).status, 200);
  const connected = await waitForEvent(page, "roster:directory_connected");
  assert.equal(connected.directory_id, created.directory_id);
  assert.equal((await scim("POST", `${endpoint}/Users`, token, user("ada@framed.example", "Ada", "Lovelace"))).status, 201);
  const first = await waitForEvent(page, "roster:first_user");
  assert.equal(first.directory_id, created.directory_id);
  // A request that fails is reported too.
  assert.equal((await scim("POST", `${endpoint}/Users`, token, { schemas: [] })).status, 400);
  const error = await waitForEvent(page, "roster:error");
  assert.equal(error.directory_id, created.directory_id);
  assert.ok(error.detail, "the error says what went wrong");

  // Each happening is told once, and nothing reached the page from elsewhere.
  const types = await page.evaluate(() => window.rosterEvents.map((e) => e.type));
  assert.equal(types.filter((t) => t === "roster:directory_created").length, 1, JSON.stringify(types));
  await page.screenshot({ path: join(shots, "embed-framed.png"), fullPage: true });
  assert.deepEqual(errors, []);
});

test("a page of an origin the owner did not allow cannot frame the portal", async () => {
  const { page } = await env.freshPage();
  const blocked = page.waitForEvent("console", { predicate: (m) => /frame-ancestors/.test(m.text()), ...WAIT });
  await page.goto(`${stranger.origin}/`);
  await blocked;
  await page.waitForFunction(() => window.frameLoads > 0, null, WAIT);
  const frame = page.frames().find((f) => f !== page.mainFrame());
  assert.ok(frame, "the iframe exists");
  assert.equal(await frame.locator("button", { hasText: "Configure" }).count(), 0, "no portal inside the frame");
  assert.deepEqual(await page.evaluate(() => window.rosterEvents), []);
});
