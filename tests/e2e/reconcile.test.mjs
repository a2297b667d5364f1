// A resync in a real browser: the IT admin starts one on the directory's page, the identity
// provider (this test, over HTTP) re-asserts some users and groups, the IT admin finishes it,
// sees who Okta no longer knows, keeps them once and deactivates them after a second resync.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startEnv, shots, WAIT, waitForText, scim, user, configure } from "./helpers.mjs";

let env;

before(async () => {
  env = await startEnv();
});

after(async () => {
  await env?.stop();
});

/** Reads each user by id and looks each up by filter, as Okta does during a push. */
async function push(endpoint, token, users, groups) {
  for (const [i, u] of users.entries()) {
    const r = i % 2
      ? await scim("GET", `${endpoint}/Users/${u.id}`, token)
      : await scim("GET", `${endpoint}/Users?filter=${encodeURIComponent(`userName eq "${u.userName}"`)}`, token);
    assert.equal(r.status, 200);
  }
  for (const g of groups) {
    const r = await scim("GET", `${endpoint}/Groups/${g.id}`, token);
    assert.equal(r.status, 200);
  }
}

test("the IT admin resyncs, sees who the provider no longer knows, keeps them, then deactivates them", async () => {
  const { link } = env.orgWithLink("Resync Corp");
  const { page, errors } = await env.freshPage();
  const { endpoint, token, dirUrl } = await configure(page, link, "Okta");
  const users = [];
  for (const [u, g, f] of [["ada@resync.example", "Ada", "Lovelace"], ["alan@resync.example", "Alan", "Turing"],
    ["grace@resync.example", "Grace", "Hopper"], ["gone@resync.example", "Gordon", "Gone"]]) {
    const r = await scim("POST", `${endpoint}/Users`, token, user(u, g, f));
    assert.equal(r.status, 201);
    users.push({ id: r.json.id, userName: u });
  }
  const groups = [];
  for (const name of ["Engineering", "Old Team"]) {
    const r = await scim("POST", `${endpoint}/Groups`, token, { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: name });
    assert.equal(r.status, 201);
    groups.push({ id: r.json.id, name });
  }

  // From the directory's page to its resync; nothing yet.
  await page.goto(dirUrl);
  await page.locator("#resync-link").click();
  await page.getByRole("heading", { name: "Resync with Okta", level: 1 }).waitFor(WAIT);
  await waitForText(page, "#resync-status", { has: ["No resync yet"] }, "the empty state", WAIT);

  // Start: the page says how to make Okta push everything again.
  await page.getByRole("button", { name: "Start resync" }).click();
  await waitForText(page, "#resync-how", { has: ["Push Now"] }, "Okta's instructions", WAIT);
  assert.equal(await page.locator("#resync").getAttribute("data-state"), "running");

  // Okta pushes everyone but Gordon, and only Engineering.
  await push(endpoint, token, users.slice(0, 3), groups.slice(0, 1));
  await page.reload();
  await waitForText(page, "#resync-confirmed", { has: ["4"] }, "the confirmed count", WAIT);
  await page.screenshot({ path: join(shots, "resync-running.png"), fullPage: true });

  await page.getByRole("button", { name: "Finish resync" }).click();
  await waitForText(page, "#resync-status", { has: ["1 user and 1 group Okta no longer knows"] }, "the result", WAIT);
  await waitForText(page, "#stale-users", { has: ["gone@resync.example", "Gordon Gone"], lacks: ["ada@"] }, "the stale user", WAIT);
  await waitForText(page, "#stale-groups", { has: ["Old Team"], lacks: ["Engineering"] }, "the stale group", WAIT);
  await page.screenshot({ path: join(shots, "resync-result.png"), fullPage: true });

  // Keep them: nothing changes.
  await page.getByRole("button", { name: "Keep them" }).click();
  await waitForText(page, "#resync-status", { has: ["You kept them"] }, "the kept notice", WAIT);
  assert.equal((await scim("GET", `${endpoint}/Users/${users[3].id}`, token)).json.active, true);
  assert.equal((await scim("GET", `${endpoint}/Groups/${groups[1].id}`, token)).status, 200);

  // A second resync, and this time deactivate them.
  await page.getByRole("button", { name: "Start resync" }).click();
  await waitForText(page, "#resync-how", { has: ["Push Now"] }, "the second resync", WAIT);
  await push(endpoint, token, users.slice(0, 3), groups.slice(0, 1));
  await page.getByRole("button", { name: "Finish resync" }).click();
  await waitForText(page, "#stale-users", { has: ["gone@resync.example"] }, "the stale user again", WAIT);
  await page.getByRole("button", { name: "Deactivate them" }).click();
  await waitForText(page, "#resync-status", { has: ["They were deactivated"] }, "the deactivated notice", WAIT);
  assert.equal(await page.locator("#resync").getAttribute("data-state"), "applied");
  assert.equal((await scim("GET", `${endpoint}/Users/${users[3].id}`, token)).json.active, false);
  assert.equal((await scim("GET", `${endpoint}/Users/${users[0].id}`, token)).json.active, true);
  assert.equal((await scim("GET", `${endpoint}/Groups/${groups[1].id}`, token)).status, 404);
  await page.screenshot({ path: join(shots, "resync-applied.png"), fullPage: true });
  assert.deepEqual(errors, []);
});
