// The seed flow in a real browser (headless Debian Chromium, driven by playwright-core):
// open an Admin Portal link, click Configure, read the Endpoint URL and token from the page,
// push users with them as PingOne would, and watch the page update without a reload.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startEnv, shots, WAIT, LIVE, waitForText, scim, user, configure } from "./helpers.mjs";

let env, base, roster, freshPage, orgWithLink;

before(async () => {
  env = await startEnv();
  ({ base, roster, freshPage, orgWithLink } = env);
});

after(async () => {
  await env?.stop();
});

test("owner console: setup link → create org → SCIM on → portal link", async () => {
  // The owner claims a setup link and signs in.
  const setup = roster("owner", "setup-link").trim();
  const owner = await freshPage();
  await owner.page.goto(setup);
  await owner.page.getByLabel("Password", { exact: false }).first().fill("correct horse battery");
  await owner.page.getByLabel("Repeat the password").fill("correct horse battery");
  await owner.page.getByRole("button", { name: "Save password and sign in" }).click();
  await owner.page.getByRole("heading", { name: "Organizations", exact: true, level: 1 }).waitFor(WAIT);
  await owner.page.screenshot({ path: join(shots, "00-owner-empty.png"), fullPage: true });
  // Creates an org, turns SCIM on (htmx toggle), creates a portal link that opens the portal.
  await owner.page.getByLabel("New organization").fill("Acme Corp");
  await owner.page.getByRole("button", { name: "Create organization" }).click();
  await owner.page.getByRole("button", { name: "Turn SCIM Provisioning on" }).click();
  await owner.page.getByRole("button", { name: "Turn SCIM Provisioning off" }).waitFor(WAIT);
  await owner.page.getByRole("button", { name: "Create portal link" }).click();
  const link = (await owner.page.locator("#portal-link-url").textContent(WAIT)).trim();
  assert.ok(link.startsWith(`${base}/portal/link/roster_portal_`), link);
  await owner.page.screenshot({ path: join(shots, "00-owner-org.png"), fullPage: true });
  const { page, errors } = await freshPage();
  await page.goto(link);
  assert.equal(new URL(page.url()).pathname, "/portal/scim");
  await page.getByRole("button", { name: "Configure PingIdentity" }).waitFor(WAIT);
  assert.deepEqual(errors.concat(owner.errors), [], "no script errors or CSP violations in the browser console");
});

test("seed flow: portal link → Configure PingIdentity → live status → users appear live", async () => {
  // 1. Org and portal link from the CLI (the server is already running).
  const org = JSON.parse(roster("org", "create", "Acme", "--scim-enabled", "--json"));
  assert.equal(org.name, "Acme");
  assert.equal(org.scim_enabled, true);
  const link = JSON.parse(roster("portal-link", org.id, "--json")).url;
  assert.ok(link.startsWith(`${base}/portal/link/roster_portal_`), `portal link: ${link}`);

  // 3. The portal link opens the SCIM Provisioning tab with the provider picker.
  const { page, errors } = await freshPage();
  await page.goto(link);
  assert.equal(new URL(page.url()).pathname, "/portal/scim", `landed on ${page.url()}`);
  const heading = page.getByRole("heading", { name: "SCIM Provisioning" });
  await heading.first().waitFor({ state: "visible", ...WAIT });
  assert.ok(await page.getByRole("link", { name: "SCIM Provisioning" }).first().isVisible(), "SCIM Provisioning tab visible");
  await page.screenshot({ path: join(shots, "01-provider-picker.png"), fullPage: true });

  // 4. Configure PingIdentity: the Endpoint URL and the Bearer token are on the page.
  await page.getByRole("button", { name: "Configure PingIdentity" }).click();
  const endpoint = (await page.locator("#endpoint-url").textContent(WAIT)).trim();
  const token = (await page.locator("#bearer-token").textContent(WAIT)).trim();
  assert.ok(endpoint.startsWith(`${base}/scim/v2/`), `endpoint URL: ${endpoint}`);
  assert.ok(token.startsWith("roster_scim_"), `token: ${token}`);
  assert.match(await page.locator("#connection-status").textContent(WAIT), /Waiting for the first request/);
  await page.screenshot({ path: join(shots, "02-credentials.png"), fullPage: true });
  await page.evaluate(() => { window.__marker = 41; });

  // 5. PingOne looks the user up, then creates it.
  const lookup = await scim("GET", `${endpoint}/Users?filter=username%20Eq%20%22ada%40example.com%22`, token);
  assert.equal(lookup.status, 200, JSON.stringify(lookup.json));
  assert.equal(lookup.json.totalResults, 0);
  const created = await scim("POST", `${endpoint}/Users`, token, user("ada@example.com", "Ada", "Lovelace"));
  assert.equal(created.status, 201, JSON.stringify(created.json));

  // 6. The status line turns to "Connected" by itself (htmx polling, no reload).
  await waitForText(page, "#connection-status", { has: ["Connected"] }, "#connection-status to say Connected");
  assert.equal(await page.evaluate(() => window.__marker), 41, "the SCIM page was reloaded");
  await page.screenshot({ path: join(shots, "03-connected.png"), fullPage: true });

  // 7. The Users view shows users pushed while it is open, without a reload.
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await page.waitForURL((u) => u.pathname === "/portal/users", LIVE);
  await page.locator("#user-rows").waitFor(LIVE);
  await page.evaluate(() => { window.__marker = 42; });
  await waitForText(page, "#users-table", { has: ["ada@example.com"] }, "#users-table to list ada@example.com");
  const grace = await scim("POST", `${endpoint}/Users`, token, user("grace@example.com", "Grace", "Hopper"));
  assert.equal(grace.status, 201, JSON.stringify(grace.json));
  await waitForText(page, "#users-table", { has: ["grace@example.com"] }, "#users-table to list grace@example.com");
  assert.equal(await page.evaluate(() => window.__marker), 42, "the Users page was reloaded");
  await page.screenshot({ path: join(shots, "04-users-live.png"), fullPage: true });

  // 8. Live search.
  await page.locator("#user-search").fill("grace");
  await waitForText(page, "#users-table", { has: ["grace@example.com"], lacks: ["ada@example.com"] },
    "#users-table filtered to grace@example.com only");
  assert.equal(await page.evaluate(() => window.__marker), 42, "the Users page was reloaded by the search");
  await page.screenshot({ path: join(shots, "05-users-search.png"), fullPage: true });

  assert.deepEqual(errors, [], "no script errors or CSP violations in the browser console");
});

test("the SCIM Provisioning tab disappears when the owner turns SCIM off", async () => {
  const { org, link } = orgWithLink("Initech");
  const { page, errors } = await freshPage();
  await page.goto(link);
  await page.getByRole("link", { name: "SCIM Provisioning" }).waitFor(WAIT);
  roster("org", "scim", org.id, "off");
  await page.reload();
  await page.getByText("Ask the app owner to enable SCIM Provisioning").waitFor(WAIT);
  assert.equal(await page.getByRole("link", { name: "SCIM Provisioning" }).count(), 0, "no SCIM tab");
  await page.screenshot({ path: join(shots, "06-scim-off.png"), fullPage: true });
  assert.deepEqual(errors, []);
});

test("token rotation: both tokens work, the revoked one is refused", async () => {
  const { link } = orgWithLink("Globex");
  const { page, errors } = await freshPage();
  const { endpoint, token: oldToken } = await configure(page, link, "Okta");
  assert.equal((await scim("GET", `${endpoint}/Users`, oldToken)).status, 200);
  await page.getByRole("button", { name: "Create a second token" }).click();
  const newToken = (await page.locator("#new-token").textContent(WAIT)).trim();
  assert.ok(newToken.startsWith("roster_scim_") && newToken !== oldToken);
  assert.equal((await scim("GET", `${endpoint}/Users`, newToken)).status, 200, "new token works");
  assert.equal((await scim("GET", `${endpoint}/Users`, oldToken)).status, 200, "old token still works");
  await page.screenshot({ path: join(shots, "07-two-tokens.png"), fullPage: true });
  // Revoke the old one (its row shows its last four characters); the dialog is accepted.
  await page.getByRole("button", { name: `Revoke token ending in ${oldToken.slice(-4)}` }).click();
  await page.locator("#tokens-table").getByText("Revoked").waitFor(WAIT);
  const refused = await scim("GET", `${endpoint}/Users`, oldToken);
  assert.equal(refused.status, 401);
  assert.match(refused.json.detail, /revoked at/);
  assert.equal((await scim("GET", `${endpoint}/Users`, newToken)).status, 200);
  assert.deepEqual(errors, []);
});

test("the request inspector shows a failed request with its explanation", async () => {
  const { link } = orgWithLink("Umbrella");
  const { page, errors } = await freshPage();
  const { endpoint, token } = await configure(page, link, "Microsoft Entra ID");
  const bad = await scim("GET", `${endpoint}/Users?filter=userName%20zz%20%22x%22`, token);
  assert.equal(bad.status, 400);
  const jane = await scim("POST", `${endpoint}/Users`, token, user("jane@umbrella.example", "Jane", "Doe"));
  await scim("PATCH", `${endpoint}/Users/${jane.json.id}`, token,
    { Operations: [{ op: "Replace", path: "active", value: "False" }] });
  await page.getByRole("button", { name: /Request inspector/ }).click();
  const rows = page.locator("#requests");
  await rows.getByText("400: the filter was refused").waitFor(WAIT);
  await rows.getByText('Microsoft Entra ID sent active "False" → Jane Doe deactivated').waitFor(WAIT);
  // Errors only, then expand the failed request to its response.
  await page.getByLabel("Errors only").check();
  await page.waitForFunction(() => !document.querySelector("#requests")?.textContent.includes("deactivated"), null, WAIT);
  await rows.locator("summary").first().click();
  await rows.getByText("invalidFilter").first().waitFor(WAIT);
  await page.screenshot({ path: join(shots, "08-inspector.png"), fullPage: true });
  assert.deepEqual(errors, []);
});

test("search among 10 000 users", async () => {
  const { org, link } = orgWithLink("Massive Dynamic");
  const dir = JSON.parse(roster("directory", "create", org.id, "--provider", "generic", "--json"));
  const started = Date.now();
  const total = 10000;
  let next = 0;
  async function worker() {
    while (next < total) {
      const i = next++;
      const r = await scim("POST", `${dir.endpoint_url}/Users`, dir.token, user(`user${i}@massive.example`, `Given${i}`, `Family${i}`));
      assert.equal(r.status, 201);
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  console.log(`seeded ${total} users over SCIM in ${Date.now() - started} ms`);
  const { page, errors } = await freshPage();
  await page.goto(link);
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await page.locator("#user-count").getByText("10000 users").waitFor(WAIT);
  const t0 = Date.now();
  await page.locator("#user-search").fill("user9876@");
  await page.waitForFunction(() => {
    const t = document.querySelector("#users-table")?.textContent ?? "";
    return t.includes("user9876@massive.example") && !t.includes("user9875@");
  }, null, WAIT);
  console.log(`search among ${total} users answered in the browser in ${Date.now() - t0} ms (includes the 300 ms input debounce)`);
  await page.screenshot({ path: join(shots, "09-search-10k.png"), fullPage: true });
  assert.deepEqual(errors, []);
});
