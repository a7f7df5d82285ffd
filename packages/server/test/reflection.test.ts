import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CacheService, EntityService, EventService, MutexService, PeerService } from "@stategate/api";
import type { ServerReflectionResponse } from "../src/gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection, ServerReflectionRequestSchema } from "../src/gen/grpc/reflection/v1/reflection_pb.js";
import type { TestGateway } from "./helpers.js";
import { repoRoot, startTestGateway, unique } from "./helpers.js";

const run = promisify(execFile);
const buf = join(repoRoot, "node_modules", ".bin", "buf");
let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

/** buf curl with no --schema: the schema comes from the gateway's reflection. */
async function curl(args: string[]): Promise<string> {
  const { stdout } = await run(buf, ["curl", ...args], { cwd: "/" });
  return stdout;
}

const flags: Record<string, string[]> = {
  "connect over HTTP/1.1": [],
  "grpc over HTTP/2": ["--protocol", "grpc", "--http2-prior-knowledge"],
  "grpc-web over HTTP/1.1": ["--protocol", "grpcweb"],
};

const served = [EntityService, EventService, PeerService, CacheService, MutexService];
const expectedMethods = served.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));

describe("buf curl without a schema", () => {
  for (const [name, protocol] of Object.entries(flags)) {
    it(`lists every method, ${name}`, async () => {
      const listed = (await curl([...protocol, "--list-methods", tg.baseUrl])).trim().split("\n");
      for (const method of [...expectedMethods, "grpc.health.v1.Health/Check", "grpc.health.v1.Health/Watch"]) {
        assert.ok(listed.includes(method), `${method} is listed: ${listed.join(", ")}`);
      }
    });

    it(`calls Set then Get, ${name}`, async () => {
      const ref = { domain: unique("refl"), type: "user", key: "ada" };
      const set = JSON.parse(
        await curl([
          ...protocol,
          "--data",
          JSON.stringify({ ...ref, values: { name: "Ada" } }),
          `${tg.baseUrl}/stategate.v1.EntityService/Set`,
        ]),
      );
      assert.equal(set.event.version, "1");
      assert.equal(set.event.operation, "EVENT_OPERATION_SET", "enums by name: the schema came through");
      const get = JSON.parse(
        await curl([...protocol, "--data", JSON.stringify(ref), `${tg.baseUrl}/stategate.v1.EntityService/Get`]),
      );
      assert.deepEqual(get.entity.values, { name: "Ada" });
    });
  }

  for (const version of ["grpc-v1", "grpc-v1alpha"]) {
    it(`works with reflection ${version} only`, async () => {
      const out = await curl(["--reflect-protocol", version, "--list-methods", tg.baseUrl]);
      assert.ok(out.includes("stategate.v1.MutexService/Lock"), out);
      const cache = { domain: unique("refl"), key: "k" };
      await curl([
        "--reflect-protocol",
        version,
        "--data",
        JSON.stringify({ ...cache, value: 42 }),
        `${tg.baseUrl}/stategate.v1.CacheService/Set`,
      ]);
      const got = JSON.parse(
        await curl([
          "--reflect-protocol",
          version,
          "--data",
          JSON.stringify(cache),
          `${tg.baseUrl}/stategate.v1.CacheService/Get`,
        ]),
      );
      assert.equal(got.cache.value, 42);
    });
  }

  it("describes a message with buf curl's schema (a call with a bad field name names the field)", async () => {
    await assert.rejects(
      curl(["--data", '{"domian":"x"}', `${tg.baseUrl}/stategate.v1.EntityService/Get`]),
      (e: Error & { stderr?: string }) => /domian/.test(String(e.stderr)),
    );
  });
});

describe("grpc.reflection.v1 answers", () => {
  /** Opens one reflection stream and sends `requests` one by one, each after the previous answer. */
  async function ask(...requests: Parameters<typeof create<typeof ServerReflectionRequestSchema>>[1][]) {
    const client = createClient(ServerReflection, createGrpcTransport({ baseUrl: tg.baseUrl }));
    const queue = requests.map((r) => create(ServerReflectionRequestSchema, r));
    const answers: ServerReflectionResponse[] = [];
    let release: () => void = () => {};
    async function* input() {
      for (const req of queue) {
        yield req;
        await new Promise<void>((resolve) => {
          release = resolve;
        });
      }
    }
    for await (const res of client.serverReflectionInfo(input())) {
      answers.push(res);
      release();
      if (answers.length === queue.length) break;
    }
    return answers;
  }
  const fileNames = (res: ServerReflectionResponse) =>
    res.messageResponse.case === "fileDescriptorResponse"
      ? res.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name)
      : [];

  it("a symbol's file comes with its imports once per stream", async () => {
    const [first, second] = await ask(
      { messageRequest: { case: "fileContainingSymbol", value: "stategate.v1.EntityService" } },
      { messageRequest: { case: "fileContainingSymbol", value: "stategate.v1.EntityService.Set" } },
    );
    const names = fileNames(first!);
    assert.equal(names[0], "stategate/v1/entity_service.proto");
    for (const dep of [
      "google/api/annotations.proto",
      "google/api/http.proto",
      "google/protobuf/descriptor.proto",
      "google/protobuf/struct.proto",
      "stategate/v1/types.proto",
    ]) {
      assert.ok(names.includes(dep), `${dep} in ${names.join(", ")}`);
    }
    assert.deepEqual(fileNames(second!), ["stategate/v1/entity_service.proto"], "imports are not sent again");
    const service = fromBinary(
      FileDescriptorProtoSchema,
      (first.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto[0]!,
    ).service[0];
    assert.deepEqual(
      service?.method.map((m) => m.name),
      ["Set", "Edit", "Revert", "Get", "Del", "Search"],
    );
  });

  it("finds files by name, fields through their message, and extensions by number", async () => {
    const [byName, byField, byExtension, numbers, services] = await ask(
      { messageRequest: { case: "fileByFilename", value: "stategate/v1/types.proto" } },
      { messageRequest: { case: "fileContainingSymbol", value: "stategate.v1.Entity.domain" } },
      // google.api.http, the option that carries the REST routes.
      {
        messageRequest: {
          case: "fileContainingExtension",
          value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 },
        },
      },
      { messageRequest: { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" } },
      { messageRequest: { case: "listServices", value: "" } },
    );
    assert.equal(fileNames(byName!)[0], "stategate/v1/types.proto");
    assert.equal(fileNames(byField!)[0], "stategate/v1/types.proto");
    assert.equal(fileNames(byExtension!)[0], "google/api/annotations.proto");
    assert.equal(numbers!.messageResponse.case, "allExtensionNumbersResponse");
    assert.deepEqual((numbers!.messageResponse.value as { extensionNumber: number[] }).extensionNumber, [72295728]);
    assert.equal(services!.messageResponse.case, "listServicesResponse");
  });

  it("says NOT_FOUND in the stream for what it does not have, and goes on", async () => {
    const [missing, file] = await ask(
      { messageRequest: { case: "fileContainingSymbol", value: "no.such.Thing" } },
      { messageRequest: { case: "fileByFilename", value: "stategate/v1/cache_service.proto" } },
    );
    assert.equal(missing!.messageResponse.case, "errorResponse");
    assert.equal((missing!.messageResponse.value as { errorCode: number }).errorCode, 5);
    assert.equal(fileNames(file!)[0], "stategate/v1/cache_service.proto");
  });
});
