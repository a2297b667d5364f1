// The deprovisioning brake in a real browser: a provider deletes most of a directory at once;
// every portal page shows the engaged brake, the owner's list flags the organization, and the
// IT admin reviews the held changes, rejects them (the directory pauses: the provider gets
// 503 with Retry-After) and resumes once the provider's scope is fixed.
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

test("the IT admin sees the engaged brake on every page, rejects the burst and resumes", async () => {
  const { org, link } = env.orgWithLink("Brake Corp");
  const { page, errors } = await env.freshPage();
  const { endpoint, token } = await configure(page, link, "Okta");
  const ids = [];
  for (let i = 0; i < 20; i++) {
    const r = await scim("POST", `${endpoint}/Users`, token, user(`u${i}@brake.example`, `User`, `Number${i}`));
    assert.equal(r.status, 201);
    ids.push(r.json.id);
  }
  // A scope change in the provider: 12 of 20 deleted within seconds. Each answer is normal.
  for (const id of ids.slice(0, 12)) {
    assert.equal((await scim("DELETE", `${endpoint}/Users/${id}`, token)).status, 204);
  }

  // Every portal page carries the banner.
  for (const tab of ["Users", "Groups", "SCIM Provisioning"]) {
    await page.getByRole("link", { name: tab, exact: true }).click();
    await waitForText(page, "#brake-banner", { has: ["Deprovisioning brake engaged", "Okta deleted 12 users", "2 changes are held"] }, `the banner on ${tab}`, WAIT);
  }
  await page.screenshot({ path: join(shots, "brake-banner.png"), fullPage: true });

  // The owner's organization list flags it.
  const owner = await env.ownerPage();
  await waitForText(owner.page, "#org-rows", { has: ["Brake Corp", "Deprovisioning brake engaged"] }, "the owner's badge", WAIT);
  await owner.context.close();

  // Review: the two held deletions, then reject.
  await page.getByRole("link", { name: "Review and decide →" }).click();
  await waitForText(page, "#brake-held", { has: ["u10@brake.example", "u11@brake.example", "Deleted"], lacks: ["u9@brake.example"] }, "the held changes", WAIT);
  await page.screenshot({ path: join(shots, "brake-review.png"), fullPage: true });
  await page.getByRole("button", { name: "Reject and pause the directory" }).click();
  await waitForText(page, "#brake-notice", { has: ["Rejected: the users stay active"] }, "the rejection notice", WAIT);
  await waitForText(page, "#brake-state", { has: ["Paused."] }, "the paused state", WAIT);
  await waitForText(page, "#brake-banner", { has: ["is paused"] }, "the paused banner", WAIT);

  // The provider is asked to retry later.
  const res = await fetch(`${endpoint}/Users/${ids[11]}`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("retry-after"), "300");
  assert.match((await res.json()).detail, /this directory is paused/);

  // Scope fixed: resume. The held users were restored for the provider too.
  await page.getByRole("button", { name: "Resume the directory" }).click();
  await waitForText(page, "#brake-state", { has: ["Clear"] }, "the clear state", WAIT);
  assert.equal(await page.locator("#brake-banner").count(), 0, "no banner once resumed");
  const back = await scim("GET", `${endpoint}/Users/${ids[11]}`, token);
  assert.equal(back.status, 200);
  assert.equal(back.json.active, true);
  await page.screenshot({ path: join(shots, "brake-resumed.png"), fullPage: true });
  assert.deepEqual(errors, []);
});
