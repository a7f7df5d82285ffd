// How the tests drive the servers they stop, restart or disconnect (the
// *.serial.test.ts files) and the binaries they start private servers from.
// Each has a STATEGATE_TEST_* override for machines where the servers run
// differently (README, "Running the tests"); the defaults are what CI does.
// Plain JavaScript (typed by service-control.d.mts) so the test helpers of
// every package share this one copy.
import { readdirSync } from "node:fs";

const words = (text) => text.trim().split(/\s+/);

/** The argv of RabbitMQ's control tool: `STATEGATE_TEST_RABBITMQCTL` split at spaces, or `rabbitmqctl`. */
export function rabbitmqctlCommand(env = process.env) {
  return words(env.STATEGATE_TEST_RABBITMQCTL || "rabbitmqctl");
}

/**
 * The shell command that starts the Redis under test (listening on `port`)
 * again after a test shut it down: `STATEGATE_TEST_REDIS_START`, or a
 * redis-server daemon as CI runs it.
 */
export function redisStartCommand(port, env = process.env) {
  return (
    env.STATEGATE_TEST_REDIS_START ||
    `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port ${port} --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`
  );
}

/**
 * The argv that starts or stops the PostgreSQL under test:
 * `STATEGATE_TEST_POSTGRES_CTL` split at spaces with the action appended, or
 * Debian's pg_ctlcluster for the one cluster installed.
 */
export function postgresControlCommand(action, env = process.env) {
  if (env.STATEGATE_TEST_POSTGRES_CTL) return [...words(env.STATEGATE_TEST_POSTGRES_CTL), action];
  const [version] = readdirSync("/etc/postgresql");
  if (!version) throw new Error("no PostgreSQL cluster in /etc/postgresql; set STATEGATE_TEST_POSTGRES_CTL");
  return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action];
}

/** The nats-server binary private servers are started from: `STATEGATE_TEST_NATS_SERVER`, or /usr/sbin/nats-server. */
export function natsServerBinary(env = process.env) {
  return env.STATEGATE_TEST_NATS_SERVER || "/usr/sbin/nats-server";
}
