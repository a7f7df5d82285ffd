import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { PeerMessage, PeerService, PeerServiceStreamRequest } from "@stategate/api";
import { PeerMessageSchema } from "@stategate/api";
import { kClaims } from "../context.js";
import { encodeKept } from "../encoding.js";
import { compileGlob } from "../streams/glob.js";
import { LiveStream } from "../streams/live-stream.js";
import { StreamQueue } from "../streams/queue.js";
import { nowNs } from "./convert.js";
import type { ServiceDeps } from "./deps.js";

/** One PeerService.Stream: live messages from the channel, nothing from before it started. */
class PeerStream extends LiveStream<PeerMessage, { message: PeerMessage }> {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly req: PeerServiceStreamRequest,
    private readonly ctx: HandlerContext,
  ) {
    super();
  }

  protected async *start(): AsyncGenerator<never, void> {
    const req = this.req;
    const ctx = this.ctx;
    const deps = this.deps;
    const matchDomain = compileGlob(req.domain);
    const matchChannel = compileGlob(req.channel);
    const matchType = compileGlob(req.type);
    const group =
      req.consumerGroup === "" ? undefined : JSON.stringify([req.consumerGroup, req.domain, req.channel, req.type]);
    const queue = new StreamQueue<PeerMessage>(
      [ctx.signal, deps.shutdown],
      deps.streamBuffer?.(ctx, "peer", group !== undefined),
    );
    try {
      const unsubscribe = await deps.messages.subscribe((m) => {
        if (matchDomain(m.domain) && matchChannel(m.channel) && matchType(m.type)) queue.push(m);
      }, group);
      this.attach({ queue, unsubscribe });
    } catch (err) {
      queue.dispose();
      throw err;
    }
  }

  protected take(message: PeerMessage): IteratorResult<{ message: PeerMessage }> {
    return { done: false, value: { message } };
  }
}

/** PeerService: messages go through the channel only; nothing is stored. */
export function createPeerService(deps: ServiceDeps): ServiceImpl<typeof PeerService> {
  return {
    async broadcast(req, ctx) {
      const message = create(PeerMessageSchema, {
        id: randomUUID(),
        domain: req.domain,
        channel: req.channel,
        type: req.type,
        body: req.body,
        claims: ctx.values.get(kClaims),
        time: nowNs(),
      });
      // Kept on the message: the answer carrying it sends these same bytes.
      await deps.messages.publish(encodeKept(PeerMessageSchema, message));
      return { message };
    },

    stream(req, ctx) {
      return new PeerStream(deps, req, ctx);
    },
  };
}
