import type { CounterConfiguration, HistogramConfiguration, MetricObjectWithValues, MetricValue } from "prom-client";
import { Counter, Histogram } from "prom-client";

/**
 * prom-client metrics with a faster way in for the per-call paths. Each
 * prom-client update validates and hashes its labels object, a few
 * microseconds a time and several times a call; here a caller takes the
 * series of its labels once (`series()`, kept by the metric) and updates a
 * number or a bucket array. The metrics stay prom-client's own, registered
 * and exposed by its registry; only their values come from the series.
 */

/** Label values joined into one key; a NUL never appears in the gateway's label values. */
function keyOf(names: readonly string[], labels: Record<string, string>): string {
  let key = "";
  for (const name of names) key += `${labels[name] ?? ""}\u0000`;
  return key;
}

/** One label set of a FastHistogram. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Record<string, string>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  /** Records one value, in seconds. */
  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= (bounds[i] as number)) {
        (this.counts as Float64Array)[i]++;
        return;
      }
    }
  }

  /** Starts timing; the function returned records the seconds since. */
  startTimer(): () => void {
    const started = performance.now();
    return () => this.observe((performance.now() - started) / 1000);
  }
}

/** A prom-client Histogram whose values come from series taken with `series()`. */
export class FastHistogram<T extends string> extends Histogram<T> {
  private readonly all = new Map<string, HistogramSeries>();
  private readonly bounds: readonly number[];
  private readonly names: readonly string[];
  private readonly metricName: string;

  constructor(config: HistogramConfiguration<T> & { buckets: number[] }) {
    super(config);
    this.metricName = config.name;
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    this.names = [...(config.labelNames ?? [])];
  }

  /** The series of `labels`, made on first use. */
  series(labels: Record<T, string>): HistogramSeries {
    const key = keyOf(this.names, labels);
    let series = this.all.get(key);
    if (series === undefined) {
      series = new HistogramSeries({ ...labels }, this.bounds);
      this.all.set(key, series);
    }
    return series;
  }

  /** What prom-client's registry exposes (and `get()` builds on): the series added to prom-client's own values. */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValue<T>>> {
    // Not in prom-client's types, but what its registry calls on a histogram.
    const own = Histogram.prototype as unknown as {
      getForPromString(this: unknown): Promise<MetricObjectWithValues<MetricValue<T>>>;
    };
    const base = await own.getForPromString.call(this);
    const bucket = `${this.metricName}_bucket`;
    const values = [...base.values] as MetricValue<T>[];
    for (const series of this.all.values()) {
      let total = 0;
      this.bounds.forEach((bound, i) => {
        total += series.counts[i] as number;
        values.push({ labels: { le: bound, ...series.labels }, value: total, metricName: bucket } as never);
      });
      values.push({ labels: { le: "+Inf", ...series.labels }, value: series.count, metricName: bucket } as never);
      values.push({ labels: { ...series.labels }, value: series.sum, metricName: `${this.metricName}_sum` } as never);
      values.push({
        labels: { ...series.labels },
        value: series.count,
        metricName: `${this.metricName}_count`,
      } as never);
    }
    return { ...base, values };
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor resets too, before this class has its fields.
    this.all?.clear();
  }
}

/** One label set of a FastCounter. */
export class CounterSeries {
  value = 0;

  constructor(readonly labels: Record<string, string>) {}

  inc(by = 1): void {
    this.value += by;
  }
}

/** A prom-client Counter whose values come from series taken with `series()`. */
export class FastCounter<T extends string> extends Counter<T> {
  private readonly all = new Map<string, CounterSeries>();
  private readonly names: readonly string[];

  constructor(config: CounterConfiguration<T>) {
    super(config);
    this.names = [...(config.labelNames ?? [])];
  }

  /** The series of `labels`, made on first use. */
  series(labels: Record<T, string>): CounterSeries {
    const key = keyOf(this.names, labels);
    let series = this.all.get(key);
    if (series === undefined) {
      series = new CounterSeries({ ...labels });
      this.all.set(key, series);
    }
    return series;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValue<T>>> {
    const base = await super.get();
    const values = [...base.values];
    for (const series of this.all.values()) values.push({ labels: { ...series.labels }, value: series.value } as never);
    return { ...base, values };
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor resets too, before this class has its fields.
    this.all?.clear();
  }
}
