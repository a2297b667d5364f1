// Roles from groups in a real browser: the owner defines roles in the console, the IT admin
// maps a pushed group to one in the Admin Portal, sees whose roles the change moves before it
// applies, confirms, and the user's page explains the role.
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

test("the IT admin maps a group to a role after a preview, and the user's page explains it", async () => {
  const { org, link } = env.orgWithLink("Roles Corp");

  // The owner defines two roles, one of them the default.
  const owner = await env.ownerPage();
  await owner.page.goto(`${env.base}/owner/orgs/${org.id}`);
  await owner.page.locator("#manage-roles").click();
  for (const [name, slug, isDefault] of [["Administrator", "admin", false], ["Member", "member", true]]) {
    await owner.page.getByLabel("Name").fill(name);
    await owner.page.getByLabel("Slug").fill(slug);
    if (isDefault) await owner.page.getByLabel("Default role", { exact: false }).check();
    await owner.page.getByRole("button", { name: "Define the role" }).click();
    await waitForText(owner.page, "#roles-table", { has: [name] }, `the role ${name} listed`, WAIT);
  }
  await owner.context.close();

  // The identity provider pushes two users and a group (PingOne's way: members by PUT).
  const { page, errors } = await env.freshPage();
  const { endpoint, token } = await configure(page, link, "PingIdentity");
  const ids = [];
  for (const [u, g, f] of [["ada@roles.example", "Ada", "Lovelace"], ["alan@roles.example", "Alan", "Turing"]]) {
    const r = await scim("POST", `${endpoint}/Users`, token, user(u, g, f));
    assert.equal(r.status, 201);
    ids.push(r.json.id);
  }
  const group = await scim("POST", `${endpoint}/Groups`, token, { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "Engineering" });
  assert.equal(group.status, 201);
  const put = await scim("PUT", `${endpoint}/Groups/${group.json.id}`, token, {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    displayName: "Engineering",
    members: ids.map((value) => ({ value })),
  });
  assert.equal(put.status, 200);

  // The Roles tab: pick the group and the role, preview.
  await page.getByRole("link", { name: "Roles", exact: true }).click();
  await page.getByRole("heading", { name: "Roles", level: 1 }).waitFor(WAIT);
  await page.getByLabel("Group").selectOption({ label: "Engineering" });
  await page.getByLabel("Role").selectOption({ label: "Administrator" });
  await page.getByRole("button", { name: "Preview the change" }).click();
  await waitForText(page, "#role-preview", { has: ["gives 2 users the role Administrator", "removes Member from 2 users"] }, "the preview", WAIT);
  await page.screenshot({ path: join(shots, "roles-preview.png"), fullPage: true });
  assert.match(await page.locator("#preview-sample").textContent(), /Member → Administrator/);

  // Confirmed: applied, and the table shows the group under the role.
  await page.getByRole("button", { name: "Apply the change" }).click();
  await waitForText(page, "#roles-applied", { has: ["2 users' roles changed"] }, "the applied notice", WAIT);
  await waitForText(page, "#roles-table", { has: ["Engineering"] }, "the mapped group", WAIT);

  // The user's page says why Ada is an Administrator.
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await page.getByRole("link", { name: "Ada Lovelace" }).click();
  await waitForText(page, "#user-roles", { has: ["Administrator", "Engineering", "Added by PUT"] }, "why Ada has the role", WAIT);
  await page.screenshot({ path: join(shots, "roles-why.png"), fullPage: true });
  assert.deepEqual(errors, []);
});
