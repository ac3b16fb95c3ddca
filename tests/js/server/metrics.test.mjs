// /metrics end to end: a known burst of traffic, then `promtool check
// metrics` on the exposition, and a real Prometheus server scraping foxserve
// on loopback whose PromQL answers must equal the burst's counts.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { complete, MODEL, startServer, streamJSON, waitFor, waitIdle } from './harness.mjs';

const NUM_COMPLETIONS = 5;
const COMPLETION_TOKENS = 4;
const NUM_CHATS = 3;
const CHAT_TOKENS = 6;

let server;
let promptTokens = 0;

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function scrape() {
  const res = await fetch(server.url('/metrics'));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return res.text();
}

// The value of one series in the exposition text, e.g. 'fox_prompt_tokens_total{model_name="fox-tiny"}'.
function sample(text, series) {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  assert.ok(line, `no series ${series} in /metrics`);
  return Number(line.slice(series.length + 1));
}

// A burst whose counts are known: non-streamed completions and streamed chats,
// each running to max_tokens.
async function burst() {
  const completions = Array.from({ length: NUM_COMPLETIONS }, (_, i) =>
    complete(server, { prompt: `metrics burst ${i}`, max_tokens: COMPLETION_TOKENS, ignore_eos: true }));
  const chats = Array.from({ length: NUM_CHATS }, async (_, i) => {
    const { chunks, done } = await streamJSON(server, '/v1/chat/completions', {
      model: MODEL, messages: [{ role: 'user', content: `metrics chat ${i}` }],
      max_tokens: CHAT_TOKENS, ignore_eos: true, stream: true, stream_options: { include_usage: true },
    });
    assert.ok(done, 'the stream ends with [DONE]');
    const usage = chunks.find((c) => c.usage)?.usage;
    assert.ok(usage, 'the stream carries usage');
    return usage;
  });
  for (const res of await Promise.all(completions)) {
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.usage.completion_tokens, COMPLETION_TOKENS);
    promptTokens += res.json.usage.prompt_tokens;
  }
  for (const usage of await Promise.all(chats)) {
    assert.equal(usage.completion_tokens, CHAT_TOKENS);
    promptTokens += usage.prompt_tokens;
  }
}

before(async () => {
  server = await startServer();
  await burst();
  await waitIdle(server);
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0);
});

test('the exposition counts the burst and passes promtool check metrics', async () => {
  const text = await scrape();
  const m = `{model_name="${MODEL}"}`;
  const total = NUM_COMPLETIONS + NUM_CHATS;
  assert.equal(sample(text, `fox_request_success_total{finished_reason="length",model_name="${MODEL}"}`), total);
  assert.equal(sample(text, `fox_request_success_total{finished_reason="stop",model_name="${MODEL}"}`), 0);
  assert.equal(sample(text, `fox_generation_tokens_total${m}`),
    NUM_COMPLETIONS * COMPLETION_TOKENS + NUM_CHATS * CHAT_TOKENS);
  assert.equal(sample(text, `fox_prompt_tokens_total${m}`), promptTokens);
  assert.equal(sample(text, `fox_e2e_request_latency_seconds_count${m}`), total);
  assert.equal(sample(text, `fox_time_to_first_token_seconds_count${m}`), total);
  assert.equal(sample(text, `fox_inter_token_latency_seconds_count${m}`),
    NUM_COMPLETIONS * (COMPLETION_TOKENS - 1) + NUM_CHATS * (CHAT_TOKENS - 1));
  assert.equal(sample(text, `fox_num_requests_running${m}`), 0);
  assert.equal(sample(text, `fox_kv_blocks_free${m}`), sample(text, `fox_kv_blocks_capacity${m}`));
  assert.ok(sample(text, `fox_engine_steps_total${m}`) >= CHAT_TOKENS);
  assert.ok(sample(text, `fox_attention_key_blocks_read_total${m}`) > 0);
  // Scraping resets nothing.
  assert.equal(sample(await scrape(), `fox_generation_tokens_total${m}`),
    NUM_COMPLETIONS * COMPLETION_TOKENS + NUM_CHATS * CHAT_TOKENS);

  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(check.error, undefined, `promtool could not run: ${check.error}`);
  assert.equal(check.status, 0, `promtool check metrics failed:\n${check.stdout}${check.stderr}`);
  assert.equal((check.stdout + check.stderr).trim(), '', 'promtool reports no lint problems');
});

test('HTTP answers by code and route, and the process metrics', async () => {
  const before = await scrape();
  const count = (text, code, route) => {
    const series = `http_requests_total{code="${code}",model_name="${MODEL}",route="${route}"}`;
    return text.split('\n').some((l) => l.startsWith(series + ' ')) ? sample(text, series) : 0;
  };
  // The burst's completions are there already.
  assert.equal(count(before, 200, '/v1/completions'), NUM_COMPLETIONS);
  assert.equal(count(before, 200, '/v1/chat/completions'), NUM_CHATS);
  const bad = await complete(server, { prompt: 'x', top_p: 9 });
  assert.equal(bad.status, 400);
  assert.equal((await fetch(server.url('/v1/nothing-here'))).status, 404);
  assert.equal((await fetch(server.url('/health'), { method: 'POST' })).status, 405);
  for (const id of ['/some/random/path/1', '/some/random/path/2']) await fetch(server.url(id));
  // on_response runs after the response has ended: poll for it.
  const text = await waitFor(async () => {
    const t = await scrape();
    return count(t, 405, '/health') === 1 ? t : null;
  }, { what: 'the 405 in http_requests_total' });
  assert.equal(count(text, 400, '/v1/completions'), 1);
  assert.equal(count(text, 404, 'other'), 3, 'unknown paths share one label');
  assert.ok(!text.includes('/some/random/path'), 'client paths never become labels');
  assert.ok(sample(text, `http_request_duration_seconds_count{model_name="${MODEL}",route="/v1/completions"}`) >= NUM_COMPLETIONS + 1);
  assert.equal(sample(text, `fox_http_responses_incomplete_total{model_name="${MODEL}",reason="write_timeout"}`), 0);
  assert.ok(sample(text, 'process_resident_memory_bytes') > 1e6);
  assert.ok(sample(text, 'process_open_fds') >= 5);
  assert.ok(sample(text, 'process_max_fds') >= sample(text, 'process_open_fds'));
  assert.ok(sample(text, 'process_cpu_seconds_total') > 0);
  const start = sample(text, 'process_start_time_seconds');
  const now = Date.now() / 1000;
  assert.ok(start <= now + 1 && start > now - 600, `process_start_time_seconds ${start}, now ${now}`);
});

test('a real Prometheus scraping foxserve answers PromQL with the burst counts', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fox-prom-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const promPort = await freePort();
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    'scrape_configs:',
    '  - job_name: foxserve',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: ["127.0.0.1:${server.httpPort}"]`,
    '',
  ].join('\n'));
  const prom = spawn('prometheus', [
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let promLog = '';
  prom.stderr.setEncoding('utf8');
  prom.stderr.on('data', (d) => { promLog += d; });
  const promExited = new Promise((resolve) => prom.on('exit', resolve));
  t.after(async () => {
    prom.kill('SIGTERM');
    await promExited;
  });

  const query = async (q) => {
    const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = await res.json();
    assert.equal(body.status, 'success', `${q}: ${JSON.stringify(body)}`);
    return body.data.result;
  };
  const scalar = async (q) => {
    const result = await query(q);
    assert.equal(result.length, 1, `${q} has one series: ${JSON.stringify(result)}`);
    return Number(result[0].value[1]);
  };

  try {
    await waitFor(async () => {
      try {
        return (await query(`fox_request_success_total{finished_reason="length"}`)).length === 1;
      } catch { return false; }
    }, { timeoutMs: 60000, intervalMs: 250, what: 'Prometheus to scrape foxserve' });
  } catch (e) {
    e.message += `\nprometheus log:\n${promLog}`;
    throw e;
  }
  const total = NUM_COMPLETIONS + NUM_CHATS;
  assert.equal(await scalar('up{job="foxserve"}'), 1);
  assert.equal(await scalar(`sum(fox_request_success_total{model_name="${MODEL}"})`), total);
  assert.equal(await scalar('fox_generation_tokens_total'),
    NUM_COMPLETIONS * COMPLETION_TOKENS + NUM_CHATS * CHAT_TOKENS);
  assert.equal(await scalar('fox_prompt_tokens_total'), promptTokens);
  assert.equal(await scalar('sum(fox_e2e_request_latency_seconds_count)'), total);
  assert.equal(await scalar('fox_kv_blocks_capacity - fox_kv_blocks_free'), 0);
  const ttftP50 = await scalar('histogram_quantile(0.5, sum by (le) (fox_time_to_first_token_seconds_bucket))');
  assert.ok(ttftP50 > 0 && ttftP50 < 60, `TTFT p50 ${ttftP50}`);

  // More traffic: the counters keep counting across scrapes.
  await burst();
  await waitFor(async () => (await scalar(`sum(fox_request_success_total)`)) === 2 * total,
    { timeoutMs: 20000, intervalMs: 250, what: 'the second burst in Prometheus' });
  assert.equal(await scalar('fox_generation_tokens_total'),
    2 * (NUM_COMPLETIONS * COMPLETION_TOKENS + NUM_CHATS * CHAT_TOKENS));
});
