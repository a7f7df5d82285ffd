import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { repoRoot } from "./helpers.js";

const run = promisify(execFile);
const readme = readFileSync(join(repoRoot, "README.md"), "utf8");

/** The fenced blocks of one language, in order. */
function blocks(lang: string): string[] {
  return [...readme.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, "g"))].map((m) => m[1] ?? "");
}

/** Shell commands of a block, with `\` continuations joined and comments dropped. */
function commands(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, "")
    .split("\n")
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line !== "");
}

describe("the README quick start", () => {
  let child: ReturnType<typeof spawn>;
  let port = 0;
  let dataDir: string;
  let exited: Promise<number | null>;
  const lines: string[] = [];

  before(async () => {
    const quickStart = commands(blocks("sh")[0] ?? "");
    assert.deepEqual(quickStart, ["npm start", "npm test"], "the quick start is exactly two commands");
    dataDir = mkdtempSync(join(tmpdir(), "stategate-readme-"));
    // `npm start` as a user types it, on free ports (a gateway the reader left
    // running under `npm start` holds the defaults) and a fresh data directory.
    child = spawn("npm", ["start"], {
      cwd: repoRoot,
      env: {
        ...process.env,
        STATEGATE_PORT: "0",
        STATEGATE_METRICS_PORT: "0",
        STATEGATE_DATA_DIR: dataDir,
        STATEGATE_LOG_LEVEL: "info",
      },
      detached: true,
      stdio: ["ignore", "pipe", "inherit"],
    });
    exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("npm start did not listen within 120 s")), 120_000);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`npm start exited with ${code} before it listened`));
      });
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        lines.push(line);
        const m = /"port":(\d+).*stategate listening/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
  });

  after(async () => {
    // Like Ctrl-C in a terminal: the signal reaches npm and the gateway under it.
    if (child?.pid) process.kill(-child.pid, "SIGTERM");
    await exited;
    // The gateway shares npm's stdout: wait until its last writer closed it.
    if (!child.stdout?.closed) await new Promise((resolve) => child.stdout?.once("close", resolve));
    assert.ok(
      lines.some((l) => l.includes("stategate stopped")),
      "the gateway under npm start stops cleanly",
    );
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("runs every buf curl example", async () => {
    const examples = commands(blocks("sh")[1] ?? "");
    assert.ok(examples.length >= 5, "the README shows buf curl examples");
    const outputs: Record<string, unknown>[] = [];
    for (const example of examples) {
      assert.match(example, /^npx buf curl /);
      const { stdout } = await run("bash", ["-c", example.replaceAll("localhost:8080", `localhost:${port}`)], {
        cwd: repoRoot,
      });
      outputs.push(JSON.parse(stdout || "{}") as Record<string, unknown>);
    }
    const text = JSON.stringify(outputs);
    assert.match(text, /"role":"admin"/, "the Edit merged the new key");
    assert.match(text, /"version":"2"/, "the Get shows version 2");
    assert.match(text, /"value":"hello"/, "the cache round-trips");
  });

  it("packs the SDK, installs it into a fresh project as the README says, and runs the Node example there", async () => {
    const block = blocks("sh").find((b) => b.includes("npm run pack"));
    assert.ok(block, "the README shows how to install the SDK elsewhere");
    const [pack, install] = commands(block);
    assert.equal(pack, "npm run pack");
    await run("bash", ["-c", pack ?? ""], { cwd: repoRoot });
    const app = mkdtempSync(join(tmpdir(), "stategate-app-"));
    try {
      writeFileSync(join(app, "package.json"), JSON.stringify({ name: "my-service", private: true, type: "module" }));
      // "cd ../my-service && npm install ../stategate/…": here the project is `app` and the repository is repoRoot.
      const npmInstall = (install ?? "").replace(/^cd \S+ && /, "").replaceAll("../stategate/", `${repoRoot}/`);
      assert.match(npmInstall, /^npm install \S+stategate-api-\S+\.tgz \S+stategate-sdk-node-\S+\.tgz$/);
      await run("bash", ["-c", npmInstall], { cwd: app });
      const [example] = blocks("ts");
      writeFileSync(join(app, "example.mts"), (example ?? "").replaceAll("localhost:8080", `localhost:${port}`));
      // tsx only strips the types: the imports resolve from the app's own node_modules.
      const { stdout } = await run(process.execPath, ["--import", import.meta.resolve("tsx"), "example.mts"], {
        cwd: app,
      });
      assert.match(stdout, /hello/, "the installed SDK reached the gateway");
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });

  it("runs the Node example", async () => {
    const [example] = blocks("ts");
    assert.ok(example);
    const file = join(repoRoot, "packages", "server", ".readme-example.mts");
    writeFileSync(file, example.replaceAll("localhost:8080", `localhost:${port}`));
    try {
      const { stdout } = await run(process.execPath, ["--import", "tsx", file], {
        cwd: join(repoRoot, "packages", "server"),
      });
      assert.match(stdout, /ada 1n/, "the stream replayed the first event");
      assert.match(stdout, /hello/);
    } finally {
      rmSync(file, { force: true });
    }
  });
});

describe("the README's Operations commands", () => {
  it("run from the repository as shown, with the exit codes and lines the README gives", async () => {
    const block = blocks("sh").find((b) => b.includes("npm run stategate"));
    assert.ok(block, "the README shows how to run stategate");
    const shown = commands(block);
    assert.deepEqual(shown, [
      "npm run stategate -- --help",
      "npm run stategate -- --version",
      "npm run stategate -- check-config",
    ]);
    const dataDir = mkdtempSync(join(tmpdir(), "stategate-readme-ops-"));
    // Only the build's own environment: no STATEGATE_* variable from the test run leaks in.
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, STATEGATE_DATA_DIR: dataDir };
    try {
      const [help, version, check] = await Promise.all(
        shown.map((command) => run("bash", ["-c", command.replace("npm run ", "npm run -s ")], { cwd: repoRoot, env })),
      );
      assert.match(help?.stdout ?? "", /STATEGATE_STORAGE_PROVIDER/);
      assert.match(version?.stdout ?? "", /^stategate \d+\.\d+\.\d+\n$/);
      assert.match(check?.stdout ?? "", /^configuration: ok .*\nstorage: sqlite ok /);

      // The README's failing example: one line naming the variable, exit 1, the other providers still checked.
      const example = /^\$ (STATEGATE_STORAGE_PROVIDER=.* check-config)$/m.exec(readme)?.[1];
      assert.ok(example, "the README shows check-config failing");
      const failed = await run("bash", ["-c", example], { cwd: repoRoot, env }).then(
        () => assert.fail("check-config should exit 1"),
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
      assert.equal(failed.code, 1);
      assert.match(
        failed.stderr,
        /^stategate: STATEGATE_STORAGE_PROVIDER: cannot reach storage provider mysql: mysql: cannot reach the server\n$/,
      );
      assert.match(failed.stdout, /cache: memory ok .*\nchannel: memory ok /);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
