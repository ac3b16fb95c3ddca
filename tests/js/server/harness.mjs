// Shared helpers for the end-to-end HTTP tests: start a real `foxserve serve`
// process on loopback (ports chosen by the server), talk to it with plain
// fetch, read event streams, and read the engine snapshot at GET /stats.
//
// Environment: FOXSERVE_BIN (the binary; default build/bin/foxserve under
// FOX_SOURCE_DIR), FOX_SOURCE_DIR (the repository root; default: three
// folders above this file), FOX_TEST_SERVER_LOG (optional: a file every
// server's stderr is appended to, for debugging).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.FOX_SOURCE_DIR ?? path.resolve(here, '..', '..', '..');
export const FOXSERVE_BIN = path.resolve(
  SOURCE_DIR, process.env.FOXSERVE_BIN ?? path.join('build', 'bin', 'foxserve'));

export const MODEL = 'fox-tiny';
export const EOS = 50256;
export const VOCAB_SIZE = 50257;
export const DEFAULT_MAX_MODEL_LEN = 16384;

// Small compute by default; a flag given in extraArgs replaces its default.
const DEFAULT_FLAGS = { '--threads': '1', '--kv-cache-memory': '256MiB' };

const liveServers = new Set();
process.on('exit', () => {
  for (const child of liveServers) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// Starts `foxserve serve --http-port 0 --grpc-port 0 ...extraArgs` and waits
// for its {"event":"serving"} line on stdout. Rejects (with the server's
// stderr, and .exitCode / .stderr on the error) when it exits first or does
// not become ready within timeoutMs.
export async function startServer(extraArgs = [], { env = {}, timeoutMs = 60000 } = {}) {
  const args = ['serve', '--http-port', '0', '--grpc-port', '0'];
  for (const [flag, value] of Object.entries(DEFAULT_FLAGS)) {
    if (!extraArgs.some((a) => a === flag || a.startsWith(flag + '='))) args.push(flag, value);
  }
  args.push(...extraArgs);
  const child = spawn(FOXSERVE_BIN, args, {
    cwd: SOURCE_DIR,
    // OpenMP threads spinning at barriers slow everything down when the
    // cores are shared with the test clients and other servers.
    env: { OMP_WAIT_POLICY: 'passive', ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveServers.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8');
  // FOX_TEST_SERVER_LOG=FILE appends every server's stderr to FILE.
  const logFile = process.env.FOX_TEST_SERVER_LOG;
  if (logFile) fs.appendFileSync(logFile, `--- pid ${child.pid}: ${args.join(' ')}\n`);
  child.stderr.on('data', (d) => {
    stderr += d;
    if (logFile) fs.appendFileSync(logFile, d);
  });
  child.stdout.setEncoding('utf8');
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      liveServers.delete(child);
      if (logFile) fs.appendFileSync(logFile, `--- pid ${child.pid} exited: code ${code} signal ${signal}\n`);
      resolve(code ?? (signal ? 128 : -1));
    });
  });

  const serving = await new Promise((resolve, reject) => {
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err); else resolve(value);
    };
    const fail = (what, code) => {
      const err = new Error(`foxserve serve ${what}\nargs: ${args.join(' ')}\nstderr:\n${stderr}`);
      err.exitCode = code;
      err.stderr = stderr;
      finish(err);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(`did not print its serving line within ${timeoutMs} ms`, null);
    }, timeoutMs);
    child.stdout.on('data', (d) => {
      stdout += d;
      for (const line of stdout.split('\n')) {
        const trimmed = line.trim();
        if (!trimmed.startsWith('{')) continue;
        try {
          const obj = JSON.parse(trimmed);
          if (obj.event === 'serving') finish(null, obj);
        } catch { /* a partial line; wait for more */ }
      }
    });
    child.on('error', (err) => fail(`could not start: ${err.message}`, null));
    // Let stderr drain before reporting the early exit.
    exited.then((code) => setTimeout(() => fail(`exited with code ${code} before serving`, code), 50));
  });

  const httpPort = serving.http_port;
  const grpcPort = serving.grpc_port;
  const origin = `http://127.0.0.1:${httpPort}`;
  let stopping = null;
  return {
    process: child,
    serving,
    httpPort,
    grpcPort,
    origin,
    baseURL: `${origin}/v1`,
    url: (p) => origin + (p.startsWith('/') ? p : '/' + p),
    get stderr() { return stderr; },
    get stdout() { return stdout; },
    exited,
    // SIGTERM, then waits for the exit; resolves with the exit code. Kills
    // with SIGKILL (and resolves with 137) after killAfterMs.
    stop({ killAfterMs = 30000 } = {}) {
      if (!stopping) {
        stopping = (async () => {
          if (child.exitCode !== null || child.signalCode !== null) return exited;
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
          const code = await exited;
          clearTimeout(timer);
          return child.signalCode === 'SIGKILL' ? 137 : code;
        })();
      }
      return stopping;
    },
  };
}

// fetch returning {status, headers, text, json} (json null when the body is
// not JSON). `body` objects are sent as JSON; strings and Buffers as given.
export async function request(server, p, { method, body, headers = {}, signal } = {}) {
  const init = { method: method ?? (body === undefined ? 'GET' : 'POST'), headers: { ...headers }, signal };
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Uint8Array) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
    }
    if (!Object.keys(init.headers).some((h) => h.toLowerCase() === 'content-type')) {
      init.headers['Content-Type'] = 'application/json';
    }
  }
  const res = await fetch(server.url(p), init);
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

export const postJSON = (server, p, body, opts = {}) => request(server, p, { ...opts, body });
export const getJSON = (server, p, opts = {}) => request(server, p, { ...opts, method: 'GET' });

// POST /v1/completions, asserting nothing; the model defaults to fox-tiny.
export const complete = (server, body, opts) =>
  postJSON(server, '/v1/completions', { model: MODEL, ...body }, opts);
export const chat = (server, body, opts) =>
  postJSON(server, '/v1/chat/completions', { model: MODEL, ...body }, opts);

// Splits an SSE body into events (blocks separated by a blank line).
// Returns {events: [{data, comments, raw}], data: [payload strings],
// comments: [comment lines], rest: text after the last blank line}.
export function parseSSE(text) {
  const blocks = text.split('\n\n');
  const rest = blocks.pop();
  const events = [];
  const comments = [];
  const data = [];
  for (const raw of blocks) {
    const ev = { raw, data: null, comments: [] };
    const dataLines = [];
    for (const line of raw.split('\n')) {
      if (line.startsWith(':')) {
        ev.comments.push(line);
        comments.push(line);
      } else if (line.startsWith('data:')) {
        dataLines.push(line.slice(5).replace(/^ /, ''));
      }
    }
    if (dataLines.length) {
      ev.data = dataLines.join('\n');
      data.push(ev.data);
    }
    events.push(ev);
  }
  return { events, data, comments, rest };
}

// Reads a fetch Response's event stream to the end. onEvent(payload, index)
// may return true to stop reading (the body is then cancelled).
// Returns {text, data, comments, chunks (parsed JSON, [DONE] excluded), done}.
export async function readSSE(res, { onEvent } = {}) {
  const decoder = new TextDecoder();
  let text = '';
  let buffer = '';
  const data = [];
  const comments = [];
  let stopped = false;
  const reader = res.body.getReader();
  outer: for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const piece = decoder.decode(value, { stream: true });
    text += piece;
    buffer += piece;
    let idx;
    while ((idx = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, idx);
      buffer = buffer.slice(idx + 2);
      const parsed = parseSSE(block + '\n\n');
      comments.push(...parsed.comments);
      for (const d of parsed.data) {
        data.push(d);
        if (onEvent && onEvent(d, data.length - 1)) {
          stopped = true;
          break outer;
        }
      }
    }
  }
  if (stopped) await reader.cancel().catch(() => {});
  const chunks = data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
  return { text, data, comments, chunks, done: data.at(-1) === '[DONE]', stopped };
}

// POST with stream: true and read the whole event stream.
export async function streamJSON(server, p, body, { headers = {}, signal } = {}) {
  const res = await fetch(server.url(p), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok) {
    const text = await res.text();
    const err = new Error(`HTTP ${res.status}: ${text}`);
    err.status = res.status;
    err.body = text;
    throw err;
  }
  const out = await readSSE(res);
  return { ...out, status: res.status, headers: res.headers };
}

// Joins completion stream chunks into texts per choice index.
export function joinCompletionChunks(chunks) {
  const texts = [];
  const finish = [];
  for (const c of chunks) {
    for (const ch of c.choices ?? []) {
      texts[ch.index] = (texts[ch.index] ?? '') + (ch.text ?? ch.delta?.content ?? '');
      if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
    }
  }
  return { texts, finish };
}

// GET /stats.
export async function stats(server) {
  const res = await fetch(server.url('/stats'));
  if (res.status !== 200) throw new Error(`GET /stats: HTTP ${res.status}: ${await res.text()}`);
  return res.json();
}

// Polls fn() until it returns a truthy value; returns it. Throws with the
// last value after timeoutMs.
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    }
    await sleep(intervalMs);
  }
}

// Waits until the engine holds no request and every KV block is free.
export async function waitIdle(server, { timeoutMs = 10000 } = {}) {
  let last;
  try {
    return await waitFor(async () => {
      last = await stats(server);
      return last.num_live_requests === 0 && last.num_running === 0 && last.num_waiting === 0 &&
        last.kv_blocks_free === last.kv_blocks_total ? last : null;
    }, { timeoutMs, what: 'an idle engine' });
  } catch (e) {
    e.message += `\nlast /stats: ${JSON.stringify(last)}`;
    throw e;
  }
}

// POST /tokenize.
export async function tokenize(server, body) {
  const res = await postJSON(server, '/tokenize', body);
  if (res.status !== 200) throw new Error(`POST /tokenize: HTTP ${res.status}: ${res.text}`);
  return res.json;
}

// Checks an OpenAI error body: {"error":{"message","type","param","code"}}.
// `names`: at least one must appear (case-insensitively) in the message or
// equal the param.
export function checkErrorBody(assert, res, status, names = []) {
  const where = `HTTP ${res.status} ${res.text}`;
  assert.equal(res.status, status, where);
  assert.ok(res.json && typeof res.json === 'object', `error body is not JSON: ${where}`);
  const err = res.json.error;
  assert.ok(err && typeof err === 'object', `no "error" object: ${where}`);
  assert.equal(typeof err.message, 'string', where);
  assert.ok(err.message.length > 0, where);
  assert.equal(typeof err.type, 'string', where);
  assert.ok('param' in err, `no "param" key: ${where}`);
  assert.ok(err.param === null || typeof err.param === 'string', where);
  assert.ok('code' in err, `no "code" key: ${where}`);
  if (names.length) {
    const msg = err.message.toLowerCase();
    const ok = names.some((n) => msg.includes(String(n).toLowerCase()) ||
      (typeof err.param === 'string' && err.param.toLowerCase() === String(n).toLowerCase()));
    assert.ok(ok, `the error names none of ${JSON.stringify(names)}: ${where}`);
  }
  const type = res.headers.get('content-type') ?? '';
  assert.match(type, /application\/json/, `content-type of an error: ${type}`);
}

// A small greedy completion must succeed.
export async function assertServing(assert, server, headers = {}) {
  const res = await complete(server, { prompt: 'Still there?', max_tokens: 2, temperature: 0, ignore_eos: true }, { headers });
  assert.equal(res.status, 200, `a normal request after an error failed: ${res.text}`);
  assert.equal(res.json.usage.completion_tokens, 2, res.text);
}
