import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Chromium } from "./chromium.js";
import { launchChromium, pageErrors, screenshot } from "./chromium.js";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";

/** Just what this test reads of an introspection answer. */
interface TypeRef {
  kind: string;
  name: string | null;
  ofType: TypeRef | null;
}
interface Field {
  name: string;
  description: string | null;
  args: { name: string; type: TypeRef }[];
  type: TypeRef;
}
interface Introspection {
  data?: { __schema: { queryType: { fields: Field[] } }; __type?: { fields: Field[] } | null };
}

const fieldsQuery = `{ __schema { queryType { fields { name description args { name type { ...T } } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }`;

/** The named type under NON_NULL and LIST wrappers. */
function named(type: TypeRef): string {
  return type.name ?? (type.ofType ? named(type.ofType) : "");
}

async function graphql(baseUrl: string, query: string): Promise<Introspection> {
  const res = await fetch(`${baseUrl}/api/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query }),
  });
  assert.equal(res.status, 200, `POST /api/graphql: ${res.status}`);
  return (await res.json()) as Introspection;
}

/**
 * The GraphQL text of EntityService.Get for one entity, found by
 * introspection so this test does not fix the schema's naming: the query field
 * whose name or description says entity + get, with the request either as
 * flat arguments or as one input object, selecting `key` and `values` on the
 * entity (nested under `entity` when the answer mirrors the response message).
 */
async function entityGetQuery(baseUrl: string, ref: { domain: string; type: string; key: string }): Promise<string> {
  const schema = await graphql(baseUrl, fieldsQuery);
  const fields = schema.data?.__schema.queryType.fields ?? [];
  const field = fields.find((f) => {
    const text = `${f.name} ${f.description ?? ""}`.toLowerCase();
    return /entit/.test(f.name.toLowerCase()) && /get/.test(text) && !/search|event/.test(f.name.toLowerCase());
  });
  assert.ok(field, `a query for EntityService.Get among: ${fields.map((f) => f.name).join(", ")}`);
  const flat = ["domain", "type", "key"].every((name) => field.args.some((a) => a.name === name));
  const refText = `domain: ${JSON.stringify(ref.domain)}, type: ${JSON.stringify(ref.type)}, key: ${JSON.stringify(ref.key)}`;
  const firstArg = field.args[0];
  assert.ok(flat || firstArg, `${field.name} takes the request as arguments`);
  const args = flat ? refText : `${firstArg?.name}: { ${refText} }`;
  const answer = await graphql(
    baseUrl,
    `{ __type(name: ${JSON.stringify(named(field.type))}) { fields { name description args { name type { name } } type { name kind } } } }`,
  );
  const nested = answer.data?.__type?.fields.some((f) => f.name === "entity");
  return `{ ${field.name}(${args}) { ${nested ? "entity { key values }" : "key values"} } }`;
}

let tg: TestGateway;
let browser: Chromium;
before(async () => {
  tg = await startTestGateway();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await tg?.close();
});

describe("GraphiQL at /api/graphql", () => {
  it("loads in a browser and runs a query", async () => {
    const ref = { domain: unique("graphiql"), type: "user", key: "ada" };
    const node = tg.client({ protocol: "grpc" });
    await node.entity.set({ ...ref, values: { name: "Ada Lovelace" } });
    node.close();
    const query = await entityGetQuery(tg.baseUrl, ref);

    const tab = await browser.context.newPage();
    const errors = pageErrors(tab);
    // GraphiQL is ready once it has the schema: it asks for it on load.
    const introspected = tab.waitForResponse(
      (res) => res.url().startsWith(`${tg.baseUrl}/api/graphql`) && /__schema/.test(res.request().postData() ?? ""),
      { timeout: 30_000 },
    );
    // A browser asks for text/html: the gateway answers with GraphiQL, not a GraphQL error.
    const page = await tab.goto(`${tg.baseUrl}/api/graphql`);
    assert.equal(page?.status(), 200);
    assert.match(page?.headers()["content-type"] ?? "", /^text\/html/);
    assert.equal((await introspected).status(), 200);
    const editor = tab.locator(".graphiql-query-editor .view-lines").first();
    await editor.waitFor({ timeout: 30_000 });
    // Replace the editor's text as a person would (select all, type), tidy it, then press the run button.
    await editor.click();
    await tab.keyboard.press("ControlOrMeta+a");
    await tab.keyboard.press("Delete");
    await tab.keyboard.insertText(query);
    await tab
      .getByRole("button", { name: /prettify/i })
      .first()
      .click();
    await editor.click();
    await tab.keyboard.press("ControlOrMeta+Home");
    // GraphiQL takes the editor's text into its state after a pause (it saves the tabs then): run after that.
    await tab.waitForFunction((domain) => localStorage.getItem("graphiql:tabState")?.includes(domain), ref.domain, {
      timeout: 10_000,
    });
    const answered = tab.waitForResponse(
      (res) =>
        res.url().startsWith(`${tg.baseUrl}/api/graphql`) && (res.request().postData() ?? "").includes(ref.domain),
      { timeout: 15_000 },
    );
    await tab.locator(".graphiql-execute-button").first().click();
    const body = JSON.stringify(await (await answered).json());
    assert.match(body, /Ada Lovelace/, `the query answered: ${body}`);
    await tab.locator(".graphiql-response").getByText("Ada Lovelace").first().waitFor({ timeout: 10_000 });

    await screenshot(tab, "browser-graphiql");
    assert.deepEqual(errors, [], "no console errors");
    await tab.close();
  });
});
