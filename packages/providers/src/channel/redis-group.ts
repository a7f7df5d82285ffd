/**
 * One member of a consumer group: a consumer of the Redis consumer group on
 * its topic's stream, reading on a connection of its own (XREADGROUP blocks
 * it), so members never wait on each other and every member, on any gateway,
 * is one consumer the server hands entries to.
 *
 * - Each entry is acknowledged (XACK, on the instance's publishing
 *   connection) once the handler is done with it.
 * - Every quarter of `groupIdleMs` the member beats: it refreshes its mark in
 *   the group's member set and the idle time of what it holds, forgets
 *   consumers of dead members, and claims (XAUTOCLAIM) entries left idle for
 *   `groupIdleMs`: those of dead members and those a leaving member released.
 * - Leaving hands what it did not handle to the others and deletes its
 *   consumer; the last live member deletes the group.
 * - When the group is gone (a server restart) the member joins again and
 *   calls `onReconnect`: payloads published meanwhile were not kept for it.
 */
import { hostname } from "node:os";
import type { Topic } from "../types.js";
import { Inbox } from "./inbox.js";
import { isGroupLost, redisDisconnected } from "./redis-errors.js";
import {
  type Connection,
  groupName,
  membersKey,
  openConnection,
  parseEntries,
  releasedConsumer,
  releasedIdleMs,
  type StreamEntry,
  streamKey,
} from "./redis-link.js";
import type { RedisSettings } from "./redis-options.js";

/** At most this many entries are held (read or claimed, not yet acknowledged) per member. */
const holdMax = 32;
/** How long a read blocks before it is issued again. */
const blockMs = 5_000;
// How long a leaving member may finish the payload in hand, so it is
// acknowledged instead of handed to another member.
const handOffWaitMs = 2_000;

/** What a member needs from its channel instance. */
export interface GroupContext {
  settings: RedisSettings;
  /** The instance's publishing connection: acknowledgements, heartbeats and leaving go through it. */
  command: Connection;
  report(error: unknown): void;
}

/** A live member; `leave()` ends it. */
export interface GroupMember {
  leave(): Promise<void>;
}

/** Resolves when `promise` settles or after `ms`, whichever comes first. */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}

let consumers = 0;

class Member implements GroupMember {
  readonly inbox: Inbox;
  private active = true;
  private readonly stream: string;
  private readonly members: string;
  private readonly group: string;
  private readonly consumer =
    `${hostname()}:${process.pid}:${(consumers++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  /** Entries handed to the inbox and not handled yet. */
  private readonly held = new Set<string>();
  /** Entries handled whose acknowledgement the server has not confirmed yet. */
  private readonly acking = new Set<string>();
  /**
   * After a reconnect: where to go on reading what the server delivered to
   * this consumer (its pending entries) before reading new ones.
   */
  private history: string | undefined;
  private rejoin = false;
  private wake: (() => void) | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> = Promise.resolve();
  private left: Promise<void> | undefined;

  constructor(
    private readonly context: GroupContext,
    private readonly connection: Connection,
    topic: Topic,
    group: string,
    handler: (payload: Uint8Array) => void | Promise<void>,
    private readonly onReconnect: (() => void) | undefined,
  ) {
    this.stream = streamKey(context.settings, topic);
    this.members = membersKey(context.settings, topic, group);
    this.group = groupName(group);
    this.inbox = new Inbox(handler, context.report);
    connection.on("ready", () => this.nudge());
    connection.on("close", () => {
      // Whatever the server sent in reply to the read that broke is pending on this consumer: read it again.
      if (this.active) this.history = "0";
    });
  }

  async start(): Promise<void> {
    await this.join();
    this.loop = this.run().catch((error: unknown) => this.context.report(error));
    this.scheduleBeat(0);
  }

  leave(): Promise<void> {
    this.left ??= this.stop();
    return this.left;
  }

  private get idleMs(): number {
    return this.context.settings.groupIdleMs;
  }

  private nudge(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Waits for a nudge (a settled payload, a reconnect, leaving) or `ms`. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async join(): Promise<void> {
    await this.connection.stategateJoin(this.stream, this.members, this.group, this.consumer, this.idleMs);
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (this.active) {
      try {
        if (this.connection.status !== "ready") {
          await this.pause(1_000);
          continue;
        }
        if (this.rejoin) {
          await this.join();
          this.rejoin = false;
          this.history = undefined;
          // The old group's pending list went with it: acknowledging there is moot.
          this.acking.clear();
          this.notifyReconnect();
          continue;
        }
        const room = holdMax - this.held.size - this.acking.size;
        if (room <= 0) {
          await this.pause(1_000);
          continue;
        }
        const history = this.history;
        const reply = await this.connection.callBuffer(
          "XREADGROUP",
          ...["GROUP", this.group, this.consumer, "COUNT", room],
          ...(history === undefined ? ["BLOCK", blockMs] : []),
          ...["STREAMS", this.stream, history ?? ">"],
        );
        const entries = parseEntries((reply as [Buffer, unknown][] | null)?.[0]?.[1]);
        // Reading from an id returns the entries pending here after it; once there are none, read new ones.
        if (history !== undefined && this.history === history) {
          this.history = entries.at(-1)?.id;
        }
        this.take(entries);
        backoff = 100;
      } catch (error) {
        if (!this.active) break;
        if (isGroupLost(error)) {
          this.rejoin = true;
        } else if (this.connection.status === "ready") {
          this.context.report(error);
          await this.pause(backoff);
          backoff = Math.min(backoff * 2, 5_000);
        }
      }
    }
  }

  /** Hands entries to the handler, skipping those already held. */
  private take(entries: StreamEntry[]): void {
    const gone: string[] = [];
    for (const { id, payload } of entries) {
      if (this.held.has(id) || this.acking.has(id)) continue;
      if (payload === null) {
        // Trimmed before anyone read it: nothing to deliver, only to acknowledge.
        gone.push(id);
        continue;
      }
      this.held.add(id);
      if (!this.inbox.push({ payload: new Uint8Array(payload), settle: () => this.settled(id) })) {
        this.held.delete(id);
      }
    }
    if (gone.length > 0) {
      for (const id of gone) this.acking.add(id);
      void this.flushAcks();
    }
  }

  private settled(id: string): void {
    this.held.delete(id);
    this.acking.add(id);
    void this.flushAcks();
  }

  private async flushAcks(): Promise<void> {
    const ids = [...this.acking];
    if (ids.length === 0 || this.context.command.status !== "ready") {
      return;
    }
    try {
      await this.context.command.xack(this.stream, this.group, ...ids);
      for (const id of ids) this.acking.delete(id);
      this.nudge();
    } catch (error) {
      // Kept: the next beat or acknowledgement tries again.
      if (isGroupLost(error)) this.rejoin = true;
      else if (this.context.command.status === "ready") this.context.report(error);
    }
  }

  private scheduleBeat(ms: number): void {
    if (!this.active) return;
    this.beatTimer = setTimeout(() => {
      this.beat().then(
        (again) => this.scheduleBeat(again ? 0 : Math.max(50, Math.floor(this.idleMs / 4))),
        (error: unknown) => {
          this.context.report(error);
          this.scheduleBeat(Math.max(50, Math.floor(this.idleMs / 4)));
        },
      );
    }, ms);
    this.beatTimer.unref();
  }

  /** One heartbeat and claim; true when it claimed a full batch and more may wait. */
  private async beat(): Promise<boolean> {
    const command = this.context.command;
    if (!this.active || this.rejoin || command.status !== "ready") {
      return false;
    }
    await this.flushAcks();
    const room = Math.max(0, holdMax - this.held.size - this.acking.size);
    let reply: unknown;
    try {
      reply = await command.stategateBeatBuffer(
        this.stream,
        this.members,
        this.group,
        this.consumer,
        this.idleMs,
        room,
        ...this.held,
      );
    } catch (error) {
      // The read loop meets the lost group too, and joins again.
      if (isGroupLost(error) || command.status !== "ready") return false;
      throw error;
    }
    if (!this.active) {
      return false;
    }
    const claimed = parseEntries((reply as unknown[])[1]);
    this.take(claimed);
    return room > 0 && claimed.length >= room;
  }

  private notifyReconnect(): void {
    try {
      this.onReconnect?.();
    } catch (error) {
      this.context.report(error);
    }
  }

  private async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.beatTimer);
    // Not started yet: left unacknowledged, so they are handed to the others below.
    this.inbox.stop();
    // Ends a blocked read. What the server delivered to it meanwhile is pending here, and handed over too.
    this.connection.disconnect();
    this.nudge();
    // Bounded: a handler that awaits its own unsubscribe would otherwise wait for itself.
    await within(this.inbox.idle(), handOffWaitMs);
    await this.loop;
    await this.flushAcks();
    const command = this.context.command;
    if (command.status !== "ready") {
      // Without its heartbeat the member counts as dead after groupIdleMs: live members claim what it held.
      this.context.report(redisDisconnected());
      return;
    }
    try {
      await command.stategateLeave(
        this.stream,
        this.members,
        this.group,
        this.consumer,
        this.idleMs,
        releasedConsumer,
        releasedIdleMs,
      );
    } catch (error) {
      this.context.report(error);
    }
  }
}

/**
 * Joins a consumer group on a connection of its own; throws
 * ProviderUnavailableError when the connection cannot be made.
 */
export async function joinGroup(
  context: GroupContext,
  topic: Topic,
  group: string,
  handler: (payload: Uint8Array) => void | Promise<void>,
  onReconnect: (() => void) | undefined,
): Promise<GroupMember> {
  const connection = await openConnection(context.settings, "group", context.report);
  const member = new Member(context, connection, topic, group, handler, onReconnect);
  try {
    await member.start();
  } catch (error) {
    connection.disconnect();
    member.inbox.stop();
    throw error;
  }
  return member;
}
