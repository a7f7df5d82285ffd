import type { Interceptor } from "@connectrpc/connect";

/** A bearer token, or a function that returns the current one (called per request). */
export type TokenSource = string | (() => string | Promise<string>);

/**
 * An interceptor that sends `authorization: Bearer <token>` on every call,
 * asking `token` afresh each time when it is a function (so a refreshed token
 * is picked up without a new client).
 */
export function bearerToken(token: TokenSource): Interceptor {
  return (next) => async (req) => {
    const value = typeof token === "function" ? await token() : token;
    req.header.set("authorization", `Bearer ${value}`);
    return next(req);
  };
}
