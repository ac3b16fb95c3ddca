// Raw event-stream bytes as curl receives them: exact SSE framing of
// completion and chat streams (data lines, blank lines, the usage chunk,
// [DONE]), response headers, keep-alive comments, and CORS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startServer, complete, MODEL } from './harness.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0, `serve exit code; stderr:\n${server.stderr}`);
});

// Runs curl; resolves {code, out (Buffer), err}. onData(bufferSoFar) sees the
// output as it arrives (with timestamps when asked).
function curl(args, { onData } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    child.stdout.on('data', (d) => {
      out.push(d);
      if (onData) onData(d, Date.now());
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out: Buffer.concat(out), err }));
  });
}

// curl -sN -i: status line and headers, a blank line, then the body.
function splitResponse(buf) {
  const text = buf.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no header block in ${JSON.stringify(text.slice(0, 200))}`);
  const lines = text.slice(0, end).split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status, headers, body: text.slice(end + 4) };
}

async function curlPost(path, body, extraArgs = []) {
  const res = await curl(['-sN', '-i', '--max-time', '120', '-X', 'POST',
    '-H', 'Content-Type: application/json', ...extraArgs,
    '--data-binary', JSON.stringify(body), server.url(path)]);
  assert.equal(res.code, 0, `curl exit ${res.code}: ${res.err}`);
  return splitResponse(res.out);
}

// Every event is exactly "data: <one line>\n\n" (comments ": ...\n\n" are
// allowed between them); the stream ends with "data: [DONE]\n\n".
function checkFraming(body) {
  assert.ok(body.endsWith('data: [DONE]\n\n'), `stream does not end with [DONE]: ${JSON.stringify(body.slice(-80))}`);
  const blocks = body.slice(0, -2).split('\n\n');
  const payloads = [];
  const comments = [];
  for (const block of blocks) {
    assert.ok(!block.includes('\n'), `an event spans several lines: ${JSON.stringify(block)}`);
    assert.ok(!block.includes('\r'), `a carriage return in an event: ${JSON.stringify(block)}`);
    if (block.startsWith(':')) {
      comments.push(block);
      continue;
    }
    assert.ok(block.startsWith('data: '), `event not "data: ...": ${JSON.stringify(block)}`);
    payloads.push(block.slice(6));
  }
  assert.equal(payloads.at(-1), '[DONE]');
  assert.equal(payloads.filter((p) => p === '[DONE]').length, 1, 'exactly one [DONE]');
  const chunks = payloads.slice(0, -1).map((p) => {
    try {
      return JSON.parse(p);
    } catch (e) {
      throw new Error(`not JSON: ${p}`);
    }
  });
  return { chunks, comments };
}

test('completion stream: exact framing, headers, usage chunk before [DONE]', async () => {
  const req = { model: MODEL, prompt: 'The river', max_tokens: 10, temperature: 0, ignore_eos: true };
  const whole = (await complete(server, req)).json;
  const { status, headers, body } = await curlPost('/v1/completions',
    { ...req, stream: true, stream_options: { include_usage: true } });
  assert.equal(status, 200);
  assert.match(headers['content-type'], /^text\/event-stream/);
  const { chunks, comments } = checkFraming(body);
  assert.equal(comments.length, 0, 'no keep-alive comments in a short stream at the default interval');
  assert.ok(chunks.length >= 3);
  const usageChunk = chunks.at(-1);
  assert.deepEqual(usageChunk.choices, []);
  assert.deepEqual(usageChunk.usage, whole.usage);
  let text = '';
  for (const c of chunks.slice(0, -1)) {
    assert.equal(c.object, 'text_completion');
    assert.equal(c.model, MODEL);
    assert.ok('usage' in c && c.usage === null, `"usage": null on every other chunk: ${JSON.stringify(c)}`);
    assert.equal(c.choices.length, 1);
    text += c.choices[0].text;
  }
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');
  assert.equal(text, whole.choices[0].text);
});

test('completion stream without include_usage: no usage chunk', async () => {
  const { status, body } = await curlPost('/v1/completions',
    { model: MODEL, prompt: 'The river', max_tokens: 5, temperature: 0, ignore_eos: true, stream: true });
  assert.equal(status, 200);
  const { chunks } = checkFraming(body);
  for (const c of chunks) {
    assert.ok(c.choices.length > 0, `a chunk without choices: ${JSON.stringify(c)}`);
    assert.ok(c.usage === undefined || c.usage === null);
  }
});

test('chat stream: exact framing, role first, finish_reason last, usage chunk', async () => {
  const req = { model: MODEL, messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 8, temperature: 0, ignore_eos: true };
  const { status, headers, body } = await curlPost('/v1/chat/completions',
    { ...req, stream: true, stream_options: { include_usage: true } });
  assert.equal(status, 200);
  assert.match(headers['content-type'], /^text\/event-stream/);
  const { chunks } = checkFraming(body);
  const usageChunk = chunks.at(-1);
  assert.deepEqual(usageChunk.choices, []);
  assert.equal(usageChunk.usage.completion_tokens, 8);
  assert.equal(usageChunk.usage.total_tokens, usageChunk.usage.prompt_tokens + 8);
  const rest = chunks.slice(0, -1);
  assert.equal(rest[0].choices[0].delta.role, 'assistant');
  for (const c of rest) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.ok('usage' in c && c.usage === null);
  }
  assert.equal(rest.at(-1).choices[0].finish_reason, 'length');
  for (const c of rest.slice(0, -1)) assert.ok(c.choices.every((ch) => ch.finish_reason === null || ch.finish_reason === undefined));
});

test('chat stream with n=2: each choice starts with the role and finishes once', async () => {
  const { status, body } = await curlPost('/v1/chat/completions', {
    model: MODEL, messages: [{ role: 'user', content: 'Two answers' }], n: 2, seed: 5, temperature: 1, max_tokens: 5,
    ignore_eos: true, stream: true, stream_options: { include_usage: true },
  });
  assert.equal(status, 200);
  const { chunks } = checkFraming(body);
  const seen = new Set();
  const finished = new Set();
  const ids = new Set(chunks.map((c) => c.id));
  assert.equal(ids.size, 1, 'one id for the stream');
  for (const c of chunks.slice(0, -1)) {
    for (const ch of c.choices) {
      assert.ok(!finished.has(ch.index), `delta for choice ${ch.index} after its finish`);
      if (!seen.has(ch.index)) {
        assert.equal(ch.delta.role, 'assistant', `first delta of choice ${ch.index}`);
        seen.add(ch.index);
      }
      if (ch.finish_reason) {
        assert.equal(ch.finish_reason, 'length');
        finished.add(ch.index);
      }
    }
  }
  assert.deepEqual([...finished].sort(), [0, 1]);
  assert.equal(chunks.at(-1).usage.completion_tokens, 10);
});

test('stream of two prompts with n=2: every choice index finishes once', async () => {
  const { status, body } = await curlPost('/v1/completions', {
    model: MODEL, prompt: ['Alpha', 'Beta gamma'], n: 2, seed: 3, temperature: 1, max_tokens: 4,
    ignore_eos: true, stream: true, stream_options: { include_usage: true },
  });
  assert.equal(status, 200);
  const { chunks } = checkFraming(body);
  const finished = new Map();
  for (const c of chunks.slice(0, -1)) {
    for (const ch of c.choices) {
      assert.ok(!finished.has(ch.index), `text for choice ${ch.index} after its finish`);
      if (ch.finish_reason) finished.set(ch.index, ch.finish_reason);
    }
  }
  assert.deepEqual([...finished.keys()].sort(), [0, 1, 2, 3]);
  assert.equal(chunks.at(-1).usage.completion_tokens, 16);
});

test('an error on a stream request is a JSON error, not a stream', async () => {
  const { status, headers, body } = await curlPost('/v1/completions',
    { model: MODEL, prompt: 'x', temperature: -1, stream: true });
  assert.equal(status, 400);
  assert.match(headers['content-type'], /application\/json/);
  const parsed = JSON.parse(body);
  assert.equal(typeof parsed.error.message, 'string');
});

test('keep-alive comments during a long-running stream', async () => {
  const ka = await startServer(['--sse-keep-alive-ms', '50']);
  try {
    // A prompt of about two thousand tokens: its prefill takes far longer
    // than 50 ms on one thread, and nothing else is written meanwhile.
    const words = [];
    for (let i = 0; i < 1000; i++) words.push(`w${i % 97}`);
    const prompt = words.join(' ');
    const arrivals = [];
    let start = 0;
    let firstData = null;
    let seen = '';
    start = Date.now();
    const res = await curl(['-sN', '-i', '--max-time', '120', '-X', 'POST', '-H', 'Content-Type: application/json',
      '--data-binary', JSON.stringify({ model: MODEL, prompt, max_tokens: 8, temperature: 0, ignore_eos: true, stream: true }),
      ka.url('/v1/completions')], {
      onData: (d, t) => {
        seen += d.toString('utf8');
        arrivals.push(t);
        if (firstData === null && /\r\n\r\n[\s\S]*data: /.test(seen)) firstData = t - start;
      },
    });
    assert.equal(res.code, 0, res.err);
    const { status, body } = splitResponse(res.out);
    assert.equal(status, 200);
    const { chunks, comments } = checkFraming(body);
    assert.ok(chunks.length >= 8);
    for (const c of comments) assert.match(c, /^:/);
    console.log(`keep-alive: first data after ${firstData} ms, ${comments.length} comment(s)`);
    if (firstData !== null && firstData >= 500) {
      assert.ok(comments.length >= 1, `no keep-alive comment although the first token took ${firstData} ms`);
      // The comments come before the first data event while nothing else is written.
      const beforeFirst = body.slice(0, body.indexOf('data: '));
      assert.ok(beforeFirst.startsWith(':'), `keep-alive comments before the first token: ${JSON.stringify(beforeFirst.slice(0, 60))}`);
    }
  } finally {
    assert.equal(await ka.stop(), 0);
  }
});

test('keep-alive comments while many streams share the engine', async () => {
  const ka = await startServer(['--sse-keep-alive-ms', '20', '--max-num-seqs', '1']);
  try {
    // With one running sequence at a time, queued streams wait for several
    // long requests before their first token: comments must keep them alive.
    const runs = [];
    for (let i = 0; i < 3; i++) {
      runs.push(curl(['-sN', '--max-time', '120', '-X', 'POST', '-H', 'Content-Type: application/json',
        '--data-binary', JSON.stringify({ model: MODEL, prompt: `Stream ${i}`, max_tokens: 60, temperature: 0, ignore_eos: true, stream: true }),
        ka.url('/v1/completions')]));
    }
    const results = await Promise.all(runs);
    let total = 0;
    for (const r of results) {
      assert.equal(r.code, 0, r.err);
      const { chunks, comments } = checkFraming(r.out.toString('utf8'));
      assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
      total += comments.length;
    }
    console.log(`keep-alive with queued streams: ${total} comment(s)`);
    assert.ok(total >= 1, 'queued streams got no keep-alive comment');
  } finally {
    assert.equal(await ka.stop(), 0);
  }
});

test('CORS: preflight and Access-Control-Allow-Origin with --cors-origins', async () => {
  const cors = await startServer(['--cors-origins', 'http://a.example,http://b.example']);
  try {
    const pre = await curl(['-s', '-i', '-X', 'OPTIONS',
      '-H', 'Origin: http://a.example',
      '-H', 'Access-Control-Request-Method: POST',
      '-H', 'Access-Control-Request-Headers: content-type, authorization',
      cors.url('/v1/chat/completions')]);
    assert.equal(pre.code, 0, pre.err);
    const p = splitResponse(pre.out);
    assert.ok(p.status === 200 || p.status === 204, `preflight status ${p.status}`);
    assert.equal(p.headers['access-control-allow-origin'], 'http://a.example');
    assert.match(p.headers['access-control-allow-methods'] ?? '', /POST/i);
    const allowHeaders = (p.headers['access-control-allow-headers'] ?? '').toLowerCase();
    assert.ok(allowHeaders === '*' || (allowHeaders.includes('content-type') && allowHeaders.includes('authorization')),
      `Access-Control-Allow-Headers: ${allowHeaders}`);

    const get = await curl(['-s', '-i', '-H', 'Origin: http://b.example', cors.url('/v1/models')]);
    const g = splitResponse(get.out);
    assert.equal(g.status, 200);
    assert.equal(g.headers['access-control-allow-origin'], 'http://b.example');

    const other = splitResponse((await curl(['-s', '-i', '-H', 'Origin: http://evil.example', cors.url('/v1/models')])).out);
    assert.equal(other.status, 200);
    assert.ok(!('access-control-allow-origin' in other.headers) ||
      other.headers['access-control-allow-origin'] !== 'http://evil.example',
    'an origin not in the list is not allowed');

    const stream = await curl(['-sN', '-i', '-X', 'POST', '-H', 'Origin: http://a.example', '-H', 'Content-Type: application/json',
      '--data-binary', JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: 2, stream: true }), cors.url('/v1/completions')]);
    const s = splitResponse(stream.out);
    assert.equal(s.status, 200);
    assert.equal(s.headers['access-control-allow-origin'], 'http://a.example', 'event streams carry the CORS header');
    checkFraming(s.body);

    const err = splitResponse((await curl(['-s', '-i', '-X', 'POST', '-H', 'Origin: http://a.example', '-H', 'Content-Type: application/json',
      '--data-binary', '{"model":"nope","prompt":"x"}', cors.url('/v1/completions')])).out);
    assert.equal(err.status, 404);
    assert.equal(err.headers['access-control-allow-origin'], 'http://a.example', 'errors carry the CORS header');
  } finally {
    assert.equal(await cors.stop(), 0);
  }
});

test('CORS: "*" allows any origin; without --cors-origins no CORS headers', async () => {
  const any = await startServer(['--cors-origins', '*']);
  try {
    const g = splitResponse((await curl(['-s', '-i', '-H', 'Origin: http://anything.example', any.url('/v1/models')])).out);
    assert.equal(g.status, 200);
    assert.equal(g.headers['access-control-allow-origin'], '*');
  } finally {
    assert.equal(await any.stop(), 0);
  }
  const g = splitResponse((await curl(['-s', '-i', '-H', 'Origin: http://a.example', server.url('/v1/models')])).out);
  assert.equal(g.status, 200);
  assert.ok(!('access-control-allow-origin' in g.headers), `unexpected CORS header: ${g.headers['access-control-allow-origin']}`);
});
