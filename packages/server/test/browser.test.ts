import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as esbuild from "esbuild";
import type { Page } from "playwright-core";
import type { Chromium, ExamplePage } from "./chromium.js";
import { launchChromium, pageErrors, screenshot, serveExample } from "./chromium.js";
import type { TestGateway } from "./helpers.js";
import { repoRoot, startTestGateway, unique } from "./helpers.js";

/**
 * The example page (examples/live-entities) in headless Chromium, against a
 * gateway that allows the page's origin: each protocol and format the browser
 * SDK speaks, end to end through CORS, fetch streaming and the event stream.
 */
const cases = [
  { name: "grpc-web", query: "protocol=grpc-web", contentType: /^application\/grpc-web\+proto$/ },
  { name: "connect", query: "protocol=connect", contentType: /^application\/(connect\+)?proto$/ },
  { name: "connect-json", query: "protocol=connect&format=json", contentType: /^application\/(connect\+)?json$/ },
];

let page: ExamplePage;
let tg: TestGateway;
let browser: Chromium;
/** A second page origin, serving the README's browser example as `/example.js` once it is bundled. */
let readmeApp: http.Server;
let readmeOrigin: string;
let readmeJs = "";
before(async () => {
  page = await serveExample();
  readmeApp = http.createServer((req, res) => {
    if (req.url === "/example.js") res.writeHead(200, { "content-type": "text/javascript" }).end(readmeJs);
    else {
      res.writeHead(200, { "content-type": "text/html" });
      res.end('<!doctype html><link rel="icon" href="data:,"><script type="module" src="/example.js"></script>');
    }
  });
  await new Promise<void>((resolve) => readmeApp.listen(0, "127.0.0.1", resolve));
  readmeOrigin = `http://127.0.0.1:${(readmeApp.address() as AddressInfo).port}`;
  tg = await startTestGateway({ STATEGATE_CORS_ALLOW_ORIGINS: `${page.origin},${readmeOrigin}` });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await tg?.close();
  await page?.close();
  readmeApp?.closeAllConnections();
  await new Promise((resolve) => readmeApp?.close(resolve));
});

/** The text of a row's cell, or undefined while the row is not there. */
async function cell(tab: Page, key: string, name: "version" | "values" | "change"): Promise<string | undefined> {
  const row = tab.locator(`tr[data-key="${key}"] td.${name}`);
  return (await row.count()) === 0 ? undefined : ((await row.textContent()) ?? undefined);
}

/** Waits until the row of `key` shows `version`; only an event from the stream changes a row. */
async function waitForVersion(tab: Page, key: string, version: number): Promise<void> {
  await tab.waitForSelector(`tr[data-key="${key}"] td.version:text-is("${version}")`, { timeout: 10_000 });
}

for (const { name, query, contentType } of cases) {
  describe(`the live-entities page over ${name}`, () => {
    it("shows entities, follows their events, and Sets and Edits through its form", async () => {
      const domain = unique("web");
      const ref = { domain, type: "user" };
      const node = tg.client({ protocol: "grpc" });
      // Already there when the page loads: comes from Search.
      await node.entity.set({ ...ref, key: "linus", values: { name: "Linus" } });

      const tab = await browser.context.newPage();
      const errors = pageErrors(tab);
      const sent = new Set<string>();
      tab.on("request", (req) => {
        if (req.url().startsWith(tg.baseUrl) && req.method() === "POST") sent.add(req.headers()["content-type"] ?? "");
      });
      await tab.goto(`${page.origin}/?${query}&gateway=${encodeURIComponent(tg.baseUrl)}&domain=${domain}&type=user`);
      await tab.waitForSelector('#status[data-state="live"]', { timeout: 10_000 });
      await waitForVersion(tab, "linus", 1);

      // Set through the form: the row appears when the event comes back on the stream.
      await tab.fill('input[name="key"]', "ada");
      await tab.fill('textarea[name="values"]', '{"name": "Ada", "langs": ["en", "fr"]}');
      await tab.click('button[value="set"]');
      await waitForVersion(tab, "ada", 1);
      assert.deepEqual(JSON.parse((await cell(tab, "ada", "values")) ?? ""), { name: "Ada", langs: ["en", "fr"] });
      assert.match((await cell(tab, "ada", "change")) ?? "", /^set · #\d+$/);

      // Edit through the form merges top-level keys.
      await tab.fill('textarea[name="values"]', '{"role": "admin"}');
      await tab.click('button[value="edit"]');
      await waitForVersion(tab, "ada", 2);
      assert.deepEqual(JSON.parse((await cell(tab, "ada", "values")) ?? ""), {
        name: "Ada",
        langs: ["en", "fr"],
        role: "admin",
      });
      assert.match((await cell(tab, "ada", "change")) ?? "", /^edit · /);

      // Changes made elsewhere show up the same way: a Set, a Revert, a Del.
      const { event: first } = await node.entity.set({ ...ref, key: "grace", values: { name: "Grace" } });
      await waitForVersion(tab, "grace", 1);
      await node.entity.edit({ ...ref, key: "grace", values: { team: "navy" } });
      await waitForVersion(tab, "grace", 2);
      await node.entity.revert({ ...ref, key: "grace", id: first?.id ?? "" });
      await waitForVersion(tab, "grace", 3);
      assert.deepEqual(JSON.parse((await cell(tab, "grace", "values")) ?? ""), { name: "Grace" });
      assert.match((await cell(tab, "grace", "change")) ?? "", /^revert · /);
      await node.entity.del({ ...ref, key: "linus" });
      await tab.waitForSelector('tr[data-key="linus"]', { state: "detached", timeout: 10_000 });

      // The row's delete button deletes through the page.
      await tab.click('tr[data-key="grace"] button.delete');
      await tab.waitForSelector('tr[data-key="grace"]', { state: "detached", timeout: 10_000 });
      await node.entity.set({ ...ref, key: "grace", values: { name: "Grace", back: true } });
      await waitForVersion(tab, "grace", 5);

      const shot = await screenshot(tab, `browser-${name}`);

      // A bad form value is reported on the page, not sent.
      await tab.fill('textarea[name="values"]', "[1, 2]");
      await tab.click('button[value="set"]');
      assert.equal(await tab.textContent("#error"), "values must be a JSON object");

      assert.deepEqual(errors, [], `no console errors (screenshot: ${shot})`);
      assert.ok(sent.size > 0);
      for (const type of sent) assert.match(type, contentType, `${name} sends ${type}`);
      await tab.close();
      node.close();
    });
  });
}

describe("the README's browser example", () => {
  it("runs in Chromium from an allowed origin", async () => {
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
      .map((m) => m[1] ?? "")
      .find((b) => b.includes("@stategate/sdk-web"));
    assert.ok(block, "the README has a browser example");
    // Bundled as an app would bundle it; the SDK resolves from the example page's dependencies.
    const bundle = await esbuild.build({
      stdin: {
        contents: block.replaceAll("localhost:8080", `127.0.0.1:${tg.gateway.port}`),
        resolveDir: join(repoRoot, "examples", "live-entities"),
        loader: "ts",
      },
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      logLevel: "silent",
    });
    const tab = await browser.context.newPage();
    const errors = pageErrors(tab);
    // What the example logs, as text the page itself makes (Playwright cannot carry a bigint across).
    await tab.addInitScript(() => {
      const logged: string[] = [];
      Object.assign(window, { logged });
      const log = console.log.bind(console);
      console.log = (...args: unknown[]) => {
        logged.push(args.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(" "));
        log(...args);
      };
    });
    // A blank page on another allowed origin runs the example as a module script.
    readmeJs = bundle.outputFiles[0]?.text ?? "";
    await tab.goto(readmeOrigin);
    const line = 'ada 1 {"name":"Ada"}';
    const replayed = await tab
      .waitForFunction((want) => (window as unknown as { logged: string[] }).logged.includes(want), line, {
        timeout: 10_000,
      })
      .then(() => true)
      .catch(() => false);
    const logged = await tab.evaluate(() => (window as unknown as { logged: string[] }).logged);
    assert.ok(replayed, `the stream replayed the Set: ${JSON.stringify({ logged, errors })}`);
    assert.deepEqual(errors, []);
    await tab.close();
  });
});
