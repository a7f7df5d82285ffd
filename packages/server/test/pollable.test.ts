import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { endStreamAt } from "../src/streams/end-at.js";
import { LiveStream } from "../src/streams/live-stream.js";
import { forEachItem, isPollable, type Pollable } from "../src/streams/pollable.js";
import { StreamQueue } from "../src/streams/queue.js";
import { wrapStream } from "../src/streams/wrap.js";

/**
 * The shortcuts of server streams (streams/pollable.ts): an item already
 * buffered passes every layer synchronously (`poll`), a reader with nothing
 * to take waits once on the innermost buffer (`ready`), and whatever a layer
 * cannot do synchronously is left to `next()`. Each test holds a layer to
 * what its `next()` path does.
 */

const iterate = <T>(source: AsyncIterable<T>) => source[Symbol.asyncIterator]() as Pollable<T>;

/** A live stream over a queue, as the event and peer services build theirs; `start` may yield items first. */
class TestStream extends LiveStream<number | "gap", string> {
  released = 0;
  constructor(
    readonly queue: StreamQueue<number | "gap">,
    private readonly first: string[] = [],
  ) {
    super();
  }
  protected async *start() {
    this.attach({
      queue: this.queue,
      unsubscribe: () => {
        this.released++;
      },
    });
    yield* this.first;
  }
  protected take(item: number | "gap"): IteratorResult<string> | undefined {
    if (item === "gap") {
      this.pending = (async function* () {
        yield "caught up";
      })();
      return undefined;
    }
    return item < 0 ? undefined : { done: false, value: `item ${item}` };
  }
}

describe("StreamQueue, polled", () => {
  it("hands over what it holds without a promise, and leaves an ended queue to next()", async () => {
    const controller = new AbortController();
    const queue = new StreamQueue<number>([controller.signal]);
    const it = iterate(queue);
    assert.equal(it.poll(), undefined);
    const ready = it.ready();
    queue.push(1);
    queue.push(2);
    await ready;
    assert.deepEqual(
      [it.poll(), it.poll(), it.poll()],
      [{ done: false, value: 1 }, { done: false, value: 2 }, undefined],
    );
    queue.push(3);
    controller.abort(new ConnectError("gone", Code.Canceled));
    assert.equal(it.poll(), undefined, "an aborted queue says why through next()");
    await it.ready();
    await assert.rejects(it.next(), (err: unknown) => err instanceof ConnectError && err.code === Code.Canceled);
  });
});

describe("wrapStream, polled", () => {
  it("passes polled items through its hooks, and a failure through its error hook, once", async () => {
    const queue = new StreamQueue<number>([]);
    const outcomes: string[] = [];
    const wrapped = wrapStream(queue, {
      item: (n: number) => {
        if (n === 13) throw new Error("unlucky");
        return n * 10;
      },
      error: (err) => {
        throw new ConnectError(`wrapped: ${(err as Error).message}`, Code.Internal);
      },
      final: (outcome) => outcomes.push(outcome),
    });
    const it = iterate(wrapped);
    assert.ok(isPollable(it));
    assert.equal(it.poll(), undefined, "nothing before the first next(), which starts the source");
    queue.push(1);
    assert.deepEqual(await it.next(), { done: false, value: 10 });
    queue.push(2);
    queue.push(13);
    assert.deepEqual(it.poll(), { done: false, value: 20 });
    assert.throws(() => it.poll(), /wrapped: unlucky/);
    assert.deepEqual(outcomes, ["error"]);
    assert.equal(it.poll(), undefined, "over");
  });

  it("is not pollable through a source that is not", async () => {
    const it = iterate(
      wrapStream(
        (async function* () {
          yield 1;
        })(),
        {},
      ),
    );
    assert.deepEqual(await it.next(), { done: false, value: 1 });
    assert.equal(it.poll(), undefined);
    await it.ready(); // settles at once: next() answers
    assert.deepEqual(await it.next(), { done: true, value: undefined });
  });
});

describe("forEachItem", () => {
  it("reads a pollable source as for-await would, and tells it to stop when the body throws", async () => {
    const queue = new StreamQueue<number>([]);
    const stream = new TestStream(queue as StreamQueue<number | "gap">, ["stored"]);
    const seen: string[] = [];
    const reading = forEachItem(stream, (item) => {
      seen.push(item);
      if (item === "item 3") throw new Error("stop here");
      return undefined;
    });
    await sleep(5);
    queue.push(1);
    queue.push(-1); // skipped by take()
    queue.push(2);
    await sleep(5);
    queue.push(3);
    await assert.rejects(reading, /stop here/);
    assert.deepEqual(seen, ["stored", "item 1", "item 2", "item 3"]);
    assert.equal(stream.released, 1, "return() ended the subscription");
  });

  it("does not call return() when the source itself fails, as for-await does not", async () => {
    let returned = false;
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: () => Promise.reject(new Error("source broke")),
        return: async () => {
          returned = true;
          return { done: true, value: undefined };
        },
      }),
    };
    await assert.rejects(
      forEachItem(source, () => undefined),
      /source broke/,
    );
    assert.equal(returned, false);
  });
});

describe("LiveStream", () => {
  it("runs what take() left pending (a catch-up) before the rest of the queue, polled or not", async () => {
    const queue = new StreamQueue<number | "gap">([]);
    const stream = new TestStream(queue);
    const it = iterate(stream);
    const first = it.next();
    await sleep(5);
    queue.push(1);
    assert.deepEqual(await first, { done: false, value: "item 1" });
    queue.push("gap");
    queue.push(2);
    assert.equal(it.poll(), undefined, "the gap is next()'s to handle");
    await it.ready();
    assert.deepEqual(await it.next(), { done: false, value: "caught up" });
    assert.equal(it.poll(), undefined, "until the catch-up has ended, through next()");
    assert.deepEqual(await it.next(), { done: false, value: "item 2" });
    queue.push(3);
    assert.deepEqual(it.poll(), { done: false, value: "item 3" }, "then polled again");
  });

  it("ends its subscription once, however it ends", async () => {
    const ended = new AbortController();
    const queue = new StreamQueue<number | "gap">([ended.signal]);
    const stream = new TestStream(queue);
    const it = iterate(stream);
    const pending = it.next();
    await sleep(5);
    ended.abort(new ConnectError("deadline", Code.DeadlineExceeded));
    await assert.rejects(pending, (err: unknown) => err instanceof ConnectError && err.code === Code.DeadlineExceeded);
    await it.return?.();
    assert.equal(stream.released, 1);
    assert.equal(queue.ended, true);
  });

  it("lets go of a subscription made while it was being ended", async () => {
    const queue = new StreamQueue<number | "gap">([]);
    const stream = new TestStream(queue, ["first"]);
    const it = iterate(stream);
    assert.deepEqual(await it.next(), { done: false, value: "first" });
    await it.return?.();
    assert.equal(stream.released, 1);
    await assert.rejects(it.next(), (err: unknown) => err instanceof ConnectError && err.code === Code.Canceled);
  });
});

describe("endStreamAt", () => {
  const expired = () => new ConnectError("token expired", Code.Unauthenticated);

  it("passes items through, polled or not, until the time comes; then ends with the error and lets the source go", async () => {
    const queue = new StreamQueue<number>([]);
    let returned = false;
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]() {
        const inner = iterate(queue);
        return {
          ...inner,
          poll: inner.poll,
          ready: inner.ready,
          next: inner.next,
          return: async () => {
            returned = true;
            return { done: true, value: undefined };
          },
        } as Pollable<number>;
      },
    };
    const it = iterate(endStreamAt(source, Date.now() + 60, expired));
    queue.push(1);
    assert.deepEqual(await it.next(), { done: false, value: 1 });
    queue.push(2);
    assert.deepEqual(it.poll(), { done: false, value: 2 });
    const waiting = it.ready();
    await waiting; // woken by the time, with nothing queued
    assert.equal(it.poll(), undefined);
    await assert.rejects(it.next(), (err: unknown) => err instanceof ConnectError && err.code === Code.Unauthenticated);
    assert.equal(returned, true);
    assert.deepEqual(await it.next(), { done: true, value: undefined });
  });

  it("wakes a pending next() when the time comes", async () => {
    const queue = new StreamQueue<number>([]);
    const it = iterate(endStreamAt(queue, Date.now() + 30, expired));
    await assert.rejects(it.next(), /token expired/);
  });
});
