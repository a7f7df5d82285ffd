import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Chromium } from "./chromium.js";
import { launchChromium, pageErrors } from "./chromium.js";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique, until } from "./helpers.js";

/**
 * REST from a page in headless Chromium, on an origin the gateway allows: the
 * event stream through the browser's own EventSource, and CORS preflights
 * answered with the headers STATEGATE_CORS_ALLOW_HEADERS lists.
 */
let app: http.Server;
let origin: string;
let tg: TestGateway;
let browser: Chromium;
before(async () => {
  // A blank page: the tests run their script in it, so their requests come from its origin.
  app = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end('<!doctype html><link rel="icon" href="data:,"><title>rest</title>');
  });
  await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  tg = await startTestGateway({
    STATEGATE_CORS_ALLOW_ORIGINS: origin,
    STATEGATE_CORS_ALLOW_HEADERS: "authorization,x-custom",
  });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await tg?.close();
  app?.closeAllConnections();
  await new Promise((resolve) => app?.close(resolve));
});

describe("REST in a browser", () => {
  it("EventSource opens /api/events/stream from another origin and receives an event", async () => {
    const domain = unique("eventsource");
    const tab = await browser.context.newPage();
    const errors = pageErrors(tab);
    await tab.goto(origin);
    await tab.evaluate((url) => {
      const received: { id: string; key: string }[] = [];
      const source = new EventSource(url);
      source.onmessage = (e) => {
        received.push({ id: e.lastEventId, key: JSON.parse(e.data).event.entity.key });
      };
      Object.assign(window, { received, source });
    }, `${tg.baseUrl}/api/events/stream?domain=${domain}&type=*`);
    await until(() => tg.gateway.openStreams() === 1);

    const client = tg.client();
    const { event } = await client.entity.set({ domain, type: "user", key: "ada", values: { name: "Ada" } });
    client.close();
    const received = await tab
      .waitForFunction(() => (window as unknown as { received: unknown[] }).received.length > 0, undefined, {
        timeout: 10_000,
      })
      .then(() => tab.evaluate(() => (window as unknown as { received: { id: string; key: string }[] }).received));
    assert.deepEqual(received, [{ id: String(event?.position), key: "ada" }], "id: is the event's position");

    // Closing the EventSource ends the call on the gateway.
    await tab.evaluate(() => (window as unknown as { source: EventSource }).source.close());
    await until(() => tg.gateway.openStreams() === 0);
    assert.deepEqual(errors, []);
    await tab.close();
  });

  it("sends a header STATEGATE_CORS_ALLOW_HEADERS lists after a preflight, and not one it does not", async () => {
    const domain = unique("preflight");
    const client = tg.client();
    await client.entity.set({ domain, type: "user", key: "ada", values: { name: "Ada" } });
    client.close();
    const tab = await browser.context.newPage();
    await tab.goto(origin);
    const url = `${tg.baseUrl}/api/entity/ref/${domain}/user/ada`;
    const outcome = (header: string) =>
      tab.evaluate(
        async ({ url, header }) => {
          try {
            const res = await fetch(url, { headers: { [header]: "1" } });
            return { status: res.status, values: (await res.json()).entity?.values };
          } catch (err) {
            return { failed: String(err) };
          }
        },
        { url, header },
      );
    // Neither header is one a page may send without asking: each fetch is preflighted first.
    assert.deepEqual(await outcome("x-custom"), { status: 200, values: { name: "Ada" } });
    const refused = await outcome("x-other");
    assert.match(String((refused as { failed?: string }).failed), /TypeError/, JSON.stringify(refused));
    await tab.close();
  });
});
