// A load-generator process. The orchestrator (run.mjs) forks one per job and
// sends it {type: "job", job}; the worker answers {type: "result", result} or
// {type: "error", message}, and may send {type: "phase", …} on the way so the
// orchestrator can sample the gateway's CPU around a measured window.
// Nothing here ever runs inside a gateway process.
import { setTimeout as sleep } from "node:timers/promises";

// Modules load per job kind: a worker starts faster when it skips what its job does not use.

const inbox = [];
const waiters = [];
process.on("message", (message) => {
  const waiter = waiters.findIndex((w) => w.type === message.type);
  if (waiter >= 0) waiters.splice(waiter, 1)[0].resolve(message);
  else inbox.push(message);
});

/** Talks to the orchestrator: send a message, or wait for one of a type. */
export const channel = {
  send: (message) => new Promise((resolve) => process.send(message, () => resolve())),
  receive(type) {
    const queued = inbox.findIndex((m) => m.type === type);
    if (queued >= 0) return Promise.resolve(inbox.splice(queued, 1)[0]);
    return new Promise((resolve) => waiters.push({ type, resolve }));
  },
};

/**
 * Scenarios 1 and 2 for one operation on one or more paths, in turn. Sends
 * {type:"phase", phase:"open-start"|"open-end", path} around each measured
 * open-loop window so the orchestrator can read the gateway's CPU.
 */
async function suite({ paths, name, ctx, open, closed }) {
  const [{ closedLoop, openLoop }, { createOperation }] = await Promise.all([
    import("./loops.mjs"),
    import("./ops.mjs"),
  ]);
  const results = {};
  for (const path of paths) {
    const { op, close } = createOperation(path, name, ctx);
    const out = { path, name };
    try {
      // Opens the connection and checks the operation works before timing it.
      await op(0);
      if (open) {
        if (open.warmupMs > 0) {
          const warm = await openLoop(op, {
            rate: open.rate,
            durationMs: open.warmupMs,
            firstIndex: 1,
            graceMs: open.graceMs,
          });
          if (warm.unanswered > 0) await Promise.race([warm.drained, sleep(open.graceMs)]);
        }
        await channel.send({ type: "phase", phase: "open-start", path });
        out.open = await openLoop(op, {
          rate: open.rate,
          durationMs: open.durationMs,
          firstIndex: 1_000_000,
          graceMs: open.graceMs,
        });
        await channel.send({ type: "phase", phase: "open-end", path, ok: out.open.ok });
        // Requests left unanswered at the deadline must not load the closed loops below.
        if (out.open.unanswered > 0) await Promise.race([out.open.drained, sleep(open.graceMs)]);
      }
      if (closed) {
        out.closed = [];
        for (const concurrency of closed.concurrencies) {
          out.closed.push(
            await closedLoop(op, {
              concurrency,
              durationMs: closed.durationMs,
              warmupMs: closed.warmupMs,
              minOps: closed.minOps,
              firstIndex: 2_000_000 * (out.closed.length + 1),
            }),
          );
        }
      }
    } finally {
      await close();
    }
    results[path] = out;
  }
  return results;
}

const jobs = {
  suite,
  seed: async (job) => (await import("./seed.mjs")).seed(job),
  doors: async (job) => (await import("./doors.mjs")).runDoors(job),
  rego: async (job) => (await import("./rego.mjs")).runRego(job),
  fanoutSubscriber: async (job, ch) => (await import("./streams.mjs")).fanoutSubscriber(job, ch),
  fanoutWriter: async (job, ch) => (await import("./streams.mjs")).fanoutWriter(job, ch),
  idleStreams: async (job, ch) => (await import("./streams.mjs")).idleStreams(job, ch),
};

const { job } = await channel.receive("job");
try {
  const run = jobs[job.kind];
  if (!run) throw new Error(`unknown job kind ${job.kind}`);
  const result = await run(job, channel);
  await channel.send({ type: "result", result });
} catch (error) {
  await channel.send({ type: "error", message: error?.stack ?? String(error) });
}
process.exit(0);
