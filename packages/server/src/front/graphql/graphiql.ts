import { promisify } from "node:util";
import { gzip } from "node:zlib";
import type { GraphiQLOptions } from "graphql-yoga";
import type { AnyRequest, AnyResponse } from "../door.js";

const gzipped = promisify(gzip);

/** Where GraphiQL's scripts, styles and editor workers are served, from the gateway itself. */
export const ASSETS_PATH = "/api/graphql/assets/";

type Bundle = typeof import("@graphql-yoga/render-graphiql/graphiql");

/**
 * GraphiQL's prebuilt bundle (@graphql-yoga/render-graphiql) holds every file
 * as a string; each is served under ASSETS_PATH rather than inlined or fetched
 * from a CDN, so the page works offline and the HTML stays small.
 */
const assets: Record<string, { type: string; body: (bundle: Bundle) => string | Buffer }> = {
  "graphiql.js": { type: "text/javascript; charset=utf-8", body: (b) => b.js },
  "graphiql.css": { type: "text/css; charset=utf-8", body: (b) => b.css },
  "editor.worker.js": { type: "text/javascript; charset=utf-8", body: (b) => b.editorWorkerService },
  "json.worker.js": { type: "text/javascript; charset=utf-8", body: (b) => b.jsonWorker },
  "graphql.worker.js": { type: "text/javascript; charset=utf-8", body: (b) => b.graphqlWorker },
  "favicon.ico": {
    type: "image/x-icon",
    body: (b) => Buffer.from(b.favicon.slice(b.favicon.indexOf(",") + 1), "base64"),
  },
};

// The bundle is 9 MB of strings: loaded on the first visit, not at start-up.
let bundle: Promise<Bundle> | undefined;
const served = new Map<string, Promise<{ plain: Buffer; gzip: Buffer }>>();

function load(name: string): Promise<{ plain: Buffer; gzip: Buffer }> | undefined {
  const asset = assets[name];
  if (!asset) return undefined;
  let entry = served.get(name);
  if (!entry) {
    entry = (async () => {
      bundle ??= import("@graphql-yoga/render-graphiql/graphiql");
      const body = asset.body(await bundle);
      const plain = typeof body === "string" ? Buffer.from(body) : body;
      return { plain, gzip: await gzipped(plain) };
    })();
    served.set(name, entry);
  }
  return entry;
}

/** Answers a GET for one of GraphiQL's files under ASSETS_PATH; 404 for any other name. */
export async function serveAsset(req: AnyRequest, res: AnyResponse, pathname: string): Promise<void> {
  const name = pathname.slice(ASSETS_PATH.length);
  const entry = req.method === "GET" || req.method === "HEAD" ? load(name) : undefined;
  if (!entry) {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end("not found");
    return;
  }
  const { plain, gzip } = await entry;
  const useGzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
  const body = useGzip ? gzip : plain;
  res.writeHead(200, {
    "content-type": assets[name]?.type ?? "application/octet-stream",
    "content-length": String(body.length),
    "cache-control": "public, max-age=3600",
    vary: "accept-encoding",
    ...(useGzip ? { "content-encoding": "gzip" } : {}),
  });
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

/** The GraphiQL page: Yoga's GraphiQL with every file from ASSETS_PATH, nothing from elsewhere. */
export function renderGraphiql(options: GraphiQLOptions): string {
  // Inside a <script>, "</script>" in an option would end it early.
  const json = JSON.stringify(options).replaceAll("<", "\\u003c");
  const title = (options.title ?? "GraphiQL").replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${title}</title>
    <link rel="icon" href="${ASSETS_PATH}favicon.ico" />
    <link rel="stylesheet" href="${ASSETS_PATH}graphiql.css" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>GraphiQL needs JavaScript.</noscript>
    <div id="root"></div>
    <script>
      // The editor's web workers load from the gateway too.
      const workers = {
        editorWorkerService: "${ASSETS_PATH}editor.worker.js",
        json: "${ASSETS_PATH}json.worker.js",
        graphql: "${ASSETS_PATH}graphql.worker.js",
      };
      self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (_id, label) => workers[label] };
    </script>
    <script src="${ASSETS_PATH}graphiql.js"></script>
    <script>
      YogaGraphiQL.renderYogaGraphiQL(document.querySelector("#root"), ${json});
    </script>
  </body>
</html>
`;
}
