#!/usr/bin/env node
// Serves the live-entities page: index.html, and src/main.ts bundled for
// browsers by esbuild (rebuilt on each load, so an edit shows on reload).
//
//   node examples/live-entities/serve.mjs [--port 5173] [--host 127.0.0.1] [--gateway http://127.0.0.1:8080]
//
// The gateway must allow this page's origin: start it with
// STATEGATE_CORS_ALLOW_ORIGINS=http://127.0.0.1:5173. Prints the page's URL on
// stdout once it listens; `--port 0` picks a free port.
import { readFile } from "node:fs/promises";
import http from "node:http";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "5173" },
    host: { type: "string", default: "127.0.0.1" },
    gateway: { type: "string", default: "http://127.0.0.1:8080" },
  },
});

const build = await esbuild.context({
  entryPoints: [join(here, "src", "main.ts")],
  outfile: join(here, "main.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  sourcemap: "linked",
  minify: true,
  write: false,
  logLevel: "warning",
});

/** Bundles the page's script; the files by name (main.js, main.js.map). */
async function bundle() {
  const result = await build.rebuild();
  return new Map(result.outputFiles.map((file) => [basename(file.path), file.contents]));
}

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
};

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url ?? "/", "http://page").pathname;
  try {
    const name = path === "/" ? "index.html" : path.slice(1);
    let body;
    if (name === "index.html") body = await readFile(join(here, "index.html"));
    else if (name === "main.js" || name === "main.js.map") body = (await bundle()).get(name);
    if (body === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": types[name.slice(name.lastIndexOf("."))], "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch (err) {
    console.error(err);
    res.writeHead(500, { "content-type": "text/plain" }).end(String(err));
  }
});

server.listen(Number(args.port), args.host, () => {
  const { port } = server.address();
  const origin = `http://${args.host.includes(":") ? `[${args.host}]` : args.host}:${port}`;
  console.log(`live-entities: ${origin}/?gateway=${args.gateway}`);
  console.log(`  (the gateway needs STATEGATE_CORS_ALLOW_ORIGINS=${origin})`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, async () => {
    server.close();
    server.closeAllConnections();
    await build.dispose();
    process.exit(0);
  });
}
