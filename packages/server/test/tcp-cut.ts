import net from "node:net";

/** A TCP forwarder in front of a real server that a test can cut, hold and restore. */
export interface TcpCut {
  port: number;
  /** Drops every open connection and refuses new ones. */
  cut(): void;
  /**
   * Stops forwarding without closing anything: open connections stay up but
   * no byte passes either way, and new connections are accepted but never
   * reach the server. A backend that hangs, as a stalled database does.
   */
  hold(): void;
  /** Forwards again: after a cut, new connections; after a hold, the bytes held back too. */
  restore(): void;
  close(): Promise<void>;
}

/**
 * Forwards a free local port to `target` ("host:port"). Cutting it makes the
 * server unreachable for whoever connects through it, while the server stays
 * up for every other test.
 */
export async function createTcpCut(target: string): Promise<TcpCut> {
  const at = target.lastIndexOf(":");
  const host = target.slice(0, at);
  const port = Number(target.slice(at + 1));
  let mode: "up" | "cut" | "held" = "up";
  const open = new Set<net.Socket>();
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  /** Clients accepted while held: connected to the server only once restored. */
  let waiting: net.Socket[] = [];
  const track = (s: net.Socket, onClose?: () => void) => {
    open.add(s);
    s.on("close", () => {
      open.delete(s);
      onClose?.();
    });
  };
  const forward = (client: net.Socket) => {
    const upstream = net.connect({ host, port });
    const pair = { client, upstream };
    pairs.add(pair);
    track(upstream, () => pairs.delete(pair));
    for (const s of [client, upstream]) {
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.pipe(upstream).pipe(client);
  };
  const server = net.createServer((client) => {
    if (mode === "cut") return client.destroy();
    track(client, () => {
      waiting = waiting.filter((c) => c !== client);
    });
    if (mode === "held") {
      client.on("error", () => client.destroy());
      client.pause();
      waiting.push(client);
      return;
    }
    forward(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      mode = "cut";
      for (const s of open) s.destroy();
    },
    hold() {
      mode = "held";
      for (const { client, upstream } of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    restore() {
      const wasHeld = mode === "held";
      mode = "up";
      if (!wasHeld) return;
      for (const { client, upstream } of pairs) {
        client.pipe(upstream);
        upstream.pipe(client);
      }
      const held = waiting;
      waiting = [];
      for (const client of held) if (!client.destroyed) forward(client);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
