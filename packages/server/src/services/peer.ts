import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { PeerMessage, PeerService } from "@stategate/api";
import { PeerMessageSchema } from "@stategate/api";
import { kClaims } from "../context.js";
import { encodeKept } from "../encoding.js";
import { compileGlob } from "../streams/glob.js";
import { StreamQueue } from "../streams/queue.js";
import { nowNs } from "./convert.js";
import type { ServiceDeps } from "./deps.js";

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

    async *stream(req, ctx) {
      const matchDomain = compileGlob(req.domain);
      const matchChannel = compileGlob(req.channel);
      const matchType = compileGlob(req.type);
      const group =
        req.consumerGroup === "" ? undefined : JSON.stringify([req.consumerGroup, req.domain, req.channel, req.type]);
      const queue = new StreamQueue<PeerMessage>(
        [ctx.signal, deps.shutdown],
        deps.streamBuffer?.(ctx, "peer", group !== undefined),
      );
      const unsubscribe = await deps.messages.subscribe((m) => {
        if (matchDomain(m.domain) && matchChannel(m.channel) && matchType(m.type)) queue.push(m);
      }, group);
      try {
        for await (const message of queue) yield { message };
      } finally {
        unsubscribe();
        queue.dispose();
      }
    },
  };
}
