// The seed flow in a real browser (headless Debian Chromium, driven by playwright-core):
// open an Admin Portal link, click Configure, read the Endpoint URL and token from the page,
// push users with them as PingOne would, and watch the page update without a reload.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const bin = process.env.ROSTER_BIN || join(repo, "target/debug/roster");
const shots = join(repo, "target/e2e-screenshots");
const WAIT = { timeout: 15000 };

let dir, server, browser, base, dbUrl;

function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

function roster(...args) {
  return execFileSync(bin, ["--database-url", dbUrl, "--public-url", base, ...args], { encoding: "utf8" });
}

/** Starts `roster serve` and resolves once it says it is listening. */
function startServer(port) {
  return new Promise((ok, fail) => {
    const child = spawn(bin, ["--database-url", dbUrl, "--bind", `127.0.0.1:${port}`, "--public-url", base, "serve"], {
      env: { ...process.env, RUST_LOG: "warn" },
    });
    let out = "";
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${out}`)), 30000);
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("Roster listening on")) {
        clearTimeout(timer);
        ok(child);
      }
    });
    child.stderr.on("data", (d) => { out += d; });
    child.on("exit", (code) => fail(new Error(`server exited (${code}):\n${out}`)));
  });
}

async function scim(method, url, token, body) {
  const res = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/scim+json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

function user(userName, given, family) {
  return {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
    userName,
    name: { givenName: given, familyName: family },
    emails: [{ value: userName, type: "work", primary: true }],
    active: true,
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "roster-e2e-"));
  mkdirSync(shots, { recursive: true });
  dbUrl = `sqlite://${join(dir, "roster.db")}`;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  roster("migrate");
  server = await startServer(port);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("IT admin configures PingIdentity and sees pushed users appear live", async () => {
  const org = JSON.parse(roster("org", "create", "Acme Corp", "--scim-enabled", "--json"));
  const link = JSON.parse(roster("portal-link", org.id, "--json")).url;
  assert.ok(link.startsWith(`${base}/portal/link/roster_portal_`), link);

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  // The portal link opens the SCIM Provisioning tab with the provider picker.
  await page.goto(link);
  assert.equal(new URL(page.url()).pathname, "/portal/scim");
  await page.getByRole("heading", { name: "SCIM Provisioning" }).waitFor(WAIT);
  await page.screenshot({ path: join(shots, "01-provider-picker.png"), fullPage: true });

  // Configure PingIdentity: the Endpoint URL and the Bearer token are on the page.
  await page.getByRole("button", { name: "Configure PingIdentity" }).click();
  const endpoint = (await page.locator("#endpoint-url").textContent(WAIT)).trim();
  const token = (await page.locator("#bearer-token").textContent(WAIT)).trim();
  assert.ok(endpoint.startsWith(`${base}/scim/v2/`), endpoint);
  assert.ok(token.startsWith("roster_scim_"), token);
  assert.match(await page.locator("#connection-status").textContent(), /Waiting for the first request/);
  await page.screenshot({ path: join(shots, "02-credentials.png"), fullPage: true });
  await page.evaluate(() => { window.__noReload = 42; });

  // PingOne looks the user up, then creates it.
  const lookup = await scim("GET", `${endpoint}/Users?filter=username%20Eq%20%22ada%40example.com%22`, token);
  assert.equal(lookup.status, 200);
  assert.equal(lookup.json.totalResults, 0);
  const created = await scim("POST", `${endpoint}/Users`, token, user("ada@example.com", "Ada", "Lovelace"));
  assert.equal(created.status, 201, JSON.stringify(created.json));

  // The status line turns to "Connected" by itself.
  await page.waitForFunction(
    () => document.querySelector("#connection-status")?.textContent.includes("Connected"), null, WAIT);
  assert.equal(await page.evaluate(() => window.__noReload), 42, "the page was not reloaded");
  await page.screenshot({ path: join(shots, "03-connected.png"), fullPage: true });

  // The Users view shows users pushed while it is open, without a reload.
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await page.locator("#users-table").waitFor(WAIT);
  assert.match(await page.locator("#users-table").textContent(), /ada@example\.com/);
  await page.evaluate(() => { window.__noReload = 43; });
  const grace = await scim("POST", `${endpoint}/Users`, token, user("grace@example.com", "Grace", "Hopper"));
  assert.equal(grace.status, 201);
  await page.waitForFunction(
    () => document.querySelector("#users-table")?.textContent.includes("grace@example.com"), null, WAIT);
  assert.equal(await page.evaluate(() => window.__noReload), 43, "the Users page was not reloaded");
  await page.screenshot({ path: join(shots, "04-users-live.png"), fullPage: true });

  // Live search.
  await page.locator("#user-search").fill("grace");
  await page.waitForFunction(() => {
    const t = document.querySelector("#users-table")?.textContent ?? "";
    return t.includes("grace@example.com") && !t.includes("ada@example.com");
  }, null, WAIT);
  await page.screenshot({ path: join(shots, "05-users-search.png"), fullPage: true });

  assert.deepEqual(errors, [], "no script errors or CSP violations in the browser console");
});
