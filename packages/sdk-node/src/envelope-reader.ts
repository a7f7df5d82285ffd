import { Code, ConnectError } from "@connectrpc/connect";

/** The flag of an enveloped message whose payload is compressed. */
export const compressedFlag = 0b1;

/** One enveloped message: a flags byte and 4-byte big-endian length, then the payload. */
export function encodeEnvelope(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + payload.length);
  frame[0] = 0;
  frame.writeUInt32BE(payload.length, 1);
  frame.set(payload, 5);
  return frame;
}

/** Takes the messages an `EnvelopeReader` splits off. */
export interface EnvelopeSink {
  /** One whole enveloped message; may throw, and the reader is then abandoned. */
  envelope(flags: number, payload: Uint8Array): void;
}

/**
 * Splits a byte stream into enveloped messages as chunks arrive, handing each
 * to its sink. A payload
 * that sits whole in one chunk is passed as a view of it, not copied; one
 * split across chunks is gathered into its own array.
 */
export class EnvelopeReader {
  /** A header split across chunks; most never are, so it is made on first need. */
  private head: Uint8Array | undefined;
  private headLength = 0;
  private flags = 0;
  private body: Uint8Array | undefined;
  private bodyLength = 0;

  constructor(
    private readonly readMaxBytes: number,
    private readonly sink: EnvelopeSink,
  ) {}

  /**
   * Whether bytes of an unfinished envelope are buffered. As in Connect, a
   * header whose payload has not begun does not count: the message is then
   * missing rather than incomplete.
   */
  get partial(): boolean {
    return this.headLength > 0 || this.bodyLength > 0;
  }

  push(chunk: Uint8Array): void {
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      if (this.body === undefined) {
        let flags: number;
        let length: number;
        if (this.headLength === 0 && end - pos >= 5) {
          flags = chunk[pos] as number;
          length = readUint32(chunk, pos + 1);
          pos += 5;
        } else {
          this.head ??= new Uint8Array(5);
          const head = this.head;
          const take = Math.min(5 - this.headLength, end - pos);
          head.set(chunk.subarray(pos, pos + take), this.headLength);
          this.headLength += take;
          pos += take;
          if (this.headLength < 5) return;
          this.headLength = 0;
          flags = head[0] as number;
          length = readUint32(head, 1);
        }
        // Refused before the payload is buffered, with Connect's message.
        if (length > this.readMaxBytes) {
          throw new ConnectError(
            `message size ${length} is larger than configured readMaxBytes ${this.readMaxBytes}`,
            Code.ResourceExhausted,
          );
        }
        if (end - pos >= length) {
          this.sink.envelope(flags, new Uint8Array(chunk.buffer, chunk.byteOffset + pos, length));
          pos += length;
          continue;
        }
        this.flags = flags;
        this.body = new Uint8Array(length);
        this.bodyLength = 0;
      }
      const take = Math.min(this.body.length - this.bodyLength, end - pos);
      this.body.set(chunk.subarray(pos, pos + take), this.bodyLength);
      this.bodyLength += take;
      pos += take;
      if (this.bodyLength === this.body.length) {
        const payload = this.body;
        this.body = undefined;
        this.bodyLength = 0;
        this.sink.envelope(this.flags, payload);
      }
    }
  }
}

function readUint32(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at] as number) * 0x1000000 +
    (((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number))
  );
}
