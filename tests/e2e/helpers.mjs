// Shared helpers of the browser tests: a Roster server on a fresh SQLite file, headless Debian
// Chromium driven by playwright-core, the CLI, and SCIM calls as an identity provider makes them.
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
export const bin = process.env.ROSTER_BIN || join(repo, "target/debug/roster");
export const shots = join(repo, "target/e2e-screenshots");
export const WAIT = { timeout: 15000 };
export const LIVE = { timeout: 10000 }; // htmx polls every 2 s: live updates must land within 10 s
const OWNER_PASSWORD = "correct horse battery staple";

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

/** Starts `roster serve` and resolves once it says it is listening. */
function startServer(dbUrl, base, port) {
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

/** Polls GET /healthz (bounded attempts) until it answers 200 "ok". */
async function waitHealthy(base) {
  let last = "no answer";
  for (let i = 0; i < 50; i++) {
    try {
      const res = await fetch(`${base}/healthz`);
      const body = (await res.text()).trim();
      if (res.status === 200 && body === "ok") return;
      last = `${res.status} ${body}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`GET ${base}/healthz never answered 200 "ok" (last: ${last})`);
}

/**
 * A running Roster (fresh SQLite database) and a headless Chromium. `env.base` is its URL;
 * call `env.stop()` when done.
 */
export async function startEnv() {
  const env = {};
  env.dir = mkdtempSync(join(tmpdir(), "roster-e2e-"));
  mkdirSync(shots, { recursive: true });
  env.dbUrl = `sqlite://${join(env.dir, "roster.db")}`;
  const port = await freePort();
  env.base = `http://127.0.0.1:${port}`;
  env.roster = (...args) =>
    execFileSync(bin, ["--database-url", env.dbUrl, "--public-url", env.base, ...args], { encoding: "utf8" });
  env.roster("migrate");
  env.server = await startServer(env.dbUrl, env.base, port);
  await waitHealthy(env.base);
  env.browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  /** A new org (SCIM on by default) and a portal link for it, made with the CLI. */
  env.orgWithLink = (name, scim = true) => {
    const org = JSON.parse(env.roster("org", "create", name, ...(scim ? ["--scim-enabled"] : []), "--json"));
    const link = JSON.parse(env.roster("portal-link", org.id, "--json")).url;
    return { org, link };
  };
  /** A page in a fresh browser context (its own cookies), collecting script errors. */
  env.freshPage = async (viewport = { width: 1280, height: 900 }) => {
    const context = await env.browser.newContext({ viewport });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("dialog", (d) => d.accept());
    return { page, errors, context };
  };
  /** A page signed in to the owner console (the owner's password is set on first use). */
  let ownerReady;
  env.ownerPage = async () => {
    ownerReady ??= (async () => {
      const setup = env.roster("owner", "setup-link").trim();
      const { page, context } = await env.freshPage();
      await page.goto(setup);
      await page.getByLabel("Password", { exact: false }).first().fill(OWNER_PASSWORD);
      await page.getByLabel("Repeat the password").fill(OWNER_PASSWORD);
      await page.getByRole("button", { name: "Save password and sign in" }).click();
      await page.getByRole("heading", { name: "Organizations", exact: true, level: 1 }).waitFor(WAIT);
      await context.close();
    })();
    await ownerReady;
    const owner = await env.freshPage();
    await owner.page.goto(`${env.base}/owner/login`);
    await owner.page.getByLabel("Password").fill(OWNER_PASSWORD);
    await owner.page.getByRole("button", { name: "Sign in" }).click();
    await owner.page.getByRole("heading", { name: "Organizations", exact: true, level: 1 }).waitFor(WAIT);
    return owner;
  };
  env.stop = async () => {
    await env.browser?.close();
    if (env.server && env.server.exitCode === null) {
      const exited = new Promise((r) => env.server.once("exit", r));
      env.server.kill("SIGTERM");
      await exited;
    }
    if (env.dir) rmSync(env.dir, { recursive: true, force: true });
  };
  return env;
}

/**
 * Waits (10 s) until the text of `selector` contains every string of `has` and none of `lacks`;
 * on timeout, fails with what the element contained.
 */
export async function waitForText(page, selector, { has = [], lacks = [] }, what, options = LIVE) {
  try {
    await page.waitForFunction(([sel, has, lacks]) => {
      const t = document.querySelector(sel)?.textContent ?? "";
      return has.every((s) => t.includes(s)) && !lacks.some((s) => t.includes(s));
    }, [selector, has, lacks], options);
  } catch (e) {
    const now = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => "(element missing)");
    assert.fail(`timed out after ${options.timeout} ms waiting for ${what}; ${selector} contains:\n${now?.replace(/\s+/g, " ").trim()}`);
  }
}

/** A SCIM call as an identity provider makes it; `auth` replaces the Authorization header. */
export async function scim(method, url, token, body, auth) {
  const headers = { "Content-Type": "application/scim+json" };
  if (auth !== null) headers.Authorization = auth ?? `Bearer ${token}`;
  const res = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

export function user(userName, given, family) {
  return {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
    userName,
    name: { givenName: given, familyName: family },
    emails: [{ value: userName, type: "work", primary: true }],
    active: true,
  };
}

/** Opens a portal link and clicks Configure for `provider`; returns the credentials shown. */
export async function configure(page, link, provider) {
  await page.goto(link);
  await page.getByRole("button", { name: `Configure ${provider}` }).click();
  const endpoint = (await page.locator("#endpoint-url").textContent(WAIT)).trim();
  const token = (await page.locator("#bearer-token").textContent(WAIT)).trim();
  // The directory's page, from its link to the request inspector (not from the address bar).
  const inspector = await page.locator("a[href$='/activity']").first().getAttribute("href", WAIT);
  const dirUrl = new URL(inspector.replace(/\/activity$/, ""), page.url()).href;
  return { endpoint, token, dirUrl };
}
