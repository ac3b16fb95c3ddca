// Every refusal the HTTP API makes, with its status code, the OpenAI error
// body {"error":{"message","type","param","code"}} naming the problem, and a
// normal request succeeding afterwards: malformed bodies, wrong types and
// ranges, prompts too long, unknown models and routes, bodies over
// --max-request-bytes, API keys, a full queue (429) and shutdown (503).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  startServer, request, complete, chat, checkErrorBody, assertServing, stats, waitFor, waitIdle, MODEL,
} from './harness.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0, `serve exit code; stderr:\n${server.stderr}`);
});

const USER = [{ role: 'user', content: 'Hello' }];

// [name, route, body, names the message or param must mention]
const BAD_REQUESTS = [
  ['max_tokens as a string', '/v1/completions', { prompt: 'x', max_tokens: 'ten' }, ['max_tokens']],
  ['max_tokens negative', '/v1/completions', { prompt: 'x', max_tokens: -1 }, ['max_tokens']],
  ['max_tokens fractional', '/v1/completions', { prompt: 'x', max_tokens: 2.5 }, ['max_tokens']],
  ['temperature -1', '/v1/completions', { prompt: 'x', temperature: -1 }, ['temperature']],
  ['temperature as a string', '/v1/completions', { prompt: 'x', temperature: 'hot' }, ['temperature']],
  ['top_p 1.5', '/v1/completions', { prompt: 'x', top_p: 1.5 }, ['top_p']],
  ['top_p 0', '/v1/completions', { prompt: 'x', top_p: 0 }, ['top_p']],
  ['n 0', '/v1/completions', { prompt: 'x', n: 0 }, ['n']],
  ['logprobs 21', '/v1/completions', { prompt: 'x', logprobs: 21 }, ['logprobs']],
  ['logprobs -1', '/v1/completions', { prompt: 'x', logprobs: -1 }, ['logprobs']],
  ['min_p 2', '/v1/completions', { prompt: 'x', min_p: 2 }, ['min_p']],
  ['repetition_penalty 0', '/v1/completions', { prompt: 'x', repetition_penalty: 0 }, ['repetition_penalty']],
  ['presence_penalty 3', '/v1/completions', { prompt: 'x', presence_penalty: 3 }, ['presence_penalty']],
  ['frequency_penalty -3', '/v1/completions', { prompt: 'x', frequency_penalty: -3 }, ['frequency_penalty']],
  ['logit_bias 101', '/v1/completions', { prompt: 'x', logit_bias: { 995: 101 } }, ['logit_bias']],
  ['logit_bias key not a token id', '/v1/completions', { prompt: 'x', logit_bias: { abc: 1 } }, ['logit_bias']],
  ['logit_bias id out of vocabulary', '/v1/completions', { prompt: 'x', logit_bias: { 50257: 1 } }, ['logit_bias']],
  ['stop as a number', '/v1/completions', { prompt: 'x', stop: 5 }, ['stop']],
  ['prompt missing', '/v1/completions', { max_tokens: 2 }, ['prompt']],
  ['prompt empty string', '/v1/completions', { prompt: '' }, ['prompt']],
  ['prompt empty list', '/v1/completions', { prompt: [] }, ['prompt']],
  ['prompt list with an empty list', '/v1/completions', { prompt: [[15496], []] }, ['prompt']],
  ['prompt as a number', '/v1/completions', { prompt: 42 }, ['prompt']],
  ['prompt token id 50257', '/v1/completions', { prompt: [15496, 50257] }, ['prompt', '50257']],
  ['prompt token id negative', '/v1/completions', { prompt: [15496, -1] }, ['prompt', '-1']],
  ['prompt token id in a nested list', '/v1/completions', { prompt: [[15496], [99999]] }, ['prompt', '99999']],
  ['prompt mixing ids and strings', '/v1/completions', { prompt: [15496, 'x'] }, ['prompt']],
  ['stream_options without stream', '/v1/completions', { prompt: 'x', stream_options: { include_usage: true } }, ['stream_options', 'stream']],
  ['min_tokens over max_tokens', '/v1/completions', { prompt: 'x', max_tokens: 2, min_tokens: 5 }, ['min_tokens']],
  ['chat messages missing', '/v1/chat/completions', { max_tokens: 2 }, ['messages']],
  ['chat messages not a list', '/v1/chat/completions', { messages: 'hi' }, ['messages']],
  ['chat messages empty', '/v1/chat/completions', { messages: [] }, ['messages']],
  ['chat message with an unknown role', '/v1/chat/completions', { messages: [{ role: 'wizard', content: 'hi' }] }, ['role', 'messages']],
  ['chat message without role', '/v1/chat/completions', { messages: [{ content: 'hi' }] }, ['role']],
  ['chat temperature -1', '/v1/chat/completions', { messages: USER, temperature: -1 }, ['temperature']],
  ['chat n 0', '/v1/chat/completions', { messages: USER, n: 0 }, ['n']],
  ['chat top_logprobs 21', '/v1/chat/completions', { messages: USER, logprobs: true, top_logprobs: 21 }, ['top_logprobs']],
  ['chat max_completion_tokens as a string', '/v1/chat/completions', { messages: USER, max_completion_tokens: 'ten' }, ['max_completion_tokens']],
];

for (const [name, route, body, names] of BAD_REQUESTS) {
  test(`400: ${name}`, async () => {
    const res = await request(server, route, { body: { model: MODEL, ...body } });
    checkErrorBody(assert, res, 400, names);
    assert.equal(res.json.error.code, 400);
    // The same refusal for a stream request, as JSON rather than a stream.
    const streamed = await request(server, route, { body: { model: MODEL, ...body, stream: true } });
    if (!name.startsWith('stream_options')) checkErrorBody(assert, streamed, 400, names);
    await assertServing(assert, server);
  });
}

test('400: malformed JSON, a body that is not an object, and a missing body', async () => {
  for (const [route, text] of [
    ['/v1/completions', '{"model": "fox-tiny", "prompt": "x",'],
    ['/v1/completions', 'not json at all'],
    ['/v1/chat/completions', '{"messages": [}'],
    ['/v1/completions', '[1, 2, 3]'],
    ['/v1/completions', '"just a string"'],
    ['/v1/completions', ''],
  ]) {
    const res = await request(server, route, { method: 'POST', body: text, headers: { 'Content-Type': 'application/json' } });
    checkErrorBody(assert, res, 400);
  }
  await assertServing(assert, server);
});

test('400: invalid UTF-8 bytes in the body', async () => {
  const body = Buffer.concat([
    Buffer.from('{"model": "fox-tiny", "prompt": "abc'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('", "max_tokens": 2}'),
  ]);
  const res = await request(server, '/v1/completions', { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
  checkErrorBody(assert, res, 400, ['utf-8', 'utf8']);
  const chatBody = Buffer.concat([
    Buffer.from('{"model": "fox-tiny", "messages": [{"role": "user", "content": "'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}]}'),
  ]);
  checkErrorBody(assert, await request(server, '/v1/chat/completions', { method: 'POST', body: chatBody }), 400, ['utf-8', 'utf8']);
  await assertServing(assert, server);
});

test('the server keeps serving after every 400', async () => {
  await assertServing(assert, server);
  const res = await chat(server, { messages: USER, max_tokens: 2, ignore_eos: true });
  assert.equal(res.status, 200, res.text);
  const s = await waitIdle(server);
  assert.equal(s.num_live_requests, 0);
});

test('404: unknown model, unknown routes', async () => {
  const res = await complete(server, { model: 'gpt-4-unknown', prompt: 'x', max_tokens: 2 });
  checkErrorBody(assert, res, 404, ['gpt-4-unknown']);
  assert.equal(res.json.error.code, 404);
  checkErrorBody(assert, await chat(server, { model: 'gpt-4-unknown', messages: USER }), 404, ['gpt-4-unknown']);
  checkErrorBody(assert, await chat(server, { model: 'gpt-4-unknown', messages: USER, stream: true }), 404, ['gpt-4-unknown']);
  for (const [method, path] of [['GET', '/v1/nope'], ['POST', '/v1/engines/fox-tiny/completions'], ['GET', '/nope'], ['POST', '/v1/completion']]) {
    const r = await request(server, path, method === 'POST' ? { body: { prompt: 'x' } } : {});
    checkErrorBody(assert, r, 404);
  }
  await assertServing(assert, server);
});

test('400: prompt too long for --max-model-len; 413: body over --max-request-bytes', async () => {
  const small = await startServer(['--max-model-len', '64', '--max-request-bytes', '1000']);
  try {
    const ids40 = Array(40).fill(464);
    // Exactly max_model_len tokens in all is accepted.
    const fits = await complete(small, { prompt: ids40, max_tokens: 24, ignore_eos: true, temperature: 0 });
    assert.equal(fits.status, 200, fits.text);
    assert.equal(fits.json.usage.prompt_tokens, 40);
    assert.equal(fits.json.usage.completion_tokens, 24);
    // One more is refused, naming the limit.
    const over = await complete(small, { prompt: ids40, max_tokens: 25 });
    checkErrorBody(assert, over, 400, ['64']);
    checkErrorBody(assert, await complete(small, { prompt: ids40, max_tokens: 25, stream: true }), 400, ['64']);
    // A prompt longer than the model on its own.
    const longText = Array(80).fill('word').join(' ');
    checkErrorBody(assert, await complete(small, { prompt: longText, max_tokens: 1 }), 400, ['64']);
    checkErrorBody(assert, await complete(small, { prompt: [ids40, Array(70).fill(464)], max_tokens: 1 }), 400, ['64']);
    checkErrorBody(assert, await chat(small, { messages: [{ role: 'user', content: longText }], max_tokens: 1 }), 400, ['64']);
    checkErrorBody(assert, await chat(small, { messages: USER, max_completion_tokens: 64 }), 400, ['64']);
    await assertServing(assert, small);

    // 413: a body over 1000 bytes.
    const big = await complete(small, { prompt: 'y'.repeat(2000), max_tokens: 1 });
    checkErrorBody(assert, big, 413, ['max-request-bytes', '1000']);
    assert.equal(big.json.error.code, 413);
    const bigChat = await chat(small, { messages: [{ role: 'user', content: 'z'.repeat(5000) }] });
    checkErrorBody(assert, bigChat, 413);
    // curl sends "Expect: 100-continue" for a large body: the 413 comes
    // without the body being read.
    const curlOut = execFileSync('curl', ['-s', '-i', '--max-time', '30', '-X', 'POST', '-H', 'Content-Type: application/json',
      '--data-binary', JSON.stringify({ model: MODEL, prompt: 'q'.repeat(50000) }), small.url('/v1/completions')]).toString();
    assert.match(curlOut, /^HTTP\/1\.1 413/, curlOut.slice(0, 200));
    const curlBody = JSON.parse(curlOut.slice(curlOut.indexOf('\r\n\r\n') + 4));
    assert.equal(curlBody.error.code, 413);
    assert.match(curlBody.error.message, /max-request-bytes|1000/);
    // A body just under the limit is read (and here refused only for its length in tokens).
    const under = await complete(small, { prompt: 'ab '.repeat(300), max_tokens: 1 });
    assert.equal(under.status, 400, under.text);
    await assertServing(assert, small);
    await waitIdle(small);
  } finally {
    assert.equal(await small.stop(), 0, small.stderr);
  }
});

test('401: --api-key and FOXSERVE_API_KEY; /health stays open', async () => {
  const viaFlag = await startServer(['--api-key', 'flag-secret']);
  const viaEnv = await startServer([], { env: { FOXSERVE_API_KEY: 'env-secret' } });
  try {
    for (const [s, key] of [[viaFlag, 'flag-secret'], [viaEnv, 'env-secret']]) {
      const body = { prompt: 'x', max_tokens: 2 };
      const none = await complete(s, body);
      checkErrorBody(assert, none, 401);
      assert.equal(none.json.error.code, 401);
      checkErrorBody(assert, await complete(s, body, { headers: { Authorization: 'Bearer wrong' } }), 401);
      checkErrorBody(assert, await complete(s, body, { headers: { Authorization: key } }), 401);
      checkErrorBody(assert, await complete(s, body, { headers: { Authorization: `Bearer ${key}x` } }), 401);
      checkErrorBody(assert, await chat(s, { messages: USER }, { headers: { Authorization: 'Bearer wrong' } }), 401);
      checkErrorBody(assert, await request(s, '/v1/models'), 401);
      const health = await request(s, '/health');
      assert.equal(health.status, 200, 'no key needed for /health');
      await assertServing(assert, s, { Authorization: `Bearer ${key}` });
      const models = await request(s, '/v1/models', { headers: { Authorization: `Bearer ${key}` } });
      assert.equal(models.status, 200);
    }
  } finally {
    assert.equal(await viaFlag.stop(), 0);
    assert.equal(await viaEnv.stop(), 0);
  }
});

// Starts a long non-streaming request; returns {done (a promise of the
// response or the abort error), abort()}.
function longRequest(s, prompt) {
  const controller = new AbortController();
  const done = complete(s, { prompt, max_tokens: 2000, ignore_eos: true, temperature: 0 }, { signal: controller.signal })
    .catch((e) => ({ aborted: true, error: e }));
  return { done, abort: () => controller.abort() };
}

test('429 with Retry-After when the queue is full', async () => {
  const s = await startServer(['--max-num-seqs', '1', '--max-queued-requests', '1']);
  try {
    const first = longRequest(s, 'First long request');
    await waitFor(async () => (await stats(s)).num_running === 1, { what: 'one running request' });
    const second = longRequest(s, 'Second long request');
    await waitFor(async () => {
      const st = await stats(s);
      return st.num_running === 1 && st.num_waiting === 1;
    }, { what: 'one waiting request' });
    const third = await complete(s, { prompt: 'Third', max_tokens: 4 });
    checkErrorBody(assert, third, 429);
    assert.ok(third.headers.get('retry-after'), 'Retry-After header');
    assert.ok(Number(third.headers.get('retry-after')) >= 0);
    assert.equal(third.json.error.code, 429);
    // Several at once: every one refused, and streams too.
    const many = await Promise.all(Array.from({ length: 5 }, (_, i) =>
      complete(s, { prompt: `More ${i}`, max_tokens: 4, stream: i % 2 === 0 })));
    for (const r of many) checkErrorBody(assert, r, 429);
    const chatRefused = await chat(s, { messages: USER, max_tokens: 2 });
    checkErrorBody(assert, chatRefused, 429);

    first.abort();
    second.abort();
    await first.done;
    await second.done;
    await waitIdle(s, { timeoutMs: 10000 });
    await assertServing(assert, s);
  } finally {
    assert.equal(await s.stop(), 0, s.stderr);
  }
});

test('503 for new requests while shutting down; exit code 0', async () => {
  // Running requests get 3 s to finish after SIGTERM; this one would need far longer.
  const s = await startServer(['--max-num-seqs', '1', '--shutdown-timeout', '3']);
  // Keep-alive connections opened before the shutdown starts.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const get = (path) => new Promise((resolve) => {
    const req = http.request(s.url(path), { agent, method: 'GET' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', (error) => resolve({ error }));
    req.end();
  });
  const post = (path, body) => new Promise((resolve) => {
    const data = JSON.stringify(body);
    const req = http.request(s.url(path), {
      agent, method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', (error) => resolve({ error }));
    req.end(data);
  });
  try {
    await Promise.all([get('/health'), get('/health')]);
    const running = post('/v1/completions', { model: MODEL, prompt: 'Long', max_tokens: 2000, ignore_eos: true });
    await waitFor(async () => (await stats(s)).num_running === 1, { what: 'a running request' });
    const stopping = s.stop();
    await sleep(20);
    const after = await post('/v1/completions', { model: MODEL, prompt: 'Too late', max_tokens: 2 });
    if (after.error) {
      console.log(`request during shutdown: connection error ${after.error.code ?? after.error.message}`);
    } else {
      console.log(`request during shutdown: HTTP ${after.status}`);
      assert.equal(after.status, 503, `a request during shutdown got ${after.status}: ${after.text}`);
      const body = JSON.parse(after.text);
      assert.equal(typeof body.error.message, 'string');
    }
    const ready = await get('/ready');
    if (!ready.error) {
      console.log(`/ready during shutdown: HTTP ${ready.status}`);
      assert.notEqual(ready.status, 200, '/ready answers 200 while draining');
    }
    const first = await running;
    console.log(`in-flight request at shutdown: ${first.error ? first.error.code ?? first.error.message : `HTTP ${first.status} ${first.text.slice(0, 200)}`}`);
    if (!first.error) assert.ok(first.status === 200 || first.status === 503, `in-flight request: ${first.status}`);
    const t = Date.now();
    const code = await stopping;
    assert.equal(code, 0, s.stderr);
    assert.ok(Date.now() - t < 15000, 'exited soon after the shutdown timeout');
  } finally {
    agent.destroy();
    await s.stop();
  }
});
