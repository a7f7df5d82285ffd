/** Environment variables, as `process.env`. */
type Env = Record<string, string | undefined>;

/** The argv of RabbitMQ's control tool: `STATEGATE_TEST_RABBITMQCTL` split at spaces, or `rabbitmqctl`. */
export function rabbitmqctlCommand(env?: Env): [string, ...string[]];

/** The shell command that starts the Redis under test (on `port`) again: `STATEGATE_TEST_REDIS_START`, or CI's redis-server daemon. */
export function redisStartCommand(port: number | string, env?: Env): string;

/** The argv that starts or stops the PostgreSQL under test: `STATEGATE_TEST_POSTGRES_CTL` plus the action, or pg_ctlcluster. */
export function postgresControlCommand(action: "start" | "stop", env?: Env): [string, ...string[]];

/** The nats-server binary private servers are started from: `STATEGATE_TEST_NATS_SERVER`, or /usr/sbin/nats-server. */
export function natsServerBinary(env?: Env): string;
