// Metric definitions of vLLM's serving benchmark (benchmarks/benchmark_serving.py,
// `vllm bench serve`), as pure functions over recorded timings. Times are in seconds.
//
//   TTFT  = arrival of the first chunk carrying choices - request start
//   ITL   = gaps between successive such chunks; all gaps of all requests pooled
//   TPOT  = (E2EL - TTFT) / (output_tokens - 1), only for requests with > 1 output token
//   E2EL  = arrival of the last such chunk - request start
//
// Statistics follow numpy: mean, population std (ddof 0), median, and percentiles with
// linear interpolation; an empty list counts as [0] (vLLM's `np.mean(x or 0)`).

/** numpy.percentile(values, p) with the default 'linear' method; values need not be sorted. */
export function percentile(values, p) {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} outside [0, 100]`);
  const a = sortedOrZero(values);
  return percentileSorted(a, p);
}

function sortedOrZero(values) {
  if (values.length === 0) return [0];
  return Float64Array.from(values).sort();
}

function percentileSorted(a, p) {
  const n = a.length;
  const rank = (p / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  if (lo === hi) return a[lo];
  return a[lo] + (a[hi] - a[lo]) * (rank - lo);
}

export function mean(values) {
  if (values.length === 0) return 0;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Population standard deviation (numpy's default ddof = 0). */
export function std(values) {
  if (values.length === 0) return 0;
  const m = mean(values);
  let s = 0;
  for (const v of values) s += (v - m) * (v - m);
  return Math.sqrt(s / values.length);
}

export function median(values) {
  return percentile(values, 50);
}

/** {mean, median, std, percentiles: [[p, value], ...]} of values (same units as values). */
export function summarize(values, percentiles) {
  const a = sortedOrZero(values);
  return {
    mean: mean(values),
    median: percentileSorted(a, 50),
    std: std(values),
    percentiles: percentiles.map((p) => [p, percentileSorted(a, p)]),
  };
}

/**
 * One request's timings from its start time and the arrival times of the chunks that
 * carried choices, as vLLM's request functions record them.
 * Returns {ttft, itl: [gaps], latency}; ttft and latency are null when no chunk came.
 */
export function requestTimings(start, chunkTimes) {
  if (chunkTimes.length === 0) return { ttft: null, itl: [], latency: null };
  const itl = [];
  for (let i = 1; i < chunkTimes.length; i++) itl.push(chunkTimes[i] - chunkTimes[i - 1]);
  return {
    ttft: chunkTimes[0] - start,
    itl,
    latency: chunkTimes[chunkTimes.length - 1] - start,
  };
}

/** TPOT of one request, or null when it produced at most one token (vLLM skips those). */
export function requestTpot(latency, ttft, outputTokens) {
  if (!(outputTokens > 1)) return null;
  return (latency - ttft) / (outputTokens - 1);
}

/** All gaps of all successful requests in one list, in request order. */
export function poolItl(outputs) {
  const all = [];
  for (const o of outputs) {
    if (!o.success) continue;
    for (const g of o.itl) all.push(g);
  }
  return all;
}

/**
 * The largest number of requests in flight at once, from [start, end] intervals. A request
 * that ends at the instant another starts is not counted as overlapping it.
 */
export function maxConcurrency(intervals) {
  const events = [];
  for (const [s, e] of intervals) {
    events.push([s, 1]);
    events.push([e, -1]);
  }
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let cur = 0;
  let best = 0;
  for (const [, d] of events) {
    cur += d;
    if (cur > best) best = cur;
  }
  return best;
}

/**
 * vLLM's calculate_metrics. inputLens[i] is request i's prompt length; outputs[i] is
 * {success, ttft, itl, latency, outputTokens} (outputTokens from usage.completion_tokens,
 * else the number of chunks). durationS is the benchmark's wall time.
 * Returns the totals and, per metric (ttft, tpot, itl, e2el), a summary in milliseconds.
 */
export function calculateMetrics(inputLens, outputs, durationS, percentiles) {
  const outputLens = [];
  const ttfts = [];
  const tpots = [];
  const e2els = [];
  let totalInput = 0;
  let completed = 0;
  for (let i = 0; i < outputs.length; i++) {
    const o = outputs[i];
    if (!o.success) {
      outputLens.push(0);
      continue;
    }
    const outLen = o.outputTokens ?? o.itl.length + 1;
    outputLens.push(outLen);
    totalInput += inputLens[i];
    const tpot = requestTpot(o.latency, o.ttft, outLen);
    if (tpot !== null) tpots.push(tpot);
    ttfts.push(o.ttft);
    e2els.push(o.latency);
    completed++;
  }
  const itls = poolItl(outputs);
  let totalOutput = 0;
  for (const n of outputLens) totalOutput += n;
  const ms = (xs) => xs.map((x) => x * 1000);
  return {
    completed,
    failed: outputs.length - completed,
    total_input: totalInput,
    total_output: totalOutput,
    duration: durationS,
    request_throughput: completed / durationS,
    output_throughput: totalOutput / durationS,
    total_token_throughput: (totalInput + totalOutput) / durationS,
    output_lens: outputLens,
    ttft: summarize(ms(ttfts), percentiles),
    tpot: summarize(ms(tpots), percentiles),
    itl: summarize(ms(itls), percentiles),
    e2el: summarize(ms(e2els), percentiles),
  };
}

/**
 * Engine step time from two /stats snapshots (cumulative `steps` and `step_seconds`), and
 * the front end's share of each inter-token gap: ITL mean or percentile - mean step time (ms).
 */
export function frontEndOverhead(statsBefore, statsAfter, itlSummary) {
  const steps = statsAfter.steps - statsBefore.steps;
  const seconds = statsAfter.step_seconds - statsBefore.step_seconds;
  if (!(steps > 0)) return null;
  const stepMs = (seconds / steps) * 1000;
  const at = (p) => {
    const hit = itlSummary.percentiles.find(([q]) => q === p);
    const itlMs = hit ? hit[1] : p === 50 ? itlSummary.median : null;
    return itlMs === null ? null : itlMs - stepMs;
  };
  return {
    steps,
    step_seconds: seconds,
    mean_step_ms: stepMs,
    overhead_mean_ms: itlSummary.mean - stepMs,
    overhead_p50_ms: at(50),
    overhead_p90_ms: at(90),
  };
}

/**
 * Gaps between successive chunks of each successful request whose later chunk arrived
 * within [from, to] (seconds), pooled: the inter-token latencies of a time window, e.g. the
 * steady decode phase between two /stats snapshots. outputs[i] = {success, chunkTimes}.
 */
export function windowItl(outputs, from, to) {
  const gaps = [];
  for (const o of outputs) {
    if (!o.success) continue;
    const t = o.chunkTimes;
    for (let i = 1; i < t.length; i++) {
      if (t[i] >= from && t[i] <= to) gaps.push(t[i] - t[i - 1]);
    }
  }
  return gaps;
}

/**
 * Splits chunk arrival times (seconds, any order) into engine steps: a new step starts
 * wherever the gap to the previous arrival exceeds splitGap. With every stream decoding in
 * lockstep and steps much longer than the front end's delivery, each cluster is the chunks
 * one step produced. Returns [{start, end, count}] in time order.
 */
export function stepClusters(times, splitGap) {
  const t = Float64Array.from(times).sort();
  const out = [];
  for (let i = 0; i < t.length; i++) {
    const last = out[out.length - 1];
    if (last && t[i] - last.end <= splitGap) {
      last.end = t[i];
      last.count++;
    } else {
      out.push({ start: t[i], end: t[i], count: 1 });
    }
  }
  return out;
}

/**
 * Delivery figures of the clusters: per step, the spread from its first to its last chunk;
 * per chunk, its delay after the first chunk of its step. Both in the input's units.
 */
export function clusterDelays(times, clusters) {
  const t = Float64Array.from(times).sort();
  const spreads = clusters.map((c) => c.end - c.start);
  const delays = [];
  let k = 0;
  for (const x of t) {
    while (k + 1 < clusters.length && x >= clusters[k + 1].start) k++;
    delays.push(x - clusters[k].start);
  }
  return { spreads, delays };
}
