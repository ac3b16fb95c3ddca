// Graceful shutdown with live streams: on SIGTERM /ready turns 503, new
// requests get 503 over HTTP and UNAVAILABLE over gRPC, streams that finish
// within --shutdown-timeout end normally, the rest end with an abort finish
// and [DONE] once it passes, every request is logged as one JSON line, and
// the process exits 0.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

import { complete, MODEL, SOURCE_DIR, startServer, waitFor } from './harness.mjs';

const SHUTDOWN_TIMEOUT_S = 3;

const { Foxserve } = grpc.loadPackageDefinition(protoLoader.loadSync(
  path.join(SOURCE_DIR, 'proto', 'foxserve', 'v1', 'foxserve.proto'),
  { keepCase: true, longs: Number, defaults: true, oneofs: true })).foxserve.v1;

// Opens a streaming completion and reads it in the background: resolves with
// {chunks, done, finish, firstChunkAt, endedAt}; `started` resolves at the first chunk.
function openStream(server, body) {
  let markStarted;
  const started = new Promise((resolve) => { markStarted = resolve; });
  const finished = (async () => {
    const res = await fetch(server.url('/v1/completions'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: MODEL, stream: true, ...body }),
    });
    assert.equal(res.status, 200);
    const decoder = new TextDecoder();
    let text = '';
    for await (const piece of res.body) {
      text += decoder.decode(piece, { stream: true });
      if (text.includes('data: {')) markStarted();
    }
    const data = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
    const chunks = data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
    const finish = chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean);
    return { chunks, done: data.at(-1) === '[DONE]', finish, endedAt: Date.now() };
  })();
  return { started, finished };
}

function grpcGenerate(port) {
  return new Promise((resolve) => {
    const client = new Foxserve(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const call = client.Generate({ text: 'after the signal', sampling: { max_tokens: 4 } });
    const result = { messages: 0, error: null };
    call.on('data', () => { result.messages++; });
    call.on('error', (err) => { result.error = err; });
    call.on('close', () => { client.close(); resolve(result); });
  });
}

test('SIGTERM drains live streams, refuses new work, logs every request and exits 0', async () => {
  const server = await startServer(['--shutdown-timeout', String(SHUTDOWN_TIMEOUT_S)]);
  // Short streams finish inside the grace period; long ones cannot.
  const short = [0, 1].map((i) => openStream(server, { prompt: `short ${i}`, max_tokens: 30, ignore_eos: true }));
  const long = [0, 1].map((i) => openStream(server, { prompt: `long ${i}`, max_tokens: 12000, ignore_eos: true }));
  await Promise.all([...short, ...long].map((s) => s.started));

  const signalledAt = Date.now();
  server.process.kill('SIGTERM');
  // The server refuses new work as soon as it has seen the signal.
  await waitFor(async () => (await fetch(server.url('/ready'))).status === 503,
    { timeoutMs: 2000, what: '/ready to turn 503' });
  const refused = await complete(server, { prompt: 'too late', max_tokens: 2 });
  assert.equal(refused.status, 503, refused.text);
  assert.match(refused.json.error.message, /shutting down/);
  const grpcRefused = await grpcGenerate(server.grpcPort);
  assert.equal(grpcRefused.error?.code, grpc.status.UNAVAILABLE, String(grpcRefused.error));
  assert.equal(grpcRefused.messages, 0);

  for (const s of short) {
    const out = await s.finished;
    assert.ok(out.done, 'a short stream ends with [DONE]');
    assert.deepEqual(out.finish, ['length'], 'and finishes normally within the grace period');
  }
  for (const s of long) {
    const out = await s.finished;
    assert.ok(out.done, 'a long stream still ends with [DONE]');
    assert.deepEqual(out.finish, ['abort'], 'with one abort finish once the timeout passes');
    const waited = (out.endedAt - signalledAt) / 1000;
    assert.ok(waited >= SHUTDOWN_TIMEOUT_S - 0.3 && waited < SHUTDOWN_TIMEOUT_S + 5,
      `aborted ${waited.toFixed(2)} s after SIGTERM (timeout ${SHUTDOWN_TIMEOUT_S} s)`);
  }
  assert.equal(await server.exited, 0, `exit code\n${server.stderr}`);

  // One JSON line per finished request on stderr, with the logged fields.
  const lines = server.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const finished = lines.filter((l) => l.msg === 'request finished');
  assert.equal(finished.length, 4, `four finished requests logged:\n${server.stderr}`);
  assert.deepEqual(finished.map((l) => l.finish_reason).sort(), ['abort', 'abort', 'length', 'length']);
  for (const l of finished) {
    assert.match(l.request_id, /^cmpl-/);
    assert.ok(l.prompt_tokens > 0 && l.generation_tokens > 0, JSON.stringify(l));
    assert.ok(l.ttft_s > 0 && l.e2e_s >= l.ttft_s, JSON.stringify(l));
    assert.equal(l.level, l.finish_reason === 'abort' ? 'warning' : 'info');
    assert.match(l.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  assert.ok(lines.some((l) => l.msg === 'draining' && l.signal === 'SIGTERM'));
  assert.ok(lines.some((l) => l.msg === 'stopped' && l.all_responses_delivered === true));
});

test('--log-level warning drops the info lines but keeps aborts', async () => {
  const server = await startServer(['--log-level', 'warning']);
  const ok = await complete(server, { prompt: 'quiet', max_tokens: 3 });
  assert.equal(ok.status, 200);
  const controller = new AbortController();
  const res = await fetch(server.url('/v1/completions'), {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, signal: controller.signal,
    body: JSON.stringify({ model: MODEL, prompt: 'dropped', max_tokens: 5000, ignore_eos: true, stream: true }),
  });
  const reader = res.body.getReader();
  await reader.read();
  controller.abort();
  await waitFor(() => server.stderr.includes('"finish_reason":"abort"'),
    { timeoutMs: 5000, what: 'the aborted request to be logged' });
  assert.equal(await server.stop(), 0);
  const lines = server.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.level), ['warning'], server.stderr);
  assert.equal(lines[0].finish_reason, 'abort');

  const bad = await startServer(['--log-level', 'loud']).catch((e) => e);
  assert.ok(bad instanceof Error);
  assert.notEqual(bad.exitCode, 0);
  assert.match(bad.stderr, /--log-level must be debug, info, warning or error, got loud/);
});
