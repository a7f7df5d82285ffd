import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { loadConfig } from "../src/config.js";
import { ENV_VARS } from "../src/env-vars.js";
import { OPS_PATHS } from "../src/ops/server.js";
import { renderChart } from "./helm-template.js";
import { dropMysqlTables, repoRoot, startTestGateway, testBackends } from "./helpers.js";

// No Docker engine, kubectl or helm here: these tests read the samples and
// hold them to the gateway's real configuration, so they cannot drift.
const file = (path: string) => readFileSync(join(repoRoot, path), "utf8");
const known = new Set(ENV_VARS.map((v) => v.name));
const defaults = loadConfig({});
const pkg = JSON.parse(file("packages/server/package.json")) as { version: string; bin: Record<string, string> };
const rootPkg = JSON.parse(file("package.json")) as { packageManager: string };
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Asserts every name is a real variable and that the values pass the gateway's own parsing. */
function assertGatewayEnv(env: Record<string, string>, where: string): ReturnType<typeof loadConfig> {
  for (const name of Object.keys(env)) assert.ok(known.has(name), `${where}: ${name} is a variable the gateway reads`);
  return loadConfig(env);
}

/** Runs `stategate check-config` (the real providers, no serving); returns its exit code and output. */
function checkConfig(env: Record<string, string>) {
  const dataDir = mkdtempSync(join(tmpdir(), "stategate-deploy-"));
  dirs.push(dataDir);
  return spawnSync(process.execPath, [join(repoRoot, "packages/server/dist/bin/stategate.js"), "check-config"], {
    env: { PATH: process.env.PATH, STATEGATE_DATA_DIR: dataDir, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
}

/** A provider spec pointed at this machine's test server instead of the sample's, every other option kept. */
function local(spec: string, addr: string, extra: Record<string, unknown>): string {
  return JSON.stringify({ ...(JSON.parse(spec) as object), addr, ...extra });
}

describe("Dockerfile", () => {
  const text = file("Dockerfile");
  const instructions = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .filter((l) => /^[A-Z]+\s/.test(l))
    .map((l) => ({ op: l.split(/\s/)[0]!, args: l.slice(l.indexOf(" ") + 1).trim() }));
  const stages = instructions.filter((i) => i.op === "FROM");
  const last = instructions.slice(instructions.lastIndexOf(stages.at(-1)!));

  it("is multi-stage, and its final stage is small and runs as a non-root user", () => {
    assert.ok(stages.length >= 2, "a build stage and a runtime stage");
    assert.match(stages.at(-1)!.args, /distroless\/nodejs20/, "distroless Node 20: no shell, no package manager");
    const user = last.find((i) => i.op === "USER")?.args;
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `runs as ${user}`);
    for (const copy of last.filter((i) => i.op === "COPY")) {
      const from = /--from=(\S+)/.exec(copy.args)?.[1];
      assert.ok(
        from && stages.some((s) => s.args.endsWith(` AS ${from}`)),
        `copies only from a build stage: ${copy.args}`,
      );
    }
    assert.ok(existsSync(join(repoRoot, ".dockerignore")));
    assert.match(file(".dockerignore"), /node_modules/);
  });

  it("uses the repository's Node and pnpm, and the package's bin", () => {
    assert.match(stages[0]!.args, /^node:20\b/);
    assert.ok(text.includes(rootPkg.packageManager), `installs with ${rootPkg.packageManager}`);
    const entry = JSON.parse(last.find((i) => i.op === "ENTRYPOINT")!.args) as string[];
    assert.equal(entry.at(-1), pkg.bin.stategate!.replace(/^\.\//, ""));
  });

  it("sets real variables, exposes the ports they configure, and checks /healthz on the metrics port", () => {
    const env: Record<string, string> = {};
    for (const i of last.filter((x) => x.op === "ENV")) {
      for (const m of i.args.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
    }
    // The image listens on 0.0.0.0, which needs authentication configured at run time.
    const config = assertGatewayEnv({ ...env, STATEGATE_AUTH_DISABLED: "true" }, "Dockerfile");
    const exposed = last
      .filter((i) => i.op === "EXPOSE")
      .flatMap((i) => i.args.split(/\s+/))
      .map(Number);
    assert.deepEqual(exposed, [config.port, config.metricsPort]);
    const health = last.find((i) => i.op === "HEALTHCHECK")!.args;
    assert.ok(health.includes(`http://127.0.0.1:${config.metricsPort}${OPS_PATHS.liveness}`), health);
  });
});

describe("deploy/docker-compose.yml", () => {
  const compose = parse(file("deploy/docker-compose.yml")) as Record<string, any>;
  const gateway = compose.services.gateway;
  const env = gateway.environment as Record<string, string>;

  it("runs the gateway with MariaDB, Memcached and RabbitMQ, wired to each other", () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ["gateway", "mariadb", "memcached", "rabbitmq"]);
    assert.equal(gateway.build.context, "..");
    assert.ok(existsSync(join(repoRoot, "deploy", gateway.build.context, gateway.build.dockerfile)));
    const config = assertGatewayEnv(env, "docker-compose.yml");
    assert.equal(config.storage.name, "mysql");
    assert.equal(config.cache.name, "memcached");
    assert.equal(config.channel.name, "amqp");
    assert.equal(config.storage.addr, "mariadb:3306", "the service name and MariaDB's port");
    assert.equal(config.cache.addr, "memcached:11211");
    assert.equal(config.channel.addr, "rabbitmq:5672");
    const maria = compose.services.mariadb.environment;
    assert.deepEqual(
      [config.storage.user, config.storage.password, config.storage.database],
      [maria.MARIADB_USER, maria.MARIADB_PASSWORD, maria.MARIADB_DATABASE],
    );
    const rabbit = compose.services.rabbitmq.environment;
    assert.deepEqual(
      [config.channel.user, config.channel.password],
      [rabbit.RABBITMQ_DEFAULT_USER, rabbit.RABBITMQ_DEFAULT_PASS],
    );
    for (const name of Object.keys(gateway.depends_on)) assert.ok(compose.services[name], `depends on ${name}`);
  });

  it("publishes the ports the gateway listens on and health-checks /readyz", () => {
    const config = loadConfig(env);
    const published = (gateway.ports as string[]).map((p) => Number(p.split(":").at(-1)));
    assert.deepEqual(published, [config.port, config.metricsPort]);
    assert.equal(config.port, defaults.port);
    const test = (gateway.healthcheck.test as string[]).join(" ");
    assert.ok(test.includes(`http://127.0.0.1:${config.metricsPort}${OPS_PATHS.readiness}`), test);
    assert.ok(
      Number.parseInt(gateway.stop_grace_period, 10) * 1000 > config.shutdownGraceMs,
      "docker waits out the grace",
    );
  });

  it("has provider settings the real providers accept: check-config reaches this machine's servers with them", async () => {
    const tag = `dc${Math.random().toString(36).slice(2, 8)}`;
    const result = checkConfig({
      ...env,
      STATEGATE_STORAGE_PROVIDER: local(env.STATEGATE_STORAGE_PROVIDER!, testBackends.mysql, {
        user: "root",
        password: "",
        database: "test",
        tablePrefix: `${tag}_`,
      }),
      STATEGATE_CACHE_PROVIDER: local(env.STATEGATE_CACHE_PROVIDER!, testBackends.memcached, {}),
      STATEGATE_CHANNEL_PROVIDER: local(env.STATEGATE_CHANNEL_PROVIDER!, testBackends.amqp, {
        user: "guest",
        password: "guest",
        prefix: tag,
      }),
    });
    await dropMysqlTables(tag);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /storage: mysql ok/);
    assert.match(result.stdout, /cache: memcached ok/);
    assert.match(result.stdout, /channel: amqp ok/);
  });
});

/** What the Kubernetes samples run: the container, its environment with Secret references resolved, and its ports. */
function kubernetesWorkload(docs: Record<string, any>[]) {
  const byKind = (kind: string) => docs.find((d) => d.kind === kind)!;
  const deployment = byKind("Deployment");
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const secret = byKind("Secret");
  const env: Record<string, string> = Object.fromEntries(
    (
      container.env as { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[]
    ).map((e) => {
      if (e.value !== undefined) return [e.name, e.value];
      assert.equal(e.valueFrom?.secretKeyRef.name, secret.metadata.name, `${e.name} reads the Secret that is there`);
      return [e.name, secret.stringData[e.valueFrom!.secretKeyRef.key]];
    }),
  );
  const ports = Object.fromEntries(
    (container.ports as { name: string; containerPort: number }[]).map((p) => [p.name, p.containerPort]),
  );
  return { byKind, deployment, pod, container, secret, env, ports };
}

/**
 * The checks both Kubernetes samples pass, the plain manifest and the
 * rendered chart: real variables the gateway accepts, the ports they set,
 * probes on the paths the gateway serves (and a real gateway answering them),
 * a grace period Kubernetes waits out, and a Service that reaches the pods.
 */
function kubernetesChecks(where: string, load: () => Record<string, any>[]) {
  let w: ReturnType<typeof kubernetesWorkload>;
  before(() => {
    w = kubernetesWorkload(load());
  });

  it(`${where}: has a Deployment, a Service and the Secret it reads`, () => {
    assert.deepEqual(
      load()
        .map((d) => d.kind)
        .sort(),
      ["Deployment", "Secret", "Service"],
    );
    assert.equal(w.pod.securityContext.runAsNonRoot, true);
    assert.equal(w.container.securityContext.readOnlyRootFilesystem, true);
  });

  it(`${where}: sets real variables whose values the gateway accepts, on the ports it declares`, () => {
    const config = assertGatewayEnv(w.env, where);
    assert.equal(config.auth.mode, "jwt", "a cluster-wide address needs authentication");
    assert.deepEqual(w.ports, { api: config.port, metrics: config.metricsPort });
    assert.equal(
      w.deployment.spec.template.metadata.annotations["prometheus.io/port"],
      String(config.metricsPort),
      "Prometheus scrapes the metrics port",
    );
    assert.ok(w.pod.terminationGracePeriodSeconds * 1000 > config.shutdownGraceMs, "Kubernetes waits out the grace");
    const service = w.byKind("Service");
    for (const p of service.spec.ports) {
      assert.ok(w.ports[p.targetPort], `Service port ${p.name} targets a container port`);
    }
    assert.deepEqual(service.spec.selector, w.deployment.spec.selector.matchLabels);
    for (const [k, v] of Object.entries(w.deployment.spec.selector.matchLabels)) {
      assert.equal(w.deployment.spec.template.metadata.labels[k], v, "the Deployment selects its own pods");
    }
  });

  it(`${where}: probes /healthz and /readyz on the metrics port, which a real gateway answers`, async () => {
    assert.deepEqual(w.container.livenessProbe.httpGet, { path: OPS_PATHS.liveness, port: "metrics" });
    assert.deepEqual(w.container.readinessProbe.httpGet, { path: OPS_PATHS.readiness, port: "metrics" });
    assert.deepEqual(w.container.startupProbe?.httpGet, { path: OPS_PATHS.liveness, port: "metrics" });
    const tg = await startTestGateway();
    try {
      for (const probe of [w.container.livenessProbe, w.container.readinessProbe, w.container.startupProbe]) {
        const res = await fetch(`http://127.0.0.1:${tg.gateway.metricsPort}${probe.httpGet.path}`);
        assert.equal(res.status, 200, probe.httpGet.path);
      }
    } finally {
      await tg.close();
    }
  });
}

const k8sDocs = () =>
  parseAllDocuments(file("deploy/kubernetes/stategate.yaml")).map((d) => d.toJS() as Record<string, any>);

describe("deploy/kubernetes/stategate.yaml", () => {
  kubernetesChecks("stategate.yaml", k8sDocs);
});

describe("deploy/helm/stategate", () => {
  const chartDir = "deploy/helm/stategate";
  const chart = parse(file(`${chartDir}/Chart.yaml`)) as Record<string, any>;
  const values = parse(file(`${chartDir}/values.yaml`)) as Record<string, any>;
  const templates = ["deployment.yaml", "service.yaml", "secret.yaml", "_helpers.tpl"].map((t) =>
    file(`${chartDir}/templates/${t}`),
  );

  it("is a v2 chart of the package's version", () => {
    assert.equal(chart.apiVersion, "v2");
    assert.equal(chart.appVersion, pkg.version);
    assert.equal(values.image.tag, pkg.version);
  });

  it("templates read only values that exist", () => {
    for (const text of templates) {
      for (const m of text.matchAll(/\.Values\.([\w.]+)/g)) {
        const value = m[1]!.split(".").reduce<any>((v, key) => v?.[key], values);
        assert.notEqual(value, undefined, `.Values.${m[1]} is in values.yaml`);
      }
    }
  });

  // Rendered with a release name of its own, so names that derive from it are checked to agree.
  const rendered = () => {
    const out = renderChart(join(repoRoot, chartDir), { name: "prod" });
    return Object.values(out).flatMap((text) =>
      parseAllDocuments(text)
        .map((d) => {
          assert.deepEqual(d.errors, [], `the chart renders YAML: ${text}`);
          return d.toJS() as Record<string, any> | null;
        })
        .filter((d): d is Record<string, any> => d !== null),
    );
  };
  kubernetesChecks("rendered chart", rendered);

  it("renders what the plain manifest says: the same variables, ports, probes, security and resources", () => {
    const chart = kubernetesWorkload(rendered());
    const plain = kubernetesWorkload(k8sDocs());
    assert.deepEqual(chart.env, plain.env);
    assert.deepEqual(chart.ports, plain.ports);
    for (const field of ["livenessProbe", "readinessProbe", "startupProbe", "securityContext", "resources"]) {
      assert.deepEqual(chart.container[field], plain.container[field], field);
    }
    assert.deepEqual(chart.pod.securityContext, plain.pod.securityContext);
    assert.equal(chart.pod.terminationGracePeriodSeconds, plain.pod.terminationGracePeriodSeconds);
    assert.equal(chart.deployment.metadata.name, "prod", "named after the release");
    assert.equal(chart.secret.metadata.name, "prod-providers");
    assert.equal(chart.container.image, `${values.image.repository}:${pkg.version}`);
  });

  it("a renderer that cannot run the chart says so, rather than rendering it wrong", () => {
    assert.throws(
      () => renderChart(join(repoRoot, chartDir), { name: "prod" }, { ports: {} }),
      /\.Values\.ports\.\w+: no "\w+"/,
    );
  });

  it("gives the gateway real variables and values, and probes its real paths", () => {
    const deployment = templates[0]!;
    assert.ok(deployment.includes("STATEGATE_{{ upper $kind }}_PROVIDER"));
    const env = {
      ...values.env,
      STATEGATE_PORT: String(values.ports.api),
      STATEGATE_METRICS_PORT: String(values.ports.metrics),
      STATEGATE_STORAGE_PROVIDER: values.providers.storage,
      STATEGATE_CACHE_PROVIDER: values.providers.cache,
      STATEGATE_CHANNEL_PROVIDER: values.providers.channel,
    };
    const config = assertGatewayEnv(env, "values.yaml");
    assert.deepEqual([config.port, config.metricsPort], [defaults.port, defaults.metricsPort]);
    assert.equal(values.probes.liveness.path, OPS_PATHS.liveness);
    assert.equal(values.probes.readiness.path, OPS_PATHS.readiness);
    assert.equal(values.probes.startup.path, OPS_PATHS.liveness);
    assert.ok(values.terminationGracePeriodSeconds * 1000 > config.shutdownGraceMs);
    // The same settings as the plain manifest: the two samples tell one story.
    const k8s = parseAllDocuments(file("deploy/kubernetes/stategate.yaml")).map((d) => d.toJS() as Record<string, any>);
    assert.deepEqual(values.providers, k8s.find((d) => d.kind === "Secret")!.stringData);
  });
});
