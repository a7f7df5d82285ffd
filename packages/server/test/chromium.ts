import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { BrowserContext, Page } from "playwright-core";
import { chromium } from "playwright-core";
import { repoRoot } from "./helpers.js";

/** Where browser tests leave their screenshots (ignored by git). */
export const artifactsDir = join(repoRoot, "test-artifacts");

/** A headless Chromium with a profile of its own. */
export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Starts Debian's Chromium (`npm test` installs it with apt) through
 * playwright-core, which cannot download a browser of its own here. The
 * profile is a fresh directory, removed on close; Playwright takes it as
 * `userDataDir` rather than as a `--user-data-dir` flag.
 */
export async function launchChromium(): Promise<Chromium> {
  const userDataDir = mkdtempSync(join(tmpdir(), "stategate-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1100, height: 640 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Collects what a page reports as an error: console errors and uncaught exceptions. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`uncaught: ${err.message}`));
  return errors;
}

/** Saves a screenshot of the page under test-artifacts/; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const path = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** The example page, served by its own script the way the README runs it. */
export interface ExamplePage {
  /** e.g. http://127.0.0.1:41603, the origin the gateway must allow. */
  origin: string;
  close(): Promise<void>;
}

/** Runs `node examples/live-entities/serve.mjs --port 0` and waits until it prints its URL. */
export async function serveExample(): Promise<ExamplePage> {
  const child = spawn(process.execPath, [join(repoRoot, "examples/live-entities/serve.mjs"), "--port", "0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the example page did not start within 30 s")), 30_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const m = /^live-entities: (http:\/\/[^/]+)\//.exec(line);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error("the example page's server exited"));
    });
  }).catch((err: unknown) => {
    child.kill("SIGKILL");
    throw err;
  });
  return {
    origin,
    async close() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
