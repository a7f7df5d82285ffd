/**
 * The names the Redis channel uses on the server, the Lua scripts that keep
 * each group change atomic, and how one connection is opened. Every role
 * (publishing, pub/sub, one per group member) gets a connection of its own,
 * made here with the same settings: no offline queue, no resending after a
 * reconnect, so a call made while disconnected fails at once.
 */
import { createHash } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import type { Topic } from "../types.js";
import { redisError } from "./redis-errors.js";
import type { RedisSettings } from "./redis-options.js";

/** The topics a channel carries; each has its own pub/sub channel and stream. */
export const topics: readonly Topic[] = ["events", "messages"];

/** The pub/sub channel of a topic: `<prefix>:<topic>`. */
export const channelKey = (settings: RedisSettings, topic: Topic): string => `${settings.prefix}:${topic}`;

/** The stream the groups of a topic read: `<prefix>:<topic>:stream`. It exists only while a group does. */
export const streamKey = (settings: RedisSettings, topic: Topic): string => `${settings.prefix}:${topic}:stream`;

/** The consumer group on the stream for a subscription group: any name fits, whatever its characters. */
export const groupName = (group: string): string => createHash("sha256").update(group).digest("hex").slice(0, 32);

/** A sorted set of a group's live members, scored by their last heartbeat (server time, ms). */
export const membersKey = (settings: RedisSettings, topic: Topic, group: string): string =>
  `${settings.prefix}:${topic}:group:${groupName(group)}`;

/**
 * The consumer a leaving member parks the payloads it did not handle on,
 * looking idle for {@link releasedIdleMs}: the next claim of any live member
 * takes them. Member consumers are named `host:pid:random`, never this.
 */
export const releasedConsumer = "~released";
/** Idle time given to released payloads: older than any `groupIdleMs`, younger than the epoch (Redis clamps beyond it). */
export const releasedIdleMs = 365 * 24 * 3600 * 1000;

// Server time in ms, so members on hosts with skewed clocks agree on who is silent.
const now = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

// KEYS: stream. ARGV: pub/sub channel, maxLen, payload.
// The stream only exists while a group does: without groups a payload is not kept.
const publishScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'p', ARGV[3])
end
return redis.call('PUBLISH', ARGV[1], ARGV[3])
`;

// KEYS: stream, members. ARGV: group, consumer, groupIdleMs. Returns 1 when the group was (re)created.
const joinScript = `${now}
local t, idle = now(), tonumber(ARGV[3])
-- A group whose members all fell silent is abandoned: it starts afresh rather
-- than hand a newcomer what nobody was there to take.
if redis.call('ZCOUNT', KEYS[2], t - idle, '+inf') == 0 then
  redis.pcall('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
end
local created = 1
local reply = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '$', 'MKSTREAM')
if type(reply) == 'table' and reply.err then
  if string.sub(reply.err, 1, 9) ~= 'BUSYGROUP' then return reply end
  created = 0
end
redis.call('XGROUP', 'CREATECONSUMER', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], t, ARGV[2])
redis.call('PEXPIRE', KEYS[2], idle * 10)
return created
`;

// KEYS: stream, members. ARGV: group, consumer, groupIdleMs, claim count, ids the member holds …
// Returns XAUTOCLAIM's reply: [cursor, claimed entries, deleted ids].
const beatScript = `${now}
local t, idle = now(), tonumber(ARGV[3])
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if consumers.err then return consumers end
redis.call('ZADD', KEYS[2], t, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (t - idle))
redis.call('PEXPIRE', KEYS[2], idle * 10)
-- What the member holds stays its own while it beats: a slow handler is not a dead member.
for i = 5, #ARGV do
  local entry = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if entry and entry[2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  end
end
-- Consumers of members that are gone and hold nothing more are forgotten.
for _, consumer in ipairs(consumers) do
  local fields = {}
  for j = 1, #consumer, 2 do fields[consumer[j]] = consumer[j + 1] end
  if fields.pending == 0 and fields.idle >= idle and fields.name ~= ARGV[2]
      and not redis.call('ZSCORE', KEYS[2], fields.name) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], fields.name)
  end
end
if tonumber(ARGV[4]) == 0 then return {'0-0', {}, {}} end
return redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], idle, '0-0', 'COUNT', ARGV[4])
`;

// KEYS: stream, members. ARGV: group, consumer, groupIdleMs, released consumer, released idle.
// Returns 2 when the group went with its last member, 1 when the member left it, 0 when it was gone.
const leaveScript = `${now}
local t = now()
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('ZCOUNT', KEYS[2], t - tonumber(ARGV[3]), '+inf') == 0 then
  -- No live member is left to take anything: the group goes, and the stream with the last group.
  redis.pcall('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
  if not groups.err and #groups == 0 then redis.call('DEL', KEYS[1]) end
  return 2
end
local from = '-'
while true do
  local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1], from, '+', 100, ARGV[2])
  if pending.err then return 0 end
  if #pending == 0 then break end
  local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[4], 0}
  for _, entry in ipairs(pending) do claim[#claim + 1] = entry[1] end
  from = '(' .. claim[#claim]
  claim[#claim + 1] = 'IDLE'
  claim[#claim + 1] = ARGV[5]
  claim[#claim + 1] = 'JUSTID'
  redis.call(unpack(claim))
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`;

/** The scripts, as ioredis defines them on a connection (EVALSHA, falling back to EVAL after a restart). */
export interface RedisScripts {
  stategatePublish(stream: string, channel: string, maxLen: number, payload: Buffer): Promise<number>;
  stategateJoin(stream: string, members: string, group: string, consumer: string, idleMs: number): Promise<number>;
  stategateBeatBuffer(
    stream: string,
    members: string,
    group: string,
    consumer: string,
    idleMs: number,
    count: number,
    ...held: string[]
  ): Promise<unknown>;
  stategateLeave(
    stream: string,
    members: string,
    group: string,
    consumer: string,
    idleMs: number,
    released: string,
    releasedIdle: number,
  ): Promise<number>;
}

/** A connection with the scripts defined on it. */
export type Connection = Redis & RedisScripts;

/** One stream entry: its id and payload; a null payload when trimming removed it before it was read. */
export interface StreamEntry {
  id: string;
  payload: Buffer | null;
}

/** Reads `[[id, [field, value, …]], …]` as returned by XREADGROUP and XAUTOCLAIM. */
export function parseEntries(entries: unknown): StreamEntry[] {
  if (!Array.isArray(entries)) {
    return [];
  }
  return entries.map((entry: [Buffer, Buffer[] | null]) => {
    const fields = entry[1];
    let payload: Buffer | null = null;
    for (let i = 0; fields !== null && i + 1 < fields.length; i += 2) {
      if (fields[i]?.toString() === "p") payload = fields[i + 1] ?? null;
    }
    return { id: entry[0].toString(), payload };
  });
}

const reconnectMaxMs = 5_000;

/** What a connection role adds to the shared settings. */
export type Role = "publish" | "pubsub" | "group";

/**
 * Opens one connection and waits until it is ready; throws
 * ProviderUnavailableError (and stops retrying) when it cannot be made.
 * After that, ioredis reconnects it by itself until it is disconnected.
 */
export async function openConnection(
  settings: RedisSettings,
  role: Role,
  report: (error: unknown) => void,
): Promise<Connection> {
  const blockingRead: RedisOptions =
    role === "group"
      ? // A blocked read gives up client-side a second after its BLOCK time, in case the socket died silently.
        { blockingTimeout: 60_000, blockingTimeoutGrace: 1_000 }
      : { commandTimeout: settings.commandTimeoutMs };
  const connection = new Redis({
    ...settings.connection,
    ...blockingRead,
    lazyConnect: true,
    // RESP2 keeps reply shapes (XINFO, XREADGROUP, script replies) the same on every server version.
    protocol: 2,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // The adapter subscribes again itself, so it knows when the subscription is back.
    autoResubscribe: false,
    // Lets an operator tell installations and gateways apart in CLIENT LIST (no spaces allowed).
    connectionName: `stategate:${settings.prefix.replace(/[^\x21-\x7e]/g, "_")}:${process.pid}:${role}`,
    // Exponential with jitter, so gateways that lost the server together do not return in lockstep.
    retryStrategy: (times) => Math.min(reconnectMaxMs, 100 * 2 ** Math.min(times - 1, 6)) * (0.8 + Math.random() * 0.2),
  }) as Connection;
  connection.defineCommand("stategatePublish", { numberOfKeys: 1, lua: publishScript });
  connection.defineCommand("stategateJoin", { numberOfKeys: 2, lua: joinScript });
  connection.defineCommand("stategateBeat", { numberOfKeys: 2, lua: beatScript });
  connection.defineCommand("stategateLeave", { numberOfKeys: 2, lua: leaveScript });

  let opened = false;
  let failure: unknown;
  // Without an "error" listener ioredis prints every reconnect failure to the console.
  connection.on("error", (error: unknown) => {
    if (opened) report(error);
    else failure = error;
  });
  const timeoutMs = (settings.connection.connectTimeout ?? 5000) + settings.commandTimeoutMs;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      connection.connect(),
      new Promise((_, reject) => {
        // Covers a server that accepts the connection but never answers the handshake.
        timer = setTimeout(() => reject(new Error("Command timed out")), timeoutMs);
      }),
    ]);
  } catch (error) {
    connection.disconnect();
    throw redisError(error, failure);
  } finally {
    clearTimeout(timer);
  }
  // ioredis reports a refused SELECT as an event, not as a failed connect.
  if (failure !== undefined) {
    connection.disconnect();
    throw redisError(failure);
  }
  opened = true;
  return connection;
}
