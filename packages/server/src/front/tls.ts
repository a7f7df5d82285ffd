import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";

/** The certificate and key the port serves TLS with (STATEGATE_TLS_CERT_FILE, STATEGATE_TLS_KEY_FILE). */
export interface TlsConfig {
  certFile: string;
  keyFile: string;
  /** PEM, read once at start-up. */
  cert: Buffer;
  /** PEM, read once at start-up; never logged. */
  key: Buffer;
}

type Fail = (variable: string, message: string) => Error;

/**
 * Reads the TLS variables: both or neither. Each file is read and the pair is
 * checked (a key that does not match its certificate) at start-up, so a bad
 * file stops the gateway naming its variable instead of failing each handshake.
 */
export function loadTlsConfig(env: NodeJS.ProcessEnv, fail: Fail): TlsConfig | undefined {
  const certFile = env.STATEGATE_TLS_CERT_FILE?.trim();
  const keyFile = env.STATEGATE_TLS_KEY_FILE?.trim();
  if (!certFile && !keyFile) return undefined;
  if (!certFile) throw fail("STATEGATE_TLS_CERT_FILE", "must be set with STATEGATE_TLS_KEY_FILE (PEM certificate)");
  if (!keyFile) throw fail("STATEGATE_TLS_KEY_FILE", "must be set with STATEGATE_TLS_CERT_FILE (PEM private key)");
  const read = (variable: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw fail(variable, `cannot read "${file}": ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  const cert = read("STATEGATE_TLS_CERT_FILE", certFile);
  const key = read("STATEGATE_TLS_KEY_FILE", keyFile);
  if (!cert.includes("-----BEGIN CERTIFICATE-----")) {
    throw fail("STATEGATE_TLS_CERT_FILE", `"${certFile}" holds no PEM certificate`);
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString("latin1"))) {
    throw fail("STATEGATE_TLS_KEY_FILE", `"${keyFile}" holds no PEM private key`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    // OpenSSL's reason ("key values mismatch", "bad decrypt") without the stack.
    const reason = err instanceof Error ? err.message : String(err);
    throw fail("STATEGATE_TLS_KEY_FILE", `does not go with STATEGATE_TLS_CERT_FILE: ${reason}`);
  }
  return { certFile, keyFile, cert, key };
}
