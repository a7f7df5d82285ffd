import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { DescService } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import type { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { Config } from "../config.js";

type Fallback = NonNullable<Parameters<typeof connectNodeAdapter>[0]["fallback"]>;
/** A request as either HTTP server (1.1 or 2) hands it over. */
export type AnyRequest = Parameters<Fallback>[0];
/** A response of either HTTP server. */
export type AnyResponse = Parameters<Fallback>[1];

/**
 * What a door beside gRPC/gRPC-Web/Connect (REST, GraphQL) gets to work with.
 * Doors translate and delegate: every call goes through `transport` into the
 * same handlers and interceptors as a Connect call, so auth, validation,
 * logging and errors are the same whichever door was used.
 */
export interface DoorContext {
  /** The services the gateway serves, for doors that derive routes or schemas from descriptors. */
  services: readonly DescService[];
  /** In-process transport into the gateway's own handlers and interceptors. */
  transport: Transport;
  /** Header to set on calls through `transport` so logs and metrics name the door. */
  doorHeader: typeof DOOR_HEADER;
  config: Config;
  log: Logger;
  /** Aborts when the gateway shuts down. */
  shutdown: AbortSignal;
}

/** A door: handles the requests that are its own. */
export interface Door {
  /** Resolves true when the request was this door's and has been answered. */
  handle(req: AnyRequest, res: AnyResponse): Promise<boolean>;
  /** Takes an HTTP/1.1 upgrade (WebSocket) that is this door's; returns false otherwise. */
  upgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
}

/** Names the door on in-process calls; only "rest" and "graphql" are believed. */
export const DOOR_HEADER = "x-stategate-door";
