// The gRPC front end end to end: @grpc/grpc-js clients against a real
// `foxserve serve` process. Generate streams chunks and then exactly one
// final message; a cancelled call and an expired deadline end the engine
// request (the engine goes idle, seen through GET /stats); the API key;
// Tokenize, ModelInfo, and the standard health service.
//
// Environment: FOXSERVE_BIN (the binary), FOX_SOURCE_DIR (the repository root).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCE_DIR = process.env.FOX_SOURCE_DIR ?? path.resolve(here, '..', '..', '..');
const FOXSERVE_BIN = path.resolve(
  SOURCE_DIR, process.env.FOXSERVE_BIN ?? path.join('build', 'bin', 'foxserve'));
const BOS = 50256;

const LOAD_OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };
const foxserveProto = grpc.loadPackageDefinition(protoLoader.loadSync(
  path.join(SOURCE_DIR, 'proto', 'foxserve', 'v1', 'foxserve.proto'), LOAD_OPTIONS));
const healthProto = grpc.loadPackageDefinition(
  protoLoader.loadSync(path.join(here, 'health.proto'), LOAD_OPTIONS));

// Starts `foxserve serve` on free ports and resolves with its serving line
// once printed: { child, grpcPort, httpPort, stop() }.
async function startServe(extraArgs = []) {
  const args = ['serve', '--http-port', '0', '--grpc-port', '0', '--threads', '1',
    '--kv-cache-memory', '64MiB', ...extraArgs];
  const child = spawn(FOXSERVE_BIN, args, {
    cwd: SOURCE_DIR,
    env: { ...process.env, OMP_WAIT_POLICY: 'passive' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const serving = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`foxserve serve printed no serving line in 60 s\nstderr:\n${stderr}`));
    }, 60000);
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      stdout += d;
      for (const line of stdout.split('\n').slice(0, -1)) {
        try {
          const event = JSON.parse(line);
          if (event.event === 'serving') {
            clearTimeout(timer);
            resolve(event);
            return;
          }
        } catch { /* not JSON: ignore */ }
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`foxserve serve exited (${code}) before serving\nstderr:\n${stderr}`));
    });
  });
  return {
    grpcPort: serving.grpc_port,
    httpPort: serving.http_port,
    serving,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

const clients = [];
function client(server, Service) {
  const c = new Service(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  clients.push(c);
  return c;
}

// A unary call as a promise; rejects with the grpc-js error (with .code).
function unary(c, method, request, metadata = new grpc.Metadata(), options = {}) {
  return new Promise((resolve, reject) => {
    c[method](request, metadata, options, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

// Reads a Generate call to its end: { chunks, finals, after, error }, where
// `after` counts messages after the first final. `onChunk(call, n)` runs after
// the n-th chunk.
function generate(c, request, { metadata = new grpc.Metadata(), deadline, onChunk } = {}) {
  return new Promise((resolve) => {
    const call = c.Generate(request, metadata, deadline ? { deadline } : {});
    const result = { chunks: [], finals: [], after: 0, error: null };
    call.on('data', (response) => {
      if (result.finals.length > 0) result.after++;
      if (response.event === 'final') {
        result.finals.push(response.final);
      } else {
        result.chunks.push(response.chunk);
        if (onChunk) onChunk(call, result.chunks.length);
      }
    });
    call.on('error', (err) => { result.error = err; });
    call.on('close', () => resolve(result));
  });
}

async function stats(server) {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/stats`);
  assert.equal(res.status, 200, 'GET /stats');
  return res.json();
}

// Waits until the engine holds no request and every KV block is free.
async function waitIdle(server, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await stats(server);
    if (s.num_live_requests === 0 && s.kv_blocks_free === s.kv_blocks_total) return s;
    if (Date.now() > deadline) throw new Error(`engine not idle after ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await sleep(20);
  }
}

const greedy = (text, maxTokens, extra = {}) => ({
  text, sampling: { max_tokens: maxTokens, temperature: 0, ignore_eos: true, ...extra },
});

let server;
let foxserve;

before(async () => {
  server = await startServe();
  foxserve = client(server, foxserveProto.foxserve.v1.Foxserve);
});

after(async () => {
  for (const c of clients) c.close();
  if (server) assert.equal(await server.stop(), 0, `serve exit code; stderr:\n${server.stderr()}`);
});

test('Generate streams chunks, then exactly one final with usage', async () => {
  const prompt = 'The forget gate decides what the model keeps';
  const result = await generate(foxserve, greedy(prompt, 12, { logprobs: 2 }));
  assert.equal(result.error, null, String(result.error));
  assert.ok(result.chunks.length >= 1);
  assert.equal(result.finals.length, 1);
  assert.equal(result.after, 0, 'messages after the final');
  const ids = result.chunks.flatMap((c) => c.token_ids);
  const logprobs = result.chunks.flatMap((c) => c.logprobs);
  assert.equal(ids.length, 12);
  assert.equal(logprobs.length, 12);
  for (const [i, lp] of logprobs.entries()) {
    assert.equal(lp.token_id, ids[i]);
    assert.equal(lp.top.length, 2);
    assert.ok(lp.logprob <= 0);
  }
  const final = result.finals[0];
  assert.equal(final.finish_reason, 'length');
  assert.equal(final.usage.completion_tokens, 12);
  const tokens = await unary(foxserve, 'Tokenize', { text: prompt, add_bos: true });
  assert.equal(final.usage.prompt_tokens, tokens.token_ids.length);

  // Greedy: the same request again streams the same tokens.
  const again = await generate(foxserve, greedy(prompt, 12));
  assert.deepEqual(again.chunks.flatMap((c) => c.token_ids), ids);
});

test('Generate refuses an empty prompt with INVALID_ARGUMENT', async () => {
  const result = await generate(foxserve, greedy('', 4));
  assert.equal(result.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(result.error.details, /prompt is empty/);
  const tooHigh = await generate(foxserve, greedy('hello', 4, { top_p: 1.5 }));
  assert.equal(tooHigh.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(tooHigh.error.details, /top_p/);
});

test('cancelling mid-stream ends the engine request', async () => {
  const before = await waitIdle(server);
  const result = await generate(foxserve, greedy('The forget gate', 2000), {
    onChunk: (call, n) => { if (n === 2) call.cancel(); },
  });
  assert.equal(result.error?.code, grpc.status.CANCELLED);
  assert.equal(result.finals.length, 0);
  const idle = await waitIdle(server);
  assert.ok(idle.generation_tokens - before.generation_tokens < 2000,
    `the request ran on: ${idle.generation_tokens - before.generation_tokens} tokens`);
});

test('an expired deadline is DEADLINE_EXCEEDED and ends the engine request', async () => {
  const before = await waitIdle(server);
  const result = await generate(foxserve, greedy('The forget gate', 2000),
    { deadline: Date.now() + 50 });
  assert.equal(result.error?.code, grpc.status.DEADLINE_EXCEEDED);
  assert.equal(result.finals.length, 0);
  const idle = await waitIdle(server);
  assert.ok(idle.generation_tokens - before.generation_tokens < 2000,
    `the request ran on: ${idle.generation_tokens - before.generation_tokens} tokens`);
});

test('Tokenize honours add_bos', async () => {
  const withBos = await unary(foxserve, 'Tokenize', { text: 'Hello world', add_bos: true });
  const without = await unary(foxserve, 'Tokenize', { text: 'Hello world', add_bos: false });
  assert.equal(withBos.token_ids[0], BOS);
  assert.deepEqual(withBos.token_ids.slice(1), without.token_ids);
  assert.ok(without.token_ids.length >= 2);
  assert.ok(!without.token_ids.includes(BOS));
});

test('ModelInfo describes the embedded model', async () => {
  const info = await unary(foxserve, 'ModelInfo', {});
  assert.equal(info.model_name, server.serving.model);
  assert.equal(info.vocab_size, 50257);
  assert.equal(info.num_layers, 4);
  assert.equal(info.num_heads, 4);
  assert.equal(info.hidden_size, 256);
  assert.equal(info.max_model_len, 16384);
});

test('the health service reports SERVING', async () => {
  const health = client(server, healthProto.grpc.health.v1.Health);
  for (const service of ['', 'foxserve.v1.Foxserve']) {
    const response = await unary(health, 'Check', { service });
    assert.equal(response.status, 'SERVING', `service '${service}'`);
  }
  await assert.rejects(unary(health, 'Check', { service: 'no.such.Service' }),
    (err) => err.code === grpc.status.NOT_FOUND);
});

test('--api-key: UNAUTHENTICATED without or with a wrong key, OK with it', async () => {
  const keyed = await startServe(['--api-key', 'sekrit']);
  try {
    const c = client(keyed, foxserveProto.foxserve.v1.Foxserve);
    const withAuth = (value) => {
      const metadata = new grpc.Metadata();
      if (value !== null) metadata.set('authorization', value);
      return metadata;
    };
    for (const value of [null, 'Bearer wrong', 'sekrit']) {
      const result = await generate(c, greedy('hello', 2), { metadata: withAuth(value) });
      assert.equal(result.error?.code, grpc.status.UNAUTHENTICATED, `authorization ${value}`);
      assert.match(result.error.details, /missing or invalid API key/);
      await assert.rejects(unary(c, 'ModelInfo', {}, withAuth(value)),
        (err) => err.code === grpc.status.UNAUTHENTICATED);
      await assert.rejects(unary(c, 'Tokenize', { text: 'hi' }, withAuth(value)),
        (err) => err.code === grpc.status.UNAUTHENTICATED);
    }
    const result = await generate(c, greedy('hello', 2), { metadata: withAuth('Bearer sekrit') });
    assert.equal(result.error, null, String(result.error));
    assert.equal(result.finals.length, 1);
    const info = await unary(c, 'ModelInfo', {}, withAuth('Bearer sekrit'));
    assert.equal(info.num_layers, 4);
  } finally {
    assert.equal(await keyed.stop(), 0, `serve exit code; stderr:\n${keyed.stderr()}`);
  }
});
