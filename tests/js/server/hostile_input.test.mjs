// Input that once crashed the server, wrapped silently, answered 500 or was
// silently ignored, sent over real HTTP to a real `foxserve serve`: each is
// refused with a 400 naming the problem while other streams carry on.
// Also: methods per route (405 + Allow), what the API key guards, and
// X-Request-Id (accepted, echoed, logged).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, request, complete, chat, checkErrorBody, assertServing, streamJSON, joinCompletionChunks,
  waitFor, waitIdle, MODEL,
} from './harness.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0, `serve exit code; stderr:\n${server.stderr}`);
});

const USER = [{ role: 'user', content: 'Hello' }];
const rawPost = (s, path, text, headers = {}) =>
  request(s, path, { method: 'POST', body: text, headers: { 'Content-Type': 'application/json', ...headers } });

test('100,000 nested arrays are refused while parsing; a running stream is unaffected', async () => {
  const stream = streamJSON(server, '/v1/completions',
    { model: MODEL, prompt: 'Keep going', max_tokens: 40, ignore_eos: true, temperature: 0, stream: true });
  const deep = `{"model": ${'['.repeat(100000)}${']'.repeat(100000)}, "prompt": "x"}`;
  for (const route of ['/v1/completions', '/v1/chat/completions', '/tokenize', '/detokenize']) {
    checkErrorBody(assert, await rawPost(server, route, deep), 400, ['64 levels']);
  }
  checkErrorBody(assert, await rawPost(server, '/v1/completions', '{'.repeat(100000)), 400);
  const { chunks } = await stream;
  const { finish } = joinCompletionChunks(chunks);
  assert.equal(finish[0], 'length', 'the stream ran to its end');
  await assertServing(assert, server);
});

test('numbers out of range are 400s, never wrapped or 500', async () => {
  const cases = [
    ['{"model": "fox-tiny", "prompt": "x", "temperature": 1e400}', ['1e400', 'number']],
    ['{"model": "fox-tiny", "prompt": "x", "top_k": 18446744073709551615}', ['top_k']],
    ['{"model": "fox-tiny", "prompt": "x", "max_tokens": 9223372036854775807}', ['maximum context length']],
    ['{"model": "fox-tiny", "prompt": "x", "max_tokens": 9223372036854775806}', ['maximum context length']],
    ['{"model": "fox-tiny", "prompt": "x", "n": 100000000000}', ['n']],
    ['{"model": "fox-tiny", "prompt": "x", "seed": 1e300}', ['seed']],
    ['{"model": "fox-tiny", "prompt": [1, 9223372036854775808]}', ['prompt']],
  ];
  for (const [text, names] of cases) {
    checkErrorBody(assert, await rawPost(server, '/v1/completions', text), 400, names);
  }
  await assertServing(assert, server);
});

test('lists are bounded: stop strings, logit_bias, prompts, messages', async () => {
  checkErrorBody(assert, await complete(server, { prompt: 'x', stop: Array(65).fill('a') }), 400, ['stop', '64']);
  checkErrorBody(assert, await complete(server, { prompt: 'x', stop: ['a'.repeat(2000)] }), 400, ['stop', '1024']);
  const bias = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [String(i), 1]));
  checkErrorBody(assert, await complete(server, { prompt: 'x', logit_bias: bias }), 400, ['logit_bias', '1024']);
  checkErrorBody(assert, await complete(server, { prompt: Array(300).fill('a') }), 400, ['prompt', '256']);
  checkErrorBody(assert, await complete(server, { prompt: Array(100).fill('a'), n: 3 }), 400, ['n', '256']);
  checkErrorBody(assert, await chat(server, { messages: Array(3000).fill(USER[0]) }), 400, ['messages', '2048']);
  await assertServing(assert, server);
});

test('fields foxserve does not implement are refused by name; their no-op forms pass', async () => {
  const refused = {
    response_format: { type: 'json_object' },
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
    tool_choice: 'required',
    prompt_logprobs: 1,
    guided_json: { type: 'object' },
    guided_regex: '[a-z]+',
    guided_choice: ['yes', 'no'],
    guided_grammar: 'root ::= "a"',
    chat_template_kwargs: { enable_thinking: true },
    structured_outputs: { choice: ['a'] },
  };
  for (const [field, value] of Object.entries(refused)) {
    const res = await chat(server, { messages: USER, max_tokens: 2, [field]: value });
    checkErrorBody(assert, res, 400, [field]);
    assert.equal(res.json.error.param, field, res.text);
  }
  checkErrorBody(assert, await complete(server, { prompt: 'x', guided_regex: 'a+' }), 400, ['guided_regex']);
  const ok = await chat(server, {
    messages: USER, max_tokens: 2, response_format: { type: 'text' }, tools: [], tool_choice: 'none',
    chat_template_kwargs: {}, guided_json: null,
  });
  assert.equal(ok.status, 200, ok.text);
});

test('unknown fields are ignored with one warning line naming them', async () => {
  const res = await complete(server, { prompt: 'x', max_tokens: 2, frobnicate_level: 3, x_custom_hint: 'a' });
  assert.equal(res.status, 200, res.text);
  const line = await waitFor(() => server.stderr.split('\n').find((l) => l.includes('frobnicate_level')),
    { what: 'the warning line' });
  const entry = JSON.parse(line);
  assert.equal(entry.level, 'warning');
  assert.deepEqual(entry.fields, ['frobnicate_level', 'x_custom_hint']);
  assert.equal(server.stderr.split('\n').filter((l) => l.includes('frobnicate_level')).length, 1);
});

test('each known path answers its methods; others get 405 with Allow', async () => {
  for (const path of ['/health', '/ready', '/version', '/stats', '/metrics', '/v1/models']) {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await request(server, path, { method, body: method === 'DELETE' ? undefined : '{}' });
      checkErrorBody(assert, res, 405, [method]);
      assert.equal(res.headers.get('allow'), 'GET, HEAD', `${method} ${path}`);
    }
  }
  for (const path of ['/v1/completions', '/v1/chat/completions', '/tokenize', '/detokenize']) {
    const res = await request(server, path, { method: 'GET' });
    checkErrorBody(assert, res, 405, ['GET']);
    assert.equal(res.headers.get('allow'), 'POST');
  }
  checkErrorBody(assert, await request(server, '/no/such/path', { method: 'DELETE' }), 404);
  assert.equal((await request(server, '/health')).status, 200);
});

test('the API key guards /stats and, with --metrics-require-api-key, /metrics', async () => {
  const open = await startServer(['--api-key', 'k1']);
  const closed = await startServer(['--api-key', 'k2', '--metrics-require-api-key']);
  try {
    checkErrorBody(assert, await request(open, '/stats'), 401);
    assert.equal((await request(open, '/stats', { headers: { Authorization: 'Bearer k1' } })).status, 200);
    assert.equal((await request(open, '/metrics')).status, 200, '/metrics stays open by default');
    for (const path of ['/health', '/ready', '/version']) assert.equal((await request(open, path)).status, 200);
    checkErrorBody(assert, await request(closed, '/metrics'), 401);
    const scraped = await request(closed, '/metrics', { headers: { Authorization: 'Bearer k2' } });
    assert.equal(scraped.status, 200);
    assert.match(scraped.text, /fox_/);
    assert.equal((await request(closed, '/health')).status, 200);
  } finally {
    assert.equal(await open.stop(), 0, open.stderr);
    assert.equal(await closed.stop(), 0, closed.stderr);
  }
});

test('X-Request-Id is echoed on answers, errors and streams, and logged', async () => {
  const id = 'trace-4f1c2b7e-0001';
  const res = await complete(server, { prompt: 'x', max_tokens: 2 }, { headers: { 'X-Request-Id': id } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-request-id'), id);
  const line = await waitFor(() => server.stderr.split('\n').find((l) =>
    l.includes('"request finished"') && l.includes(id)), { what: 'the request log line' });
  assert.equal(JSON.parse(line).client_request_id, id);

  const bad = await complete(server, { prompt: 'x', top_p: 7 }, { headers: { 'X-Request-Id': 'err-1' } });
  checkErrorBody(assert, bad, 400, ['top_p']);
  assert.equal(bad.headers.get('x-request-id'), 'err-1');
  const health = await request(server, '/health', { headers: { 'X-Request-Id': 'probe-1' } });
  assert.equal(health.headers.get('x-request-id'), 'probe-1');

  const streamed = await fetch(server.url('/v1/completions'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'stream-1' },
    body: JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: 2, stream: true }),
  });
  assert.equal(streamed.status, 200);
  assert.equal(streamed.headers.get('x-request-id'), 'stream-1');
  await streamed.text();

  // The body's request_id (vLLM's field) is logged when no header is sent.
  assert.equal((await complete(server, { prompt: 'x', max_tokens: 1, request_id: 'body-id-7' })).status, 200);
  await waitFor(() => server.stderr.includes('"client_request_id":"body-id-7"'), { what: 'the body id in the log' });

  checkErrorBody(assert, await complete(server, { prompt: 'x' }, { headers: { 'X-Request-Id': 'a'.repeat(300) } }),
    400, ['X-Request-Id']);
  await waitIdle(server);
});
