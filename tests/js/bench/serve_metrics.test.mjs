// Unit tests of the serving benchmark's metric functions on hand-computed timings.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  calculateMetrics,
  clusterDelays,
  frontEndOverhead,
  maxConcurrency,
  mean,
  median,
  percentile,
  poolItl,
  requestTimings,
  requestTpot,
  std,
  stepClusters,
  summarize,
  windowItl,
} from '../../../bench/serve_metrics.mjs';

const close = (actual, expected, eps = 1e-9) =>
  assert.ok(Math.abs(actual - expected) <= eps, `${actual} != ${expected}`);

test('percentile interpolates linearly like numpy', () => {
  const xs = [4, 1, 3, 2]; // sorted 1 2 3 4
  close(percentile(xs, 0), 1);
  close(percentile(xs, 100), 4);
  close(percentile(xs, 50), 2.5); // rank 1.5
  close(percentile(xs, 90), 3.7); // rank 2.7: 3 + 0.7
  close(percentile(xs, 99), 3.97); // rank 2.97
  close(percentile(xs, 25), 1.75); // rank 0.75
  close(percentile([7], 99), 7);
  close(percentile([], 50), 0); // vLLM: np.percentile(x or 0, p)
  close(percentile([10, 20, 30, 40, 50], 90), 46); // rank 3.6
  assert.throws(() => percentile([1], 101), RangeError);
});

test('mean, population std and median', () => {
  close(mean([1, 2, 3, 4]), 2.5);
  close(std([1, 2, 3, 4]), Math.sqrt(1.25)); // ddof 0
  close(std([2, 2, 2]), 0);
  close(median([5, 1, 3]), 3);
  close(median([5, 1, 3, 100]), 4);
  assert.equal(mean([]), 0);
  assert.equal(std([]), 0);
  const s = summarize([1, 2, 3, 4], [50, 90]);
  close(s.mean, 2.5);
  close(s.median, 2.5);
  assert.deepEqual(s.percentiles.map(([p]) => p), [50, 90]);
  close(s.percentiles[1][1], 3.7);
});

test('requestTimings: TTFT, gaps and E2EL from chunk arrivals', () => {
  const r = requestTimings(10.0, [10.5, 10.6, 10.8, 11.1]);
  close(r.ttft, 0.5);
  assert.equal(r.itl.length, 3);
  close(r.itl[0], 0.1);
  close(r.itl[1], 0.2);
  close(r.itl[2], 0.3);
  close(r.latency, 1.1);
  const none = requestTimings(1, []);
  assert.equal(none.ttft, null);
  assert.equal(none.latency, null);
});

test('TPOT excludes the first token and skips single-token requests', () => {
  close(requestTpot(1.1, 0.5, 4), 0.2); // (1.1 - 0.5) / 3
  // Tokens, not chunks: 4 chunks that carried 7 tokens.
  close(requestTpot(1.1, 0.5, 7), 0.1);
  assert.equal(requestTpot(0.5, 0.5, 1), null);
  assert.equal(requestTpot(0.5, 0.5, 0), null);
});

test('ITL pools every gap of every successful request', () => {
  const outs = [
    { success: true, itl: [0.1, 0.2] },
    { success: false, itl: [9] },
    { success: true, itl: [0.3] },
  ];
  assert.deepEqual(poolItl(outs), [0.1, 0.2, 0.3]);
});

test('maxConcurrency counts overlapping intervals; touching ends do not overlap', () => {
  assert.equal(maxConcurrency([]), 0);
  assert.equal(maxConcurrency([[0, 1], [1, 2], [2, 3]]), 1);
  assert.equal(maxConcurrency([[0, 10], [1, 2], [1.5, 3], [2.5, 4]]), 3);
});

test('calculateMetrics on three requests, one failed', () => {
  // Request A: start 0, chunks at 0.2, 0.3, 0.5 -> ttft 0.2, itl [0.1, 0.2], e2el 0.5,
  //   usage says 3 tokens -> tpot (0.5 - 0.2) / 2 = 0.15.
  // Request B: start 1, one chunk at 1.4 carrying 1 token -> ttft 0.4, e2el 0.4, no tpot.
  // Request C: failed.
  // Request D: start 2, chunks at 2.1, 2.4 with no usage -> 2 tokens counted from chunks,
  //   ttft 0.1, itl [0.3], e2el 0.4, tpot 0.3.
  const mk = (start, chunks, outputTokens) => ({
    success: true,
    ...requestTimings(start, chunks),
    outputTokens,
  });
  const outputs = [
    mk(0, [0.2, 0.3, 0.5], 3),
    mk(1, [1.4], 1),
    { success: false, ttft: null, itl: [], latency: null, outputTokens: null },
    mk(2, [2.1, 2.4], undefined),
  ];
  const m = calculateMetrics([10, 20, 30, 40], outputs, 4.0, [50, 90, 99]);
  assert.equal(m.completed, 3);
  assert.equal(m.failed, 1);
  assert.equal(m.total_input, 70); // the failed request's prompt is not counted
  assert.equal(m.total_output, 6);
  assert.deepEqual(m.output_lens, [3, 1, 0, 2]);
  close(m.duration, 4);
  close(m.request_throughput, 0.75);
  close(m.output_throughput, 1.5);
  close(m.total_token_throughput, 19);
  // TTFT ms: [200, 400, 100] -> mean 233.33, median 200, p90 rank 1.8 of [100,200,400] = 360
  close(m.ttft.mean, 700 / 3, 1e-6);
  close(m.ttft.median, 200, 1e-6);
  close(m.ttft.percentiles[1][1], 360, 1e-6);
  close(m.ttft.std, Math.sqrt(((200 - 700 / 3) ** 2 + (400 - 700 / 3) ** 2 + (100 - 700 / 3) ** 2) / 3), 1e-6);
  // TPOT ms: [150, 300] -> mean 225, median 225, p99 = 150 + 150 * 0.99 = 298.5
  close(m.tpot.mean, 225, 1e-6);
  close(m.tpot.median, 225, 1e-6);
  close(m.tpot.percentiles[2][1], 298.5, 1e-6);
  // ITL ms pooled: [100, 200, 300] -> mean 200, p90 = 200 + 100 * 0.8 = 280
  close(m.itl.mean, 200, 1e-6);
  close(m.itl.percentiles[1][1], 280, 1e-6);
  // E2EL ms: [500, 400, 400] -> median 400, mean 433.33
  close(m.e2el.median, 400, 1e-6);
  close(m.e2el.mean, 1300 / 3, 1e-6);
});

test('calculateMetrics with nothing completed reports zeros', () => {
  const m = calculateMetrics([5], [{ success: false, itl: [] }], 2, [50]);
  assert.equal(m.completed, 0);
  assert.equal(m.total_output, 0);
  assert.equal(m.ttft.mean, 0);
  assert.equal(m.itl.percentiles[0][1], 0);
});

test('frontEndOverhead: ITL percentiles minus the mean engine step', () => {
  const itl = summarize([10, 11, 12, 13, 20], [50, 90]); // p50 12, p90 17.2 (ms)
  const o = frontEndOverhead(
    { steps: 100, step_seconds: 1.0 },
    { steps: 300, step_seconds: 3.3 }, // 200 steps in 2.3 s: 11.5 ms each
    itl,
  );
  assert.equal(o.steps, 200);
  close(o.mean_step_ms, 11.5, 1e-9);
  close(o.overhead_p50_ms, 0.5, 1e-9);
  close(o.overhead_p90_ms, 5.7, 1e-9);
  close(o.overhead_mean_ms, 13.2 - 11.5, 1e-9); // ITL mean 66 / 5
  assert.equal(frontEndOverhead({ steps: 5, step_seconds: 1 }, { steps: 5, step_seconds: 1 }, itl), null);
});

test('windowItl keeps the gaps whose later chunk falls in the window', () => {
  const outs = [
    { success: true, chunkTimes: [1.0, 1.5, 2.0, 2.6, 3.5] }, // gaps ending 1.5 2.0 2.6 3.5
    { success: false, chunkTimes: [1.9, 2.1] },
    { success: true, chunkTimes: [2.2, 2.3] }, // gap ending 2.3
  ];
  const gaps = windowItl(outs, 2.0, 3.0);
  assert.equal(gaps.length, 3);
  close(gaps[0], 0.5); // 1.5 -> 2.0, the window's edge included
  close(gaps[1], 0.6);
  close(gaps[2], 0.1);
  assert.deepEqual(windowItl(outs, 5, 6), []);
});

test('stepClusters and clusterDelays split arrivals into steps', () => {
  // Three steps ~100 ms apart, chunks of each within 3 ms.
  const times = [0.2012, 0.1, 0.101, 0.103, 0.2, 0.2005, 0.3];
  const c = stepClusters(times, 0.05);
  assert.equal(c.length, 3);
  assert.deepEqual(c.map((x) => x.count), [3, 3, 1]);
  close(c[0].start, 0.1);
  close(c[0].end, 0.103);
  close(c[1].end, 0.2012);
  const { spreads, delays } = clusterDelays(times, c);
  close(spreads[0], 0.003);
  close(spreads[1], 0.0012);
  close(spreads[2], 0);
  assert.equal(delays.length, 7);
  // sorted: 0.1 0.101 0.103 | 0.2 0.2005 0.2012 | 0.3
  [0, 0.001, 0.003, 0, 0.0005, 0.0012, 0].forEach((d, i) => close(delays[i], d));
  assert.deepEqual(stepClusters([], 1), []);
});
