import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { Sequencer, type SequenceSource } from "../src/streams/sequencer.js";

/**
 * Live events reach the channel in the order their publishes happened, not
 * the order of their positions; the sequencer hands them on in position
 * order, filling from storage a gap the channel leaves open. Items here are
 * plain positions; "storage" is a sorted list with the positions that exist.
 */

const log = pino({ level: "silent" });

function harness(stored: bigint[], start: bigint, waitMs = 10) {
  const sent: bigint[] = [];
  const reads: bigint[] = [];
  const source: SequenceSource<bigint> = {
    positionOf: (p) => p,
    last: async () => start,
    after: async (position, limit) => {
      reads.push(position);
      return stored.filter((p) => p > position).slice(0, limit);
    },
  };
  const sequencer = new Sequencer(source, (p) => sent.push(p), log, waitMs);
  return { sequencer, sent, reads };
}

describe("Sequencer", () => {
  it("sends items in position order, holding one that came early until its predecessor comes", async () => {
    const { sequencer, sent, reads } = harness([], 10n);
    await sequencer.start();
    sequencer.push(11n);
    sequencer.push(13n);
    sequencer.push(14n);
    assert.deepEqual(sent, [11n]);
    sequencer.push(12n);
    assert.deepEqual(sent, [11n, 12n, 13n, 14n]);
    await sleep(30);
    assert.deepEqual(reads, [], "no gap stayed open, so storage was not read");
  });

  it("fills a gap the channel leaves open from storage, and skips positions storage does not have", async () => {
    // 12 was committed but its publish was lost; 14 does not exist (say, deleted by hand).
    const { sequencer, sent, reads } = harness([11n, 12n, 13n, 15n, 16n], 10n);
    await sequencer.start();
    sequencer.push(11n);
    sequencer.push(13n);
    sequencer.push(15n);
    assert.deepEqual(sent, [11n]);
    await sleep(40);
    assert.deepEqual(sent, [11n, 12n, 13n, 15n]);
    assert.deepEqual(reads, [11n], "one read, after the last position sent");
    // The lost publish arrives at last, as the outbox sweep sends it: already sent.
    sequencer.push(12n);
    sequencer.push(16n);
    assert.deepEqual(sent, [11n, 12n, 13n, 15n, 12n, 16n], "a late copy goes on, for the hub's dedupe to drop");
  });

  it("sends a held item a storage read did not see before what the read found after it", async () => {
    // 12 is lost on the channel; the fill's read sees 12 and 14 but not 13 yet (a read view
    // taken before 13's commit was visible), while 13 itself came on the channel and is held.
    const { sequencer, sent } = harness([11n, 12n, 14n], 10n);
    await sequencer.start();
    sequencer.push(11n);
    sequencer.push(13n);
    sequencer.push(14n);
    await sleep(40);
    assert.deepEqual(sent, [11n, 12n, 13n, 14n]);
    sequencer.push(15n);
    assert.deepEqual(sent, [11n, 12n, 13n, 14n, 15n], "nothing left held: the next item goes straight out");
  });

  it("holds what comes before its start is known, then sends it in order", async () => {
    const { sequencer, sent } = harness([], 20n);
    sequencer.push(22n);
    sequencer.push(19n); // committed before the start: not ordered against anything
    sequencer.push(21n);
    assert.deepEqual(sent, []);
    await sequencer.start();
    assert.deepEqual(sent, [19n, 21n, 22n]);
  });

  it("starts from the first item when storage cannot say where to start", async () => {
    const sent: bigint[] = [];
    const sequencer = new Sequencer<bigint>(
      {
        positionOf: (p) => p,
        last: () => Promise.reject(new Error("storage down")),
        after: async () => [],
      },
      (p) => sent.push(p),
      log,
      10,
    );
    await sequencer.start();
    sequencer.push(5n);
    sequencer.push(7n);
    sequencer.push(6n);
    assert.deepEqual(sent, [5n, 6n, 7n]);
  });

  it("sends what it holds, in order, when it is closed", async () => {
    const { sequencer, sent } = harness([], 0n, 10_000);
    await sequencer.start();
    sequencer.push(3n);
    sequencer.push(2n);
    sequencer.close();
    assert.deepEqual(sent, [2n, 3n]);
    sequencer.push(1n);
    assert.deepEqual(sent, [2n, 3n], "nothing after close");
  });
});
