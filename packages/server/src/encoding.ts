import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { createBinaryDecoder, createBinaryEncoder } from "@stategate/api";

/**
 * Binary encodings for the gateway's hot paths. Every schema gets one
 * compiled encoder and decoder (see createBinaryEncoder and
 * createBinaryDecoder), and a message object can keep
 * its encoding while it lives: a committed event is encoded once for the
 * channel and its bytes serve the Set's answer too, and an event decoded from
 * the channel keeps the bytes it came in, so the thousand streams it goes to
 * never encode it at all. Messages are not changed once encoded; nothing in
 * the gateway changes an event or a peer message after it is made.
 */

const encoders = new Map<DescMessage, (message: never) => Uint8Array>();

/** The compiled encoder of `schema`, made on first use. */
export function encoderOf<Desc extends DescMessage>(schema: Desc): (message: MessageShape<Desc>) => Uint8Array {
  let encode = encoders.get(schema);
  if (encode === undefined) {
    encode = createBinaryEncoder(schema) as (message: never) => Uint8Array;
    encoders.set(schema, encode);
  }
  return encode as (message: MessageShape<Desc>) => Uint8Array;
}

const decoders = new Map<DescMessage, (bytes: Uint8Array) => unknown>();

/** The compiled decoder of `schema` (see createBinaryDecoder), made on first use. */
export function decoderOf<Desc extends DescMessage>(schema: Desc): (bytes: Uint8Array) => MessageShape<Desc> {
  let decode = decoders.get(schema);
  if (decode === undefined) {
    decode = createBinaryDecoder(schema);
    decoders.set(schema, decode);
  }
  return decode as (bytes: Uint8Array) => MessageShape<Desc>;
}

const kept = new WeakMap<object, Uint8Array>();

/**
 * The encoding of `message` (a message of `schema`, or an init object for
 * one), computed the first time and kept for as long as the object lives.
 */
export function encodeKept<Desc extends DescMessage>(schema: Desc, message: object): Uint8Array {
  let bytes = kept.get(message);
  if (bytes === undefined) {
    bytes = encoderOf(schema)(create(schema, message as never));
    kept.set(message, bytes);
  }
  return bytes;
}

/** The encoding `message` keeps, if it keeps one (see encodeKept and keepEncoding). */
export function keptEncoding(message: object): Uint8Array | undefined {
  return kept.get(message);
}

/** Records that `message` was decoded from `bytes` (a copy the caller will not change), so encodeKept returns them. */
export function keepEncoding(message: object, bytes: Uint8Array): void {
  kept.set(message, bytes);
}

/**
 * Decodes a message from the channel and keeps a copy of its bytes as its
 * encoding: streams send them as they came (a channel may reuse its buffers,
 * hence the copy).
 */
export function decodeKeeping<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): MessageShape<Desc> {
  const message = decoderOf(schema)(bytes);
  keepEncoding(message as object, bytes.slice());
  return message;
}
