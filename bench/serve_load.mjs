#!/usr/bin/env node
// Serving benchmark load client for any OpenAI-compatible endpoint, following vLLM's
// `vllm bench serve` (benchmarks/benchmark_serving.py) with its "random" dataset:
// prompts of random token ids sent as token-id prompts, streaming responses, Poisson
// arrivals, optional concurrency cap, and vLLM's TTFT / TPOT / ITL / E2EL definitions
// (bench/serve_metrics.mjs).
//
//   node bench/serve_load.mjs --base-url http://127.0.0.1:8000 --num-prompts 200 \
//     --request-rate 8 --random-input-len 128 --random-output-len 64 --result-json r.json
//
// Against a foxserve server it also reads GET /stats before and after the run (engine
// steps and their compute time) and reports the front end's overhead per inter-token gap;
// --server-pid PID samples the server's thread count from /proc.
//
// Run with --help for every flag.

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import {
  calculateMetrics,
  clusterDelays,
  frontEndOverhead,
  maxConcurrency,
  requestTimings,
  stepClusters,
  summarize,
  windowItl,
} from './serve_metrics.mjs';

// ---------------------------------------------------------------------------------------
// Flags

const FLAGS = [
  // name, kind, default, help
  ['base-url', 'string', null, 'server URL, e.g. http://127.0.0.1:8000 (else from --host/--port)'],
  ['host', 'string', '127.0.0.1', 'server host when --base-url is not given'],
  ['port', 'int', 8000, 'server port when --base-url is not given'],
  ['endpoint', 'string', '/v1/completions', '/v1/completions or /v1/chat/completions'],
  ['model', 'string', null, 'model name (default: the first id from GET /v1/models)'],
  ['num-prompts', 'int', 1000, 'number of requests'],
  ['request-rate', 'rate', Infinity, 'requests per second, Poisson arrivals; inf sends all at once'],
  ['burstiness', 'float', 1.0, 'gamma shape of the inter-arrival gaps (1: Poisson)'],
  ['max-concurrency', 'int', null, 'most requests in flight at once (client-side queue)'],
  ['random-input-len', 'int', 1024, 'prompt tokens per request'],
  ['random-output-len', 'int', 128, 'max_tokens per request'],
  ['random-range-ratio', 'float', 0.0, 'lengths drawn uniformly from [len*(1-r), len*(1+r)]'],
  ['random-prefix-len', 'int', 0, 'random tokens shared by every prompt, before its own'],
  ['token-id-low', 'int', 1000, 'smallest token id of the random prompts'],
  ['token-id-high', 'int', 40000, 'token ids are drawn below this'],
  ['seed', 'int', 0, 'seed of the dataset and the arrival times'],
  ['ignore-eos', 'bool', true, 'send ignore_eos (as vLLM\'s random dataset); --no-ignore-eos turns it off'],
  ['temperature', 'float', 0.0, 'sampling temperature sent with every request'],
  ['api-key', 'string', null, 'bearer token (default: $OPENAI_API_KEY)'],
  ['percentile-metrics', 'string', 'ttft,tpot,itl,e2el', 'metrics to report percentiles of'],
  ['metric-percentiles', 'string', '50,90,99', 'percentiles to report'],
  ['result-json', 'string', null, 'write the result to this JSON file'],
  ['save-detailed', 'bool', false, 'also store per-request lengths, TTFTs, ITLs, texts, errors'],
  ['label', 'string', null, 'label stored with the result'],
  ['server-stats', 'string', 'auto', 'read GET /stats before and after: auto (when it answers), on, off'],
  ['server-pid', 'int', null, 'sample /proc/PID/status Threads: during the run, report the peak'],
  ['request-timeout', 'float', null, 'seconds before a request is abandoned (default: none)'],
  ['skip-test-run', 'bool', false, 'skip the single-request test run before the benchmark'],
  ['progress-interval', 'float', 5, 'seconds between progress lines on stderr (0: none)'],
  ['help', 'bool', false, 'print this help'],
];

function usage() {
  const lines = ['usage: node bench/serve_load.mjs [flags]', ''];
  for (const [name, kind, def, help] of FLAGS) {
    const d = def === null ? '' : ` (default ${def === Infinity ? 'inf' : def})`;
    lines.push(`  --${name}${kind === 'bool' ? '' : ' ' + kind.toUpperCase()}`.padEnd(30) + help + d);
  }
  return lines.join('\n') + '\n';
}

function parseValue(name, kind, raw) {
  const bad = () => {
    throw new Error(`--${name}: bad value '${raw}'`);
  };
  switch (kind) {
    case 'string':
      return raw;
    case 'int': {
      if (!/^-?\d+$/.test(raw)) bad();
      return Number(raw);
    }
    case 'float': {
      const v = Number(raw);
      if (raw === '' || !Number.isFinite(v)) bad();
      return v;
    }
    case 'rate': {
      if (raw === 'inf' || raw === 'Infinity') return Infinity;
      const v = Number(raw);
      if (raw === '' || !(v > 0)) bad();
      return v;
    }
    case 'bool': {
      if (['true', '1', 'yes', 'on'].includes(raw)) return true;
      if (['false', '0', 'no', 'off'].includes(raw)) return false;
      return bad();
    }
  }
  return bad();
}

export function parseArgs(argv) {
  const spec = new Map(FLAGS.map(([name, kind, def]) => [name, { kind, def }]));
  const args = {};
  for (const [name, { def }] of spec) args[name] = def;
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    a = a.slice(2);
    let value = null;
    const eq = a.indexOf('=');
    if (eq >= 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (a.startsWith('no-') && spec.get(a.slice(3))?.kind === 'bool' && value === null) {
      args[a.slice(3)] = false;
      continue;
    }
    const s = spec.get(a);
    if (!s) throw new Error(`unknown flag --${a}`);
    if (s.kind === 'bool' && value === null) {
      // A following true/false is taken as the value; anything else leaves the flag bare.
      const next = argv[i + 1];
      if (next !== undefined && /^(true|false|1|0|yes|no|on|off)$/.test(next)) {
        value = next;
        i++;
      } else {
        value = 'true';
      }
    }
    if (value === null) {
      if (i + 1 >= argv.length) throw new Error(`--${a} needs a value`);
      value = argv[++i];
    }
    args[a] = parseValue(a, s.kind, value);
  }
  return args;
}

// ---------------------------------------------------------------------------------------
// Seeded randomness

/** mulberry32 over a splitmix32-mixed seed; uniform floats in [0, 1). */
export function makeRng(seed) {
  let s = (Number(seed) >>> 0) ^ 0x9e3779b9;
  s = Math.imul(s ^ (s >>> 16), 0x85ebca6b);
  s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35);
  s = (s ^ (s >>> 16)) >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng = {
    random: next,
    /** Integer in [lo, hi] inclusive. */
    int(lo, hi) {
      return lo + Math.floor(next() * (hi - lo + 1));
    },
    normal() {
      const u = 1 - next();
      const v = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    /** Gamma(shape, scale), Marsaglia-Tsang; shape 1 is the exponential distribution. */
    gamma(shape, scale) {
      if (shape === 1) return -Math.log(1 - next()) * scale;
      if (shape < 1) {
        const u = 1 - next();
        return rng.gamma(shape + 1, scale) * Math.pow(u, 1 / shape);
      }
      const d = shape - 1 / 3;
      const c = 1 / Math.sqrt(9 * d);
      for (;;) {
        let x;
        let v;
        do {
          x = rng.normal();
          v = 1 + c * x;
        } while (v <= 0);
        v = v * v * v;
        const u = 1 - next();
        if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v * scale;
      }
    },
  };
  return rng;
}

/**
 * vLLM's random dataset: per request an input length and an output length drawn uniformly
 * from [floor(len * (1 - r)), floor(len * (1 + r))], and a prompt of random token ids
 * (after a shared random prefix of prefixLen ids).
 */
export function randomDataset(opts) {
  const { numPrompts, inputLen, outputLen, rangeRatio, prefixLen, idLow, idHigh, seed } = opts;
  if (!(rangeRatio >= 0 && rangeRatio < 1)) throw new Error('--random-range-ratio must be in [0, 1)');
  if (!(idHigh > idLow)) throw new Error('--token-id-high must exceed --token-id-low');
  const rng = makeRng(seed);
  const token = () => rng.int(idLow, idHigh - 1);
  const prefix = Array.from({ length: prefixLen }, token);
  const inLo = Math.floor(inputLen * (1 - rangeRatio));
  const inHi = Math.floor(inputLen * (1 + rangeRatio));
  const outLo = Math.max(1, Math.floor(outputLen * (1 - rangeRatio)));
  const outHi = Math.max(1, Math.floor(outputLen * (1 + rangeRatio)));
  const requests = [];
  for (let i = 0; i < numPrompts; i++) {
    const inLen = rng.int(inLo, inHi);
    const outLen = rng.int(outLo, outHi);
    const ids = prefix.concat(Array.from({ length: inLen }, token));
    requests.push({ promptIds: ids, promptLen: ids.length, outputLen: outLen });
  }
  return requests;
}

/** Arrival offsets in seconds from the start: 0 for rate inf, else gamma(burstiness) gaps. */
export function arrivalOffsets(n, rate, burstiness, seed) {
  const out = new Array(n).fill(0);
  if (rate === Infinity) return out;
  const rng = makeRng((seed ^ 0x5bd1e995) >>> 0);
  const theta = 1 / (rate * burstiness);
  let t = 0;
  for (let i = 0; i < n; i++) {
    out[i] = t;
    t += rng.gamma(burstiness, theta);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// HTTP

class Client {
  constructor(baseUrl, apiKey, timeoutS) {
    this.base = new URL(baseUrl);
    this.mod = this.base.protocol === 'https:' ? https : http;
    this.agent = new this.mod.Agent({ keepAlive: true, maxSockets: Infinity });
    this.apiKey = apiKey;
    this.timeoutMs = timeoutS ? timeoutS * 1000 : 0;
    this.prefix = this.base.pathname.replace(/\/+$/, '');
  }

  headers(extra) {
    const h = { ...extra };
    if (this.apiKey) h.authorization = `Bearer ${this.apiKey}`;
    return h;
  }

  options(method, p, headers) {
    return {
      protocol: this.base.protocol,
      hostname: this.base.hostname,
      port: this.base.port || (this.base.protocol === 'https:' ? 443 : 80),
      path: this.prefix + p,
      method,
      agent: this.agent,
      headers: this.headers(headers),
    };
  }

  /** GET returning {status, body} (body parsed as JSON when it parses). */
  getJson(p, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const req = this.mod.request(this.options('GET', p, { accept: 'application/json' }), (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let body = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode, body });
        });
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${p}: timed out`)));
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * One streaming request, timed as vLLM's request functions do. Resolves (never rejects)
   * with {success, error, start, chunkTimes, outputTokens, text, emptyChunks, end}.
   * Times are performance.now() / 1000 (seconds). onFirstChunk, if given, is called when
   * the first chunk with choices arrives.
   */
  stream(p, payload, chat, onFirstChunk = null) {
    const body = JSON.stringify(payload);
    return new Promise((resolve) => {
      const out = {
        success: false,
        error: '',
        start: 0,
        end: 0,
        chunkTimes: [],
        outputTokens: null,
        promptTokens: null,
        text: '',
        emptyChunks: 0,
      };
      let settled = false;
      const finish = (error) => {
        if (settled) return;
        settled = true;
        out.end = performance.now() / 1000;
        if (error) out.error = error;
        out.success = !out.error && out.chunkTimes.length > 0;
        if (!out.error && out.chunkTimes.length === 0) {
          out.error = 'Never received a valid chunk to calculate TTFT.';
        }
        resolve(out);
      };
      const req = this.mod.request(
        this.options('POST', p, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          accept: 'text/event-stream',
        }),
        (res) => {
          res.setEncoding('utf8');
          if (res.statusCode !== 200) {
            let text = '';
            res.on('data', (d) => (text += d));
            res.on('end', () => finish(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
            res.on('error', (e) => finish(`HTTP ${res.statusCode}: ${e.message}`));
            return;
          }
          let buf = '';
          res.on('data', (d) => {
            const now = performance.now() / 1000;
            buf += d;
            let nl;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (line) handleLine(line, now);
            }
          });
          res.on('end', () => {
            if (buf.trim()) handleLine(buf.trim(), performance.now() / 1000);
            finish(res.complete ? '' : out.error || 'response ended early');
          });
          res.on('aborted', () => finish(out.error || 'response aborted'));
          res.on('error', (e) => finish(out.error || `response error: ${e.message}`));
        },
      );
      const handleLine = (line, now) => {
        if (line.startsWith(':')) return; // SSE comment
        if (!line.startsWith('data:')) return; // event:, id:, retry:
        const chunk = line.slice(5).trimStart();
        if (chunk === '[DONE]') return;
        let data;
        try {
          data = JSON.parse(chunk);
        } catch {
          out.error ||= `bad SSE data: ${chunk.slice(0, 200)}`;
          return;
        }
        const choices = data.choices;
        if (Array.isArray(choices) && choices.length > 0) {
          // A chunk with choices counts whatever its text (vLLM: "text could be empty").
          const c = choices[0];
          const piece = chat ? c.delta?.content : c.text;
          if (!piece) out.emptyChunks++;
          out.text += piece ?? '';
          out.chunkTimes.push(now);
          if (onFirstChunk && out.chunkTimes.length === 1) onFirstChunk();
        }
        if (data.usage) {
          if (data.usage.completion_tokens != null) out.outputTokens = data.usage.completion_tokens;
          if (data.usage.prompt_tokens != null) out.promptTokens = data.usage.prompt_tokens;
        }
        if (data.error) out.error ||= `stream error: ${JSON.stringify(data.error).slice(0, 300)}`;
      };
      if (this.timeoutMs) {
        req.setTimeout(this.timeoutMs, () => req.destroy(new Error('request timed out')));
      }
      req.on('error', (e) => finish(e.message || String(e)));
      out.start = performance.now() / 1000;
      req.end(body);
    });
  }

  close() {
    this.agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------
// Server-side sampling (foxserve's /stats, /proc/PID/status)

function readThreads(pid) {
  try {
    const m = /^Threads:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function isStats(body) {
  return body && typeof body === 'object' && typeof body.steps === 'number' && typeof body.step_seconds === 'number';
}

// ---------------------------------------------------------------------------------------
// The run

class Semaphore {
  constructor(n) {
    this.free = n;
    this.waiters = [];
  }
  acquire() {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((r) => this.waiters.push(r));
  }
  release() {
    const w = this.waiters.shift();
    if (w) w();
    else this.free++;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function buildPayload(args, model, request, chat, decode) {
  const payload = { model, temperature: args.temperature, max_tokens: request.outputLen, stream: true, stream_options: { include_usage: true } };
  if (chat) payload.messages = [{ role: 'user', content: decode(request.promptIds) }];
  else payload.prompt = request.promptIds;
  if (args['ignore-eos']) payload.ignore_eos = true;
  return payload;
}

function fmtRow(name, value, digits = 2) {
  const v = typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(digits) : String(value);
  return `${name.padEnd(40)} ${v}`;
}

function centered(s, c) {
  const n = 50;
  const left = Math.floor((n - s.length) / 2);
  return c.repeat(Math.max(0, left)) + s + c.repeat(Math.max(0, n - s.length - left));
}

const METRIC_NAMES = {
  ttft: ['Time to First Token', 'TTFT'],
  tpot: ['Time per Output Token (excl. 1st token)', 'TPOT'],
  itl: ['Inter-token Latency', 'ITL'],
  e2el: ['End-to-end Latency', 'E2EL'],
};

const pWord = (p) => (Number.isInteger(p) ? String(p) : String(p));

export function formatSummary(result) {
  const L = [];
  L.push(centered(' Serving Benchmark Result ', '='));
  if (result.label) L.push(fmtRow('Label:', result.label));
  L.push(fmtRow('Successful requests:', result.completed));
  L.push(fmtRow('Failed requests:', result.failed));
  L.push(fmtRow('Benchmark duration (s):', result.duration));
  L.push(fmtRow('Total input tokens:', result.total_input_tokens));
  L.push(fmtRow('Total generated tokens:', result.total_output_tokens));
  L.push(fmtRow('Request throughput (req/s):', result.request_throughput));
  L.push(fmtRow('Output token throughput (tok/s):', result.output_throughput));
  L.push(fmtRow('Total Token throughput (tok/s):', result.total_token_throughput));
  L.push(fmtRow('Max concurrency reached:', result.max_concurrent_requests));
  for (const m of result.percentile_metrics) {
    const [header, short] = METRIC_NAMES[m];
    L.push(centered(header, '-'));
    L.push(fmtRow(`Mean ${short} (ms):`, result[`mean_${m}_ms`]));
    L.push(fmtRow(`Median ${short} (ms):`, result[`median_${m}_ms`]));
    L.push(fmtRow(`Std ${short} (ms):`, result[`std_${m}_ms`]));
    for (const p of result.metric_percentiles) L.push(fmtRow(`P${pWord(p)} ${short} (ms):`, result[`p${pWord(p)}_${m}_ms`]));
  }
  const s = result.server;
  if (s && (s.stats || s.peak_threads != null)) {
    L.push(centered('Server', '-'));
    if (s.stats) {
      L.push(fmtRow('Engine steps (whole run):', s.stats.steps));
      L.push(fmtRow('Mean engine step (ms):', s.stats.mean_step_ms, 3));
      L.push(fmtRow('Front-end overhead mean (ms):', s.stats.overhead_mean_ms, 3));
      L.push(fmtRow('Front-end overhead p50 (ms):', s.stats.overhead_p50_ms, 3));
      L.push(fmtRow('Front-end overhead p90 (ms):', s.stats.overhead_p90_ms, 3));
      L.push(fmtRow('Peak running (sampled /stats):', s.peak_num_running ?? 'n/a'));
      const w = s.decode_window;
      if (w) {
        L.push(fmtRow('Decode window (s, steps, running):', `${w.seconds.toFixed(2)}, ${w.steps}, ${w.num_running}`));
        L.push(fmtRow('  mean engine step (ms):', w.mean_step_ms, 3));
        L.push(fmtRow('  ITL p50 / p90 (ms):', `${w.itl_p50_ms.toFixed(3)} / ${w.itl_p90_ms.toFixed(3)}`));
        L.push(fmtRow('  front-end overhead mean (ms):', w.overhead_mean_ms, 3));
        L.push(fmtRow('  front-end overhead p50 (ms):', w.overhead_p50_ms, 3));
        L.push(fmtRow('  front-end overhead p90 (ms):', w.overhead_p90_ms, 3));
        L.push(fmtRow('  arrival clusters (chunks each):', `${w.clusters} (${w.chunks_per_cluster.toFixed(1)})`));
        L.push(fmtRow('  step delivery spread p50/p90 (ms):', `${w.delivery_spread_p50_ms.toFixed(3)} / ${w.delivery_spread_p90_ms.toFixed(3)}`));
        L.push(fmtRow('  chunk after step\'s first p50/p90 (ms):', `${w.chunk_delay_p50_ms.toFixed(3)} / ${w.chunk_delay_p90_ms.toFixed(3)}`));
      }
      L.push(fmtRow('Preemptions during run:', s.preemptions ?? 'n/a'));
    }
    if (s.peak_threads != null) L.push(fmtRow('Server threads at peak:', s.peak_threads));
  }
  L.push('='.repeat(50));
  return L.join('\n');
}

export async function run(args, log = (s) => process.stderr.write(s + '\n')) {
  const baseUrl = args['base-url'] ?? `http://${args.host}:${args.port}`;
  const chat = args.endpoint.includes('chat');
  const apiKey = args['api-key'] ?? process.env.OPENAI_API_KEY ?? null;
  const percentileMetrics = args['percentile-metrics'].split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of percentileMetrics) if (!METRIC_NAMES[m]) throw new Error(`--percentile-metrics: unknown metric '${m}'`);
  const percentiles = args['metric-percentiles'].split(',').map((s) => Number(s.trim()));
  for (const p of percentiles) if (!(p >= 0 && p <= 100)) throw new Error('--metric-percentiles: each in [0, 100]');
  if (!(args['num-prompts'] > 0)) throw new Error('--num-prompts must be positive');
  if (args['max-concurrency'] !== null && !(args['max-concurrency'] > 0)) throw new Error('--max-concurrency must be positive');
  if (!(args.burstiness > 0)) throw new Error('--burstiness must be positive');

  const client = new Client(baseUrl, apiKey, args['request-timeout']);
  try {
    let model = args.model;
    if (!model) {
      const r = await client.getJson('/v1/models');
      const id = r.body?.data?.[0]?.id;
      if (r.status !== 200 || !id) throw new Error(`GET /v1/models: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
      model = id;
    }

    let decode = null;
    if (chat) {
      // Chat prompts are text: the random ids decoded with GPT-2's tokenizer.
      const require = createRequire(import.meta.url);
      const here = path.dirname(fileURLToPath(import.meta.url));
      const enc = require(path.join(here, '..', 'node_modules', 'gpt-3-encoder'));
      decode = (ids) => enc.decode(ids);
    }

    const dataset = randomDataset({
      numPrompts: args['num-prompts'],
      inputLen: args['random-input-len'],
      outputLen: args['random-output-len'],
      rangeRatio: args['random-range-ratio'],
      prefixLen: args['random-prefix-len'],
      idLow: args['token-id-low'],
      idHigh: args['token-id-high'],
      seed: args.seed,
    });

    if (!args['skip-test-run']) {
      log('Starting initial single prompt test run...');
      const t = await client.stream(args.endpoint, buildPayload(args, model, dataset[0], chat, decode), chat);
      if (!t.success) throw new Error(`initial test run failed: ${t.error}`);
      log('Initial test run completed. Starting main benchmark run...');
    }

    let statsMode = args['server-stats'];
    let statsBefore = null;
    if (statsMode !== 'off') {
      try {
        const r = await client.getJson('/stats');
        if (r.status === 200 && isStats(r.body)) statsBefore = r.body;
      } catch {
        // no /stats
      }
      if (!statsBefore && statsMode === 'on') throw new Error('--server-stats on: GET /stats did not answer with engine statistics');
    }

    const pid = args['server-pid'];
    let peakThreads = pid ? readThreads(pid) : null;
    let peakRunning = null;
    let peakWaiting = null;
    const threadTimer = pid
      ? setInterval(() => {
          const n = readThreads(pid);
          if (n !== null && (peakThreads === null || n > peakThreads)) peakThreads = n;
        }, 50)
      : null;
    let statsPolling = false;
    const statsTimer = statsBefore
      ? setInterval(async () => {
          if (statsPolling) return;
          statsPolling = true;
          try {
            const r = await client.getJson('/stats', 5000);
            if (isStats(r.body)) {
              peakRunning = Math.max(peakRunning ?? 0, r.body.num_running ?? 0);
              peakWaiting = Math.max(peakWaiting ?? 0, r.body.num_waiting ?? 0);
            }
          } catch {
            // ignore
          } finally {
            statsPolling = false;
          }
        }, 500)
      : null;

    log(`Traffic request rate: ${args['request-rate'] === Infinity ? 'inf' : args['request-rate']}`);
    log(`Burstiness factor: ${args.burstiness}${args.burstiness === 1 ? ' (Poisson process)' : ''}`);
    log(`Maximum request concurrency: ${args['max-concurrency'] ?? 'None'}`);
    const offsets = arrivalOffsets(dataset.length, args['request-rate'], args.burstiness, args.seed);
    const sem = args['max-concurrency'] ? new Semaphore(args['max-concurrency']) : null;
    const outputs = new Array(dataset.length);
    let done = 0;
    let failed = 0;
    let inFlight = 0;
    let peakInFlight = 0;
    const t0 = performance.now();
    const progressMs = args['progress-interval'] * 1000;
    const progressTimer =
      progressMs > 0
        ? setInterval(() => {
            const s = ((performance.now() - t0) / 1000).toFixed(1);
            log(`[${args.label ?? 'bench'}] ${s}s: done ${done}/${dataset.length}, failed ${failed}, in flight ${inFlight}` + (peakThreads != null ? `, server threads ${peakThreads} peak` : ''));
          }, progressMs)
        : null;

    // The steady decode window: from the moment every request has its first token (all
    // prefills done) to the first completion, the batch is constant; /stats snapshots at
    // both ends give the decode step time that the inter-token gaps of the window see.
    let firstChunks = 0;
    let windowStart = null;
    let windowEnd = null;
    const snapshot = () => {
      const t = performance.now() / 1000;
      return client
        .getJson('/stats', 10000)
        .then((r) => (isStats(r.body) ? { t, stats: r.body } : null))
        .catch(() => null);
    };
    const onFirstChunk = () => {
      firstChunks++;
      if (statsBefore && firstChunks === dataset.length && done === 0) windowStart = snapshot();
    };
    const one = async (i) => {
      if (sem) await sem.acquire();
      inFlight++;
      if (inFlight > peakInFlight) peakInFlight = inFlight;
      try {
        outputs[i] = await client.stream(args.endpoint, buildPayload(args, model, dataset[i], chat, decode), chat, onFirstChunk);
      } finally {
        inFlight--;
        done++;
        if (done === 1 && windowStart && outputs[i].success) windowEnd = snapshot();
        if (!outputs[i].success) failed++;
        if (sem) sem.release();
      }
    };
    const tasks = [];
    for (let i = 0; i < dataset.length; i++) {
      const wait = t0 + offsets[i] * 1000 - performance.now();
      if (wait > 1) await sleep(wait);
      tasks.push(one(i));
    }
    await Promise.all(tasks);
    const duration = (performance.now() - t0) / 1000;
    const windowA = windowStart ? await windowStart : null;
    const windowB = windowEnd ? await windowEnd : null;
    if (threadTimer) clearInterval(threadTimer);
    if (statsTimer) clearInterval(statsTimer);
    if (progressTimer) clearInterval(progressTimer);

    let statsAfter = null;
    if (statsBefore) {
      try {
        const r = await client.getJson('/stats');
        if (r.status === 200 && isStats(r.body)) statsAfter = r.body;
      } catch {
        // ignore
      }
    }

    const timed = outputs.map((o) => {
      const t = requestTimings(o.start, o.chunkTimes);
      return { success: o.success, ttft: t.ttft, itl: t.itl, latency: t.latency, outputTokens: o.outputTokens };
    });
    const m = calculateMetrics(
      dataset.map((d) => d.promptLen),
      timed,
      duration,
      percentiles,
    );

    const result = {
      date: new Date().toISOString(),
      backend: chat ? 'openai-chat' : 'openai',
      label: args.label,
      base_url: baseUrl,
      endpoint: args.endpoint,
      model_id: model,
      num_prompts: dataset.length,
      request_rate: args['request-rate'] === Infinity ? 'inf' : args['request-rate'],
      burstiness: args.burstiness,
      max_concurrency: args['max-concurrency'],
      random_input_len: args['random-input-len'],
      random_output_len: args['random-output-len'],
      random_range_ratio: args['random-range-ratio'],
      random_prefix_len: args['random-prefix-len'],
      ignore_eos: args['ignore-eos'],
      seed: args.seed,
      duration: m.duration,
      completed: m.completed,
      failed: m.failed,
      total_input_tokens: m.total_input,
      total_output_tokens: m.total_output,
      request_throughput: m.request_throughput,
      output_throughput: m.output_throughput,
      total_token_throughput: m.total_token_throughput,
      max_concurrent_requests: maxConcurrency(outputs.map((o) => [o.start, o.end])),
      max_in_flight_client: peakInFlight,
      empty_chunks: outputs.reduce((s, o) => s + o.emptyChunks, 0),
      percentile_metrics: percentileMetrics,
      metric_percentiles: percentiles,
    };
    for (const name of percentileMetrics) {
      const s = m[name];
      result[`mean_${name}_ms`] = s.mean;
      result[`median_${name}_ms`] = s.median;
      result[`std_${name}_ms`] = s.std;
      for (const [p, v] of s.percentiles) result[`p${pWord(p)}_${name}_ms`] = v;
    }

    const errors = new Map();
    for (const o of outputs) if (!o.success) errors.set(o.error, (errors.get(o.error) ?? 0) + 1);
    result.error_counts = [...errors].map(([error, count]) => ({ error, count })).slice(0, 20);

    const server = { pid: pid ?? null, peak_threads: peakThreads };
    if (statsBefore && statsAfter) {
      const allItl = [];
      for (const t of timed) if (t.success) for (const g of t.itl) allItl.push(g * 1000);
      server.stats = frontEndOverhead(statsBefore, statsAfter, summarize(allItl, [50, 90]));
      server.stats_before = statsBefore;
      server.stats_after = statsAfter;
      server.peak_num_running = peakRunning;
      server.peak_num_waiting = peakWaiting;
      if (statsAfter.preemptions != null) server.preemptions = statsAfter.preemptions - statsBefore.preemptions;
    }
    if (windowA && windowB) {
      const gaps = windowItl(outputs, windowA.t, windowB.t).map((g) => g * 1000);
      const w = frontEndOverhead(windowA.stats, windowB.stats, summarize(gaps, [50, 90]));
      if (w) {
        w.seconds = windowB.t - windowA.t;
        w.gaps = gaps.length;
        w.num_running = windowA.stats.num_running;
        const s = summarize(gaps, [50, 90]);
        w.itl_p50_ms = s.percentiles[0][1];
        w.itl_p90_ms = s.percentiles[1][1];
        // The window's chunks grouped by the step that produced them (split at gaps over
        // half a step): how long the front end takes to deliver one step's chunks.
        const arrivals = [];
        for (const o of outputs) {
          if (!o.success) continue;
          for (const t of o.chunkTimes) if (t >= windowA.t && t <= windowB.t) arrivals.push(t * 1000);
        }
        const clusters = stepClusters(arrivals, w.mean_step_ms / 2);
        const { spreads, delays } = clusterDelays(arrivals, clusters);
        const sp = summarize(spreads, [50, 90]);
        const dl = summarize(delays, [50, 90]);
        w.clusters = clusters.length;
        w.chunks_per_cluster = clusters.length ? arrivals.length / clusters.length : 0;
        w.delivery_spread_p50_ms = sp.percentiles[0][1];
        w.delivery_spread_p90_ms = sp.percentiles[1][1];
        w.chunk_delay_p50_ms = dl.percentiles[0][1];
        w.chunk_delay_p90_ms = dl.percentiles[1][1];
        server.decode_window = w;
      }
    }
    result.server = server;
    result.client = { node: process.version, loadavg_end: os.loadavg(), cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model };

    if (args['save-detailed']) {
      result.input_lens = dataset.map((d) => d.promptLen);
      result.output_lens = m.output_lens;
      result.ttfts = timed.map((t) => t.ttft);
      result.itls = timed.map((t) => t.itl);
      result.generated_texts = outputs.map((o) => o.text);
      result.errors = outputs.map((o) => o.error);
    }
    return result;
  } finally {
    client.close();
  }
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`serve_load: ${e.message}\n${usage()}`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(usage());
    return;
  }
  const result = await run(args);
  process.stdout.write(formatSummary(result) + '\n');
  if (result.error_counts.length) {
    process.stdout.write('Errors (first 20 distinct):\n');
    for (const { error, count } of result.error_counts) process.stdout.write(`  ${count} x ${error}\n`);
  }
  if (args['result-json']) {
    fs.writeFileSync(args['result-json'], JSON.stringify(result, null, 1) + '\n');
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`serve_load: ${e.stack || e.message}\n`);
    process.exit(1);
  });
}
