import type { HandlerContext } from "@connectrpc/connect";
import type { Event, PeerMessage } from "@stategate/api";
import type { Cache, Channel, Storage } from "@stategate/providers";
import type { Logger } from "pino";
import type { Hub } from "../streams/hub.js";
import type { QueueOptions } from "../streams/queue.js";
import type { EventRelay } from "../streams/relay.js";

/** What the service handlers need, wired once by the gateway. */
export interface ServiceDeps {
  storage: Storage;
  cache: Cache;
  channel: Channel;
  events: Hub<Event>;
  messages: Hub<PeerMessage>;
  /** Publishes committed events, and sweeps the storage outbox for any it missed. */
  relay: EventRelay;
  /** Aborts when the gateway shuts down, ending every open stream. */
  shutdown: AbortSignal;
  log: Logger;
  /** Size limits, in bytes of the binary protobuf encoding (see rules.ts). */
  limits: {
    /** Largest entity a mutation may write (STATEGATE_MAX_REQUEST_BYTES). */
    maxEntityBytes: number;
    /** Largest search page (STATEGATE_MAX_RESPONSE_BYTES). */
    maxResponseBytes: number;
  };
  /**
   * How one stream buffers for its client: the limit, and who counts and logs
   * a client that falls behind. Absent, the default limit and no one.
   */
  streamBuffer?: (ctx: HandlerContext, kind: "event" | "peer", grouped: boolean) => QueueOptions;
}
