// Latency histograms: HdrHistogram (hdr-histogram-js) in microseconds, shipped
// between processes in HdrHistogram's own compressed base64 form.
import * as hdr from "hdr-histogram-js";

/** A histogram of microseconds from 1 µs to 5 minutes, 3 significant digits. */
export function createHistogram() {
  return hdr.build({
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 300_000_000,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  });
}

/** Records a duration in milliseconds (fractional) as whole microseconds, at least 1. */
export function recordMs(histogram, ms) {
  histogram.recordValue(Math.min(300_000_000, Math.max(1, Math.round(ms * 1000))));
}

export const encode = (histogram) => hdr.encodeIntoCompressedBase64(histogram);

/** Decodes one histogram, or merges several encoded ones. */
export function decode(...encoded) {
  const out = createHistogram();
  for (const text of encoded) out.add(hdr.decodeFromCompressedBase64(text, 32));
  return out;
}

/** The usual figures, in milliseconds. */
export function summary(histogram) {
  const at = (p) => histogram.getValueAtPercentile(p) / 1000;
  return {
    count: histogram.totalCount,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: histogram.maxValue / 1000,
    mean: histogram.mean / 1000,
  };
}
