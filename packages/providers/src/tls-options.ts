import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { ProviderConfigError } from "./errors.js";

/** The `tls` object a provider spec may carry: PEM file paths and checks, all optional. */
export interface TlsFileOptions {
  /** PEM file of the CA certificates to trust instead of the system ones. */
  ca?: string;
  /** PEM file of a client certificate, for servers that verify clients; needs `key`. */
  cert?: string;
  /** PEM file of the private key of `cert`. */
  key?: string;
  /** Whether the server's certificate must verify. Default true; turn off only for tests. */
  rejectUnauthorized?: boolean;
  /** The name the server's certificate must carry, also sent as SNI. Default: the host. */
  servername?: string;
}

const tlsKeys = new Set(["ca", "cert", "key", "rejectUnauthorized", "servername"]);

/**
 * Turns a spec's `tls` (true, or the object above) into Node TLS options,
 * reading the PEM files now, at start-up. `where` names the provider in
 * errors, e.g. `cache provider "redis"`; a bad value throws ProviderConfigError
 * naming the option. Node verifies the certificate against the host (or
 * `servername`) and sends the host as SNI unless it is an IP address.
 */
export function readTlsOptions(where: string, tls: TlsFileOptions | true): ConnectionOptions {
  const fail = (option: string, expected: string): never => {
    throw new ProviderConfigError(`${where}: option "${option}" must be ${expected}`, option);
  };
  const readPem = (option: string, path: unknown): Buffer => {
    if (typeof path !== "string" || path === "") fail(option, "the path of a PEM file");
    try {
      return readFileSync(path as string);
    } catch {
      // The path is configuration, not a secret; the OS error adds nothing useful.
      throw new ProviderConfigError(`${where}: option "${option}": cannot read ${path}`, option);
    }
  };
  if (tls === true) return {};
  if (typeof tls !== "object" || tls === null || Array.isArray(tls)) {
    fail("tls", "true, false or an object of ca, cert, key, rejectUnauthorized, servername");
  }
  for (const key of Object.keys(tls)) {
    if (!tlsKeys.has(key))
      fail(`tls.${key}`, `one of the known TLS options (${[...tlsKeys].join(", ")}), not an unknown key`);
  }
  const connection: ConnectionOptions = {};
  if (tls.ca !== undefined) connection.ca = readPem("tls.ca", tls.ca);
  if (tls.cert !== undefined) connection.cert = readPem("tls.cert", tls.cert);
  if (tls.key !== undefined) connection.key = readPem("tls.key", tls.key);
  if ((connection.cert === undefined) !== (connection.key === undefined)) {
    fail(
      connection.cert === undefined ? "tls.cert" : "tls.key",
      "given together with the other (tls.cert and tls.key)",
    );
  }
  if (tls.rejectUnauthorized !== undefined) {
    if (typeof tls.rejectUnauthorized !== "boolean") fail("tls.rejectUnauthorized", "true or false");
    connection.rejectUnauthorized = tls.rejectUnauthorized;
  }
  if (tls.servername !== undefined) {
    if (typeof tls.servername !== "string" || tls.servername === "") fail("tls.servername", "a host name");
    connection.servername = tls.servername;
  }
  return connection;
}
