// Custom attributes in a real browser: the app owner declares one on the organization page;
// the IT admin opens the Attributes tab, sees the default path flagged (their provider sends
// the value elsewhere), types another path and sees the live preview with a real user's
// value, saves, and finds the value on the user's page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startEnv, shots, WAIT, LIVE, waitForText, scim, user, configure } from "./helpers.mjs";

let env;

before(async () => {
  env = await startEnv();
});

after(async () => {
  await env?.stop();
});

const ENTERPRISE_DEPARTMENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";

test("the IT admin remaps an attribute with a live preview, and the user's page shows its value", async () => {
  const { org, link } = env.orgWithLink("Attr Corp");

  // The app owner declares `department`, read by default from the enterprise extension.
  const owner = await env.ownerPage();
  await owner.page.goto(`${env.base}/owner/orgs/${org.id}`);
  const section = owner.page.locator("#custom-attributes");
  await section.getByLabel("Name").fill("department", WAIT);
  await section.getByLabel("Default source").fill(ENTERPRISE_DEPARTMENT);
  await section.getByRole("button", { name: "Declare attribute" }).click();
  await waitForText(owner.page, "#attributes-table", { has: ["department", ENTERPRISE_DEPARTMENT] },
    "the declared attribute on the organization page", WAIT);
  assert.deepEqual(owner.errors, []);
  await owner.context.close();

  // Entra pushes a user whose department it sends as `title`.
  const { page, errors } = await env.freshPage();
  const { endpoint, token } = await configure(page, link, "Microsoft Entra ID");
  const created = await scim("POST", `${endpoint}/Users`, token, { ...user("ada@attr.example", "Ada", "Lovelace"), title: "Engineering" });
  assert.equal(created.status, 201);

  await page.getByRole("link", { name: "Attributes" }).click();
  await page.getByRole("heading", { name: "Attributes", level: 1 }).waitFor(WAIT);
  const row = page.locator("section.attribute").first();
  await waitForText(page, "section.attribute .attribute-preview", { has: ["No user has a value at this path"] },
    "the default path flagged", WAIT);

  // Typing a path previews it live on the directory's real users.
  const input = row.getByLabel("SCIM attribute path");
  await input.fill("title");
  await waitForText(page, "section.attribute .attribute-preview",
    { has: ["Ada Lovelace → department: Engineering"], lacks: ["No user has a value"] },
    "the live preview of `title`", LIVE);
  await input.fill("emails[type eq \"work\"].value");
  await waitForText(page, "section.attribute .attribute-preview", { has: ["Ada Lovelace → department: ada@attr.example"] },
    "the live preview of the work email", LIVE);
  await input.fill("title");
  await waitForText(page, "section.attribute .attribute-preview", { has: ["department: Engineering"] },
    "the live preview of `title` again", LIVE);
  await row.getByRole("button", { name: "Save" }).click();
  await page.locator("#attribute-saved").waitFor(WAIT);
  await waitForText(page, "section.attribute", { has: ["your mapping", "title"] }, "the saved mapping", WAIT);
  await page.screenshot({ path: join(shots, "40-attributes.png"), fullPage: true });

  // The user's page lists the custom attribute.
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await page.getByRole("link", { name: "Ada Lovelace" }).click(WAIT);
  await waitForText(page, "#custom-attributes", { has: ["department", "Engineering"] },
    "the custom attribute on the user's page", WAIT);
  await page.screenshot({ path: join(shots, "41-user-custom-attributes.png"), fullPage: true });
  assert.deepEqual(errors, []);
});
