// Edges of the Admin Portal and the owner console in a real browser: Post/Redirect/Get,
// 404 pages, live views that lose their session or their directory, the request inspector's
// summaries, paging and 401/403 explanations, and narrow screens.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startEnv, shots, WAIT, LIVE, waitForText, scim, user, configure } from "./helpers.mjs";

let env, base, roster, freshPage, orgWithLink, ownerPage;

before(async () => {
  env = await startEnv();
  ({ base, roster, freshPage, orgWithLink, ownerPage } = env);
});

after(async () => {
  await env?.stop();
});

/** How many page headers the document holds (a nested page brings a second one). */
function topbars(page) {
  return page.evaluate(() => document.querySelectorAll("header.topbar").length);
}

/** Sends `n` SCIM requests, `width` at a time, in order of `i` within each batch. */
async function many(n, width, f) {
  for (let i = 0; i < n; i += width) {
    await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, k) => f(i + k)));
  }
}

test("Configure redirects to the directory's page, shows the token once and a reload creates nothing", async () => {
  const { link } = orgWithLink("Prg Corp");
  const { page, errors } = await freshPage();
  await page.goto(link);
  const [response] = await Promise.all([
    page.waitForNavigation(WAIT),
    page.getByRole("button", { name: "Configure PingIdentity" }).click(),
  ]);
  const path = new URL(page.url()).pathname;
  assert.match(path, /^\/portal\/scim\/directories\/[^/]+$/, `after Configure the address bar shows ${path}`);
  const token = (await page.locator("#bearer-token").textContent(WAIT)).trim();
  assert.ok(token.startsWith("roster_scim_"), token);
  assert.equal(response.headers()["cache-control"], "no-store", "the page showing the token is not cached");
  await page.reload();
  await page.locator("#bearer-token-hidden").waitFor(WAIT);
  assert.equal(await page.locator("#bearer-token").count(), 0, "the token is shown only once");
  await page.goto(`${base}/portal/scim`);
  assert.equal(await page.locator("a[href^='/portal/scim/directories/']").count(), 1, "one directory after a reload");
  assert.deepEqual(errors, []);
});

test("unknown pages answer an HTML 404 page; SCIM and API 404s stay JSON", async () => {
  const { link } = orgWithLink("Lost Inc");
  const { page } = await freshPage();
  await page.goto(link);
  for (const path of ["/portal/scim/configure", "/portal/nope", "/owner/nope/deeper", "/nope"]) {
    const res = await page.goto(`${base}${path}`);
    assert.equal(res.status(), 404, path);
    assert.match(res.headers()["content-type"], /text\/html/, path);
    await page.getByRole("heading", { name: "Page not found" }).waitFor(WAIT);
    assert.ok(await page.getByRole("link", { name: /Back to/ }).first().isVisible(), `${path}: a link back`);
  }
  for (const path of ["/api/v1/nope", "/scim/v2/", "/scim/nope"]) {
    const res = await fetch(`${base}${path}`);
    assert.equal(res.status, 404, path);
    assert.match(res.headers.get("content-type"), /json/, path);
    await res.json();
  }
});

test("turning SCIM off while a directory page is open shows a banner, not a second page", async () => {
  const { org, link } = orgWithLink("Nesting Ltd");
  const { page } = await freshPage();
  await configure(page, link, "Okta");
  await page.locator("#connection-status").waitFor(WAIT);
  // The owner turns SCIM Provisioning off in the console.
  const owner = await ownerPage();
  await owner.page.goto(`${base}/owner/orgs/${org.id}`);
  await owner.page.getByRole("button", { name: "Turn SCIM Provisioning off" }).click();
  await owner.page.getByRole("button", { name: "Turn SCIM Provisioning on" }).waitFor(WAIT);
  await waitForText(page, "main", { has: ["SCIM Provisioning was turned off"] }, "a banner saying SCIM was turned off");
  assert.equal(await topbars(page), 1, "no page nested into the directory page");
  await page.getByRole("alert").filter({ hasText: "turned off" }).waitFor(WAIT);
  await page.screenshot({ path: join(shots, "20-scim-off-banner.png"), fullPage: true });
});

test("a directory deleted elsewhere, or disabled, while its page is open", async () => {
  const { link } = orgWithLink("Gone Co");
  const { page } = await freshPage();
  const { dirUrl } = await configure(page, link, "Okta");
  const other = await freshPage();
  await other.page.goto(link);
  await other.page.goto(dirUrl);
  await other.page.getByRole("button", { name: "Disable directory" }).click();
  await waitForText(page, "#connection-status", { has: ["disabled"], lacks: ["Waiting for the first request"] },
    "the open page to say the directory is disabled");
  await other.page.getByRole("button", { name: "Delete directory" }).click();
  await other.page.waitForURL((u) => u.pathname === "/portal/scim", WAIT);
  await waitForText(other.page, "main", { has: ["directory was deleted"] }, "a message after the delete");
  await waitForText(page, "main", { has: ["This directory was deleted"] }, "a banner on the open page");
  assert.equal(await topbars(page), 1);
});

test("every live view shows that live updates stopped when the session ends", async () => {
  const { link } = orgWithLink("Session Ends");
  const setup = await freshPage();
  const { endpoint, token, dirUrl } = await configure(setup.page, link, "Okta");
  await scim("POST", `${endpoint}/Users`, token, user("kim@ends.example", "Kim", "Ends"));
  for (const url of [`${base}/portal/users`, `${base}/portal/groups`, dirUrl, `${dirUrl}/activity`]) {
    const { page, context } = await freshPage();
    await page.goto(link);
    await page.goto(url);
    // The view says it is live, and when it last got fresh data.
    const live = page.locator(".live-status").first();
    await waitForText(page, ".live-status", { has: ["updated"] }, `${url}: a live indicator`);
    assert.match(await live.textContent(), /updated \d+ s ago/);
    await context.clearCookies();
    await waitForText(page, "main", { has: ["Your session ended", "portal link"] }, `${url}: a session-ended banner`);
    await waitForText(page, ".live-status", { has: ["Live updates stopped"] }, `${url}: the indicator says updates stopped`);
    assert.equal(await topbars(page), 1, url);
    await context.close();
  }
});

test("the live indicator ticks and the Users view keeps up", async () => {
  const { link } = orgWithLink("Ticking");
  const { page } = await freshPage();
  const { endpoint, token } = await configure(page, link, "Okta");
  await page.goto(`${base}/portal/users`);
  await waitForText(page, ".live-status", { has: ["updated"] }, "a live indicator");
  // The count of seconds grows between refreshes, and drops back when fresh data lands.
  await page.waitForFunction(() => {
    const m = /updated (\d+) s ago/.exec(document.querySelector(".live-status")?.textContent ?? "");
    (window.__seen ??= new Set()).add(m?.[1]);
    return window.__seen.has("0") && window.__seen.has("1");
  }, null, { ...LIVE, polling: 100 });
  await scim("POST", `${endpoint}/Users`, token, user("tick@tock.example", "Tick", "Tock"));
  await waitForText(page, "#user-rows", { has: ["tick@tock.example"] }, "the new user");
});

test("a PUT of a 200-member group is summarised from what Roster recorded", async () => {
  const { link } = orgWithLink("Big Group");
  const { page } = await freshPage();
  const { endpoint, token } = await configure(page, link, "PingIdentity");
  const ids = [];
  await many(200, 20, async (i) => {
    const r = await scim("POST", `${endpoint}/Users`, token, user(`member.number.${i}@big-group.example`, "M", `N${i}`));
    assert.equal(r.status, 201);
    ids[i] = r.json.id;
  });
  const g = await scim("POST", `${endpoint}/Groups`, token,
    { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "Everyone" });
  assert.equal(g.status, 201);
  // PingOne sends display and $ref with each member: the logged body is cut short.
  const members = ids.map((id, i) => ({ value: id, display: `member.number.${i}@big-group.example`, $ref: `${endpoint}/Users/${id}` }));
  const put = await scim("PUT", `${endpoint}/Groups/${g.json.id}`, token,
    { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "Everyone", members });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  const patch = await scim("PATCH", `${endpoint}/Groups/${g.json.id}`, token, {
    schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    Operations: [{ op: "remove", path: `members[value eq "${ids[0]}"]` }],
  });
  assert.equal(patch.status, 204);
  const jo = await scim("POST", `${endpoint}/Users`, token, user("jo@big-group.example", "Jo", "Gonzalez"));
  const renamed = { ...user("jo@big-group.example", "Jo", "Nakamura"), id: jo.json.id };
  assert.equal((await scim("PUT", `${endpoint}/Users/${jo.json.id}`, token, renamed)).status, 200);
  await page.getByRole("button", { name: /Request inspector/ }).click();
  const rows = page.locator("#requests");
  await rows.getByText("+200 members").waitFor(WAIT);
  assert.equal(await rows.getByText("members kept").count(), 0, "no fallback explanation");
  await rows.getByText("−1 member").waitFor(WAIT);
  await rows.getByText("familyName Gonzalez → Nakamura").waitFor(WAIT);
  await page.screenshot({ path: join(shots, "21-change-summaries.png"), fullPage: true });
});

test("the last error says when it is resolved, with the error rate of the last 24 h", async () => {
  const { org, link } = orgWithLink("Resolved");
  const { page } = await freshPage();
  const { endpoint, token } = await configure(page, link, "Okta");
  assert.equal((await scim("GET", `${endpoint}/Users?filter=userName%20zz%20%22x%22`, token)).status, 400);
  await waitForText(page, "#connection-status", { has: ["Last error", "still failing"] }, "the error shown as current");
  for (let i = 0; i < 3; i++) assert.equal((await scim("GET", `${endpoint}/Users`, token)).status, 200);
  await waitForText(page, "#connection-status", { has: ["resolved — 3 successful requests since", "1 of 4 requests failed in the last 24 h"] },
    "the last error marked resolved, and the error rate");
  // The owner console says so too.
  const owner = await ownerPage();
  await owner.page.goto(`${base}/owner/orgs/${org.id}`);
  await waitForText(owner.page, "#directories-table", { has: ["resolved"], lacks: ["still failing"] }, "the owner's view of the error");
});

test("the request inspector pages to older requests and keeps its filters", async () => {
  const { link } = orgWithLink("Paging");
  const { page } = await freshPage();
  const { endpoint, token, dirUrl } = await configure(page, link, "Okta");
  for (let i = 1; i <= 110; i++) {
    assert.equal((await scim("GET", `${endpoint}/Users?count=1&startIndex=${i}`, token)).status, 200);
  }
  assert.equal((await scim("POST", `${endpoint}/Users`, token, user("post@paging.example", "P", "Q"))).status, 201);
  await page.goto(`${dirUrl}/activity?method=GET`);
  const code = (i) => page.locator("#requests code", { hasText: new RegExp(`startIndex=${i}$`) });
  await code(110).waitFor(WAIT);
  assert.equal(await code(5).count(), 0, "the oldest requests are on an older page");
  await page.getByRole("link", { name: "Older →" }).click(WAIT);
  await code(5).waitFor(WAIT);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get("method"), "GET", `filters kept: ${url}`);
  assert.ok(url.searchParams.get("before"), `a cursor: ${url}`);
  assert.equal(await code(110).count(), 0, "the newest are on the first page");
  assert.equal(await page.locator("#requests code", { hasText: "POST" }).count(), 0, "filter applied on the older page");
  await page.getByRole("link", { name: /Newest/ }).waitFor(WAIT);
});

test("each 401 and 403 cause is explained with its fix, to the admin and to the provider", async () => {
  const { org, link } = orgWithLink("Auth Causes");
  const { page } = await freshPage();
  const { endpoint, token } = await configure(page, link, "PingIdentity");
  const url = `${endpoint}/Users`;
  const none = await scim("GET", url, token, undefined, null);
  const basic = await scim("GET", url, token, undefined, "Basic dXNlcjpwYXNzd29yZA==");
  const bare = await scim("GET", url, token, undefined, token);
  const unknown = await scim("GET", url, token, undefined, "Bearer roster_scim_notatokenofthisdirectory");
  for (const r of [none, basic, bare, unknown]) assert.equal(r.status, 401);
  const details = [none, basic, bare, unknown].map((r) => r.json.detail);
  assert.equal(new Set(details).size, 4, `four different details: ${details.join(" | ")}`);
  assert.match(basic.json.detail, /Basic/);
  await page.getByRole("button", { name: "Disable directory" }).click();
  await page.locator("h1 .pill-off").waitFor(WAIT);
  const disabled = await scim("GET", url, token);
  await page.getByRole("button", { name: "Enable directory" }).click();
  await page.getByRole("button", { name: "Disable directory" }).waitFor(WAIT);
  roster("org", "scim", org.id, "off");
  const off = await scim("GET", url, token);
  roster("org", "scim", org.id, "on");
  assert.equal(disabled.status, 403);
  assert.equal(off.status, 403);
  assert.match(disabled.json.detail, /directory is disabled/);
  assert.match(off.json.detail, /turned off for this organization/);
  await page.getByRole("button", { name: /Request inspector/ }).click();
  const rows = page.locator("#requests");
  await rows.locator(".explanation", { hasText: "no Authorization header" }).first().waitFor(WAIT);
  await rows.locator(".explanation", { hasText: "Auth Type Header to Bearer in PingIdentity" }).first().waitFor(WAIT);
  await rows.locator(".explanation", { hasText: "without the word Bearer" }).first().waitFor(WAIT);
  await rows.locator(".explanation", { hasText: "not a token of this directory" }).first().waitFor(WAIT);
  await rows.locator(".explanation", { hasText: "403: this directory is disabled" }).first().waitFor(WAIT);
  await rows.locator(".explanation", { hasText: "403: SCIM Provisioning is turned off for this organization" }).first().waitFor(WAIT);
  await page.screenshot({ path: join(shots, "22-auth-causes.png"), fullPage: true });
});

test("no portal page scrolls sideways on a 390 px phone", async () => {
  const { org, link } = orgWithLink("Narrow Screens Incorporated With A Rather Long Name");
  const { page } = await freshPage({ width: 390, height: 844 });
  const { endpoint, token, dirUrl } = await configure(page, link, "Microsoft Entra ID");
  await page.getByRole("button", { name: "Create a second token" }).click();
  await page.locator("#new-token").waitFor(WAIT);
  const long = "a.very.long.address.that.keeps.going.and.going@subdomain.of.an.example-company.example";
  const u = await scim("POST", `${endpoint}/Users`, token, user(long, "Averyveryverylonggivenname", "Averyveryverylongfamilyname"));
  const g = await scim("POST", `${endpoint}/Groups`, token,
    { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "A group with a long name that goes on", members: [{ value: u.json.id }] });
  await scim("GET", `${endpoint}/Users?filter=userName%20zz%20%22${"x".repeat(80)}%22`, token);
  // A phone shows every page without sideways scrolling (what overflows, if anything, is named).
  const pages = [`${base}/portal/scim`, dirUrl, `${dirUrl}/activity`, `${base}/portal/users`, `${base}/portal/groups`,
    `${base}/portal/users/${u.json.id}`, `${base}/portal/groups/${g.json.id}`, `${base}/portal/nope`];
  for (const url of pages) {
    await page.goto(url);
    await page.locator("main").waitFor(WAIT);
    const { sw, iw, wide } = await page.evaluate(() => ({
      sw: document.documentElement.scrollWidth,
      iw: window.innerWidth,
      wide: [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > window.innerWidth)
        .slice(0, 3).map((e) => `${e.tagName.toLowerCase()}.${e.className}#${e.id}`),
    }));
    assert.ok(sw <= iw, `${url} is ${sw} px wide on a ${iw} px screen (${wide.join(", ")})`);
  }
  await page.goto(dirUrl);
  await page.screenshot({ path: join(shots, "23-directory-390.png"), fullPage: true });
  // The invalid-link page, and the portal's home once the owner turned SCIM off.
  roster("org", "scim", org.id, "off");
  for (const url of [`${base}/portal/link/roster_portal_notavalidlinkatall`, `${base}/portal`]) {
    await page.goto(url);
    await page.locator("main").waitFor(WAIT);
    const { sw, iw } = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, iw: window.innerWidth }));
    assert.ok(sw <= iw, `${url} is ${sw} px wide on a ${iw} px screen`);
  }
});

test("a new portal link appears in the owner's Portal links list at once", async () => {
  const { org } = orgWithLink("Links Listed");
  const owner = await ownerPage();
  await owner.page.goto(`${base}/owner/orgs/${org.id}`);
  // orgWithLink made one link already; make a second from the console.
  await owner.page.locator("#links-table").waitFor(WAIT);
  const before = await owner.page.locator("#links-table tbody tr").count();
  await owner.page.getByRole("button", { name: "Create portal link" }).click();
  await owner.page.locator("#portal-link-url").waitFor(WAIT);
  await owner.page.waitForFunction((n) => document.querySelectorAll("#links-table tbody tr").length === n + 1, before, LIVE);
  const other = await ownerPage();
  const empty = JSON.parse(roster("org", "create", "No Links Yet", "--json"));
  await other.page.goto(`${base}/owner/orgs/${empty.id}`);
  await other.page.getByText("No portal link yet").waitFor(WAIT);
  await other.page.getByRole("button", { name: "Create portal link" }).click();
  await other.page.locator("#links-table").getByText("Not opened yet").waitFor(WAIT);
  assert.equal(await other.page.getByText("No portal link yet").count(), 0);
});

test("a deleted user's link shows the user's tombstone", async () => {
  const { link } = orgWithLink("Tombstones");
  const { page } = await freshPage();
  const { endpoint, token } = await configure(page, link, "Okta");
  const u = await scim("POST", `${endpoint}/Users`, token, user("gone@tomb.example", "Gone", "Away"));
  assert.equal((await scim("DELETE", `${endpoint}/Users/${u.json.id}`, token)).status, 204);
  await page.goto(`${base}/portal/users/${u.json.id}`);
  await waitForText(page, "main", { has: ["This user was deleted", "gone@tomb.example"] }, "the tombstone");
  const res = await page.goto(`${base}/portal/users/no-such-user`);
  assert.equal(res.status(), 404);
});

test("the Users table needs no sideways scroll at 1280 px with long emails", async () => {
  const { link } = orgWithLink("Long Emails");
  const { page } = await freshPage();
  const { endpoint, token } = await configure(page, link, "Okta");
  const long = `${"firstname.middlename.lastname".repeat(2)}@a-very-long-subdomain.of-a-long-company-name.example`;
  await scim("POST", `${endpoint}/Users`, token, { ...user(long, "Maximiliana-Alexandrina", "Featherstonehaugh-Cholmondeley"), displayName: "Maximiliana-Alexandrina Featherstonehaugh-Cholmondeley" });
  await page.goto(`${base}/portal/users`);
  await page.locator("#users-table").getByText(long).first().waitFor(WAIT);
  const { sw, cw } = await page.evaluate(() => {
    const wrap = document.querySelector("#users-table").closest(".table-wrap");
    return { sw: wrap.scrollWidth, cw: wrap.clientWidth };
  });
  assert.ok(sw <= cw, `the Users table is ${sw} px wide in a ${cw} px box`);
});

test("keyboard focus is visible", async () => {
  const { link } = orgWithLink("Focus Ring");
  const { page } = await freshPage();
  await page.goto(link);
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  const style = await page.evaluate(() => {
    const el = document.activeElement;
    const s = getComputedStyle(el);
    return { tag: el.tagName, outline: s.outlineStyle, width: parseFloat(s.outlineWidth) };
  });
  assert.equal(style.tag, "A", "a link has the focus");
  assert.equal(style.outline, "solid", JSON.stringify(style));
  assert.ok(style.width >= 2, JSON.stringify(style));
});

test("times are relative, in the viewer's zone, with the exact UTC time on hover", async () => {
  const { link } = orgWithLink("Time Zones");
  const context = await env.browser.newContext({ timezoneId: "Asia/Tokyo", viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(link);
  await page.getByRole("button", { name: "Configure Okta" }).click();
  const created = page.locator("#tokens-table time").first();
  await created.waitFor(WAIT);
  assert.match(await created.getAttribute("title"), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  const text = await created.textContent();
  assert.match(text, /just now|s ago/, text);
  assert.doesNotMatch(text, /UTC/, text);
  // In Tokyo (UTC+9), the local hour differs from the UTC one.
  const utcHour = Number((await created.getAttribute("title")).slice(11, 13));
  const tokyoHour = (utcHour + 9) % 24;
  const shown = await page.evaluate((ms) => new Date(ms).getHours(), Number(await created.getAttribute("data-utc")));
  assert.equal(shown, tokyoHour);
  await context.close();
});

test("the owner's organization list shows directories, users and health, and flags duplicate names", async () => {
  const { link } = orgWithLink("Glance Corp");
  const { page } = await freshPage();
  const { endpoint, token } = await configure(page, link, "Okta");
  await scim("POST", `${endpoint}/Users`, token, user("one@glance.example", "One", "Glance"));
  await scim("GET", `${endpoint}/Users?filter=bad`, token);
  roster("org", "create", "Twin Peaks", "--json");
  const twin = JSON.parse(roster("org", "create", "twin  peaks", "--json"));
  const owner = await ownerPage();
  await owner.page.goto(`${base}/owner?q=Glance`);
  const row = owner.page.locator("#org-rows tr", { hasText: "Glance Corp" });
  await row.waitFor(WAIT);
  const cells = (await row.locator("td").allTextContents()).map((t) => t.trim());
  assert.equal(cells[2], "1", `directories: ${cells}`);
  assert.equal(cells[3], "1", `users: ${cells}`);
  assert.equal(cells[4], "failing", `health: ${cells}`);
  await owner.page.goto(`${base}/owner?q=twin`);
  assert.equal(await owner.page.locator("#org-rows tr", { hasText: "same name as another" }).count(), 2);
  await owner.page.goto(`${base}/owner/orgs/${twin.id}`);
  await owner.page.locator("#duplicate-name").waitFor(WAIT);
});

test("a live view that cannot reach the server says it is retrying, then recovers", async () => {
  const { link } = orgWithLink("Offline");
  const { page } = await freshPage();
  await configure(page, link, "Okta");
  await waitForText(page, ".live-status", { has: ["Live · updated"] }, "a live indicator");
  await page.route("**/status", (route) => route.abort("internetdisconnected"));
  await waitForText(page, ".live-status", { has: ["Cannot reach the server, retrying"] }, "the indicator to say it is retrying");
  await page.unroute("**/status");
  await waitForText(page, ".live-status", { has: ["Live · updated"], lacks: ["retrying"] }, "the indicator to recover");
  assert.equal(await page.locator("[data-live-error]").count(), 0, "no banner for a passing network failure");
});

test("a live view never swaps a whole page or an error page into itself", async () => {
  const { link } = orgWithLink("Odd Answers");
  for (const [status, body] of [
    [200, "<!doctype html><html><body><header class=\"topbar\">Roster</header><main>Another page</main></body></html>"],
    [500, "<!doctype html><html><body><header class=\"topbar\">Roster</header><main>Something went wrong</main></body></html>"],
    [502, "Bad Gateway"],
  ]) {
    const { page, context } = await freshPage();
    await page.goto(link);
    await page.goto(`${base}/portal/users`);
    await waitForText(page, ".live-status", { has: ["Live · updated"] }, "a live indicator");
    await page.route("**/portal/users*", (route) => route.fulfill({ status, contentType: "text/html", body }));
    await waitForText(page, "main", { has: ["Live updates stopped"] }, `a banner for a ${status} answer`);
    assert.equal(await topbars(page), 1, `no page nested by a ${status} answer`);
    assert.equal(await page.getByText("Another page").count(), 0);
    await context.close();
  }
});
