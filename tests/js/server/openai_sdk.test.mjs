// The official OpenAI Node SDK against a real `foxserve serve`: completions
// and chat, plain and streamed, usage, n with a seed, logprobs, models.list,
// stop strings, and the SDK's error classes for 400, 404 and 401.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, tokenize, MODEL } from './harness.mjs';

let server;
let client;

before(async () => {
  server = await startServer();
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'any-key', maxRetries: 0, timeout: 120000 });
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0, `serve exit code; stderr:\n${server.stderr}`);
});

const PROMPT = 'The forget gate decides';

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

test('completion: response shape, greedy determinism and usage', async () => {
  const params = { model: MODEL, prompt: PROMPT, max_tokens: 12, temperature: 0, ignore_eos: true };
  const a = await client.completions.create(params);
  assert.equal(a.object, 'text_completion');
  assert.equal(typeof a.id, 'string');
  assert.ok(a.id.length > 0);
  assert.equal(typeof a.created, 'number');
  assert.ok(Math.abs(a.created - Date.now() / 1000) < 3600, `created ${a.created} is not a Unix time in seconds`);
  assert.equal(a.model, MODEL);
  assert.equal(a.choices.length, 1);
  const [c] = a.choices;
  assert.equal(c.index, 0);
  assert.equal(typeof c.text, 'string');
  assert.ok(c.text.length > 0);
  assert.equal(c.finish_reason, 'length');
  assert.equal(c.logprobs, null);
  const ids = await tokenize(server, { prompt: PROMPT });
  assert.equal(a.usage.prompt_tokens, ids.count);
  assert.equal(a.usage.completion_tokens, 12);
  assert.equal(a.usage.total_tokens, ids.count + 12);
  const b = await client.completions.create(params);
  assert.equal(b.choices[0].text, c.text, 'greedy decoding is deterministic');
  assert.notEqual(b.id, a.id, 'each response has its own id');
});

test('completion: default max_tokens is 16', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: PROMPT, temperature: 0, ignore_eos: true });
  assert.equal(r.usage.completion_tokens, 16);
  assert.equal(r.choices[0].finish_reason, 'length');
});

test('completion: streamed text equals the non-streamed text, usage with include_usage', async () => {
  const params = { model: MODEL, prompt: PROMPT, max_tokens: 20, temperature: 0, ignore_eos: true };
  const whole = await client.completions.create(params);
  const chunks = await collect(await client.completions.create({
    ...params, stream: true, stream_options: { include_usage: true },
  }));
  assert.ok(chunks.length >= 2, `only ${chunks.length} chunks`);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
  assert.deepEqual(last.usage, whole.usage);
  let text = '';
  let finish = null;
  const ids = new Set();
  for (const chunk of chunks.slice(0, -1)) {
    assert.equal(chunk.object, 'text_completion');
    assert.equal(chunk.model, MODEL);
    assert.equal(chunk.usage, null, 'chunks before the usage chunk carry "usage": null');
    ids.add(chunk.id);
    for (const ch of chunk.choices) {
      assert.equal(ch.index, 0);
      assert.equal(finish, null, 'no text after the finish_reason');
      text += ch.text;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  ids.add(last.id);
  assert.equal(ids.size, 1, 'one id for the whole stream');
  assert.equal(text, whole.choices[0].text);
  assert.equal(finish, 'length');
});

test('completion: stream without include_usage has no usage chunk', async () => {
  const chunks = await collect(await client.completions.create({
    model: MODEL, prompt: PROMPT, max_tokens: 4, temperature: 0, ignore_eos: true, stream: true,
  }));
  for (const chunk of chunks) {
    assert.ok(chunk.choices.length > 0, 'every chunk has a choice');
    assert.ok(chunk.usage === undefined || chunk.usage === null);
  }
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
});

test('chat: response shape and streamed content equals non-streamed content', async () => {
  const params = {
    model: MODEL,
    messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Name a colour.' }],
    max_tokens: 14, temperature: 0, ignore_eos: true,
  };
  const whole = await client.chat.completions.create(params);
  assert.equal(whole.object, 'chat.completion');
  assert.equal(whole.model, MODEL);
  assert.equal(typeof whole.id, 'string');
  assert.equal(typeof whole.created, 'number');
  assert.equal(whole.choices.length, 1);
  const [c] = whole.choices;
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.equal(c.finish_reason, 'length');
  assert.equal(whole.usage.completion_tokens, 14);
  assert.ok(whole.usage.prompt_tokens > 5);
  assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + 14);

  const chunks = await collect(await client.chat.completions.create({
    ...params, stream: true, stream_options: { include_usage: true },
  }));
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, whole.usage);
  const body = chunks.slice(0, -1);
  assert.ok(body.length >= 2);
  assert.equal(body[0].choices[0].delta.role, 'assistant', 'the first delta carries the role');
  let content = '';
  let finish = null;
  body.forEach((chunk, i) => {
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.usage, null);
    for (const ch of chunk.choices) {
      assert.equal(ch.index, 0);
      if (i > 0) assert.ok(ch.delta.role === undefined || ch.delta.role === null || ch.delta.role === 'assistant');
      assert.equal(finish, null, 'no delta after finish_reason');
      content += ch.delta.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  });
  assert.equal(content, c.message.content);
  assert.equal(finish, 'length');
  assert.ok(body.at(-1).choices.some((ch) => ch.finish_reason === 'length'), 'finish_reason on the last chunk');
});

test('chat: max_completion_tokens limits the output', async () => {
  const r = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_completion_tokens: 5,
    temperature: 0, ignore_eos: true,
  });
  assert.equal(r.usage.completion_tokens, 5);
  assert.equal(r.choices[0].finish_reason, 'length');
});

test('completion: n=2 with a seed gives two reproducible choices', async () => {
  const params = { model: MODEL, prompt: PROMPT, max_tokens: 10, temperature: 1, seed: 1234, n: 2, ignore_eos: true };
  const a = await client.completions.create(params);
  assert.equal(a.choices.length, 2);
  assert.deepEqual(a.choices.map((c) => c.index).sort(), [0, 1]);
  for (const c of a.choices) assert.equal(c.finish_reason, 'length');
  assert.equal(a.usage.completion_tokens, 20);
  const ids = await tokenize(server, { prompt: PROMPT });
  assert.equal(a.usage.prompt_tokens, ids.count, 'the prompt is counted once for n=2');
  const b = await client.completions.create(params);
  const byIndex = (r) => [...r.choices].sort((x, y) => x.index - y.index).map((c) => c.text);
  assert.deepEqual(byIndex(b), byIndex(a), 'the same seed gives the same choices');

  const streamed = await collect(await client.completions.create({ ...params, stream: true }));
  const texts = ['', ''];
  for (const chunk of streamed) for (const ch of chunk.choices) texts[ch.index] += ch.text;
  assert.deepEqual(texts, byIndex(a), 'streamed n=2 with the seed gives the same choices');
});

test('chat: n=2 with a seed gives two choices', async () => {
  const r = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Tell me a story.' }], n: 2, seed: 7,
    temperature: 0.8, max_tokens: 6, ignore_eos: true,
  });
  assert.equal(r.choices.length, 2);
  assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1]);
  for (const c of r.choices) assert.equal(c.message.role, 'assistant');
  assert.equal(r.usage.completion_tokens, 12);
});

test('completion: logprobs shape', async () => {
  const r = await client.completions.create({
    model: MODEL, prompt: PROMPT, max_tokens: 6, temperature: 0, logprobs: 3, ignore_eos: true,
  });
  const [c] = r.choices;
  const lp = c.logprobs;
  assert.ok(lp, 'logprobs present');
  for (const key of ['tokens', 'token_logprobs', 'top_logprobs', 'text_offset']) {
    assert.ok(Array.isArray(lp[key]), `${key} is an array`);
    assert.equal(lp[key].length, 6, `${key} has one entry per token`);
  }
  let offset = 0;
  for (let i = 0; i < 6; i++) {
    assert.equal(typeof lp.tokens[i], 'string');
    assert.equal(typeof lp.token_logprobs[i], 'number');
    assert.ok(lp.token_logprobs[i] <= 0);
    const top = lp.top_logprobs[i];
    const values = Object.values(top);
    assert.ok(values.length >= 1 && values.length <= 4, `top_logprobs[${i}] has ${values.length} entries`);
    for (const v of values) assert.ok(typeof v === 'number' && v <= 0);
    // Greedy: the chosen token is the most likely one.
    assert.ok(Math.abs(Math.max(...values) - lp.token_logprobs[i]) < 1e-4,
      `greedy token ${i}: ${lp.token_logprobs[i]} vs top ${JSON.stringify(top)}`);
    assert.equal(lp.text_offset[i], offset, `text_offset[${i}]`);
    offset += [...lp.tokens[i]].length;  // offsets count characters (code points)
  }
  if (!lp.tokens.some((t) => t.includes('\ufffd') || t.startsWith('bytes:'))) {
    assert.equal(lp.tokens.join(''), c.text);
  }
});

test('completion: top_logprobs always include the sampled token (up to logprobs+1 entries)', async () => {
  for (const n of [0, 2]) {
    const r = await client.completions.create({
      model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 1, seed: 11, logprobs: n, ignore_eos: true,
    });
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, 8);
    for (let i = 0; i < 8; i++) {
      const top = lp.top_logprobs[i];
      const size = Object.keys(top).length;
      assert.ok(size >= Math.max(n, 1) && size <= n + 1,
        `logprobs=${n}: top_logprobs[${i}] has ${size} entries: ${JSON.stringify(top)}`);
      if (lp.tokens[i].includes('\ufffd')) continue;  // several tokens may print as U+FFFD
      assert.ok(lp.tokens[i] in top,
        `logprobs=${n}: the sampled token ${JSON.stringify(lp.tokens[i])} is missing from top_logprobs[${i}] ${JSON.stringify(top)}`);
      assert.ok(Math.abs(top[lp.tokens[i]] - lp.token_logprobs[i]) < 1e-6);
    }
  }
});

test('completion: streamed logprobs equal the non-streamed logprobs', async () => {
  const params = { model: MODEL, prompt: PROMPT, max_tokens: 10, temperature: 0, logprobs: 2, ignore_eos: true };
  const whole = (await client.completions.create(params)).choices[0].logprobs;
  const joined = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const chunk of await collect(await client.completions.create({ ...params, stream: true }))) {
    for (const ch of chunk.choices) {
      if (!ch.logprobs) continue;
      for (const key of Object.keys(joined)) joined[key].push(...ch.logprobs[key]);
    }
  }
  assert.deepEqual(joined.tokens, whole.tokens);
  assert.deepEqual(joined.text_offset, whole.text_offset, 'text offsets continue across chunks');
  for (let i = 0; i < whole.tokens.length; i++) {
    assert.ok(Math.abs(joined.token_logprobs[i] - whole.token_logprobs[i]) < 1e-5);
    assert.deepEqual(Object.keys(joined.top_logprobs[i]).sort(), Object.keys(whole.top_logprobs[i]).sort());
  }
});

test('chat: logprobs with top_logprobs shape', async () => {
  const r = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, temperature: 0,
    logprobs: true, top_logprobs: 2, ignore_eos: true,
  });
  const content = r.choices[0].logprobs?.content;
  assert.ok(Array.isArray(content), `logprobs.content: ${JSON.stringify(r.choices[0].logprobs)}`);
  assert.equal(content.length, 5);
  for (const item of content) {
    assert.equal(typeof item.token, 'string');
    assert.ok(typeof item.logprob === 'number' && item.logprob <= 0);
    assert.ok(Array.isArray(item.top_logprobs));
    assert.equal(item.top_logprobs.length, 2);
    for (const alt of item.top_logprobs) {
      assert.equal(typeof alt.token, 'string');
      assert.ok(typeof alt.logprob === 'number' && alt.logprob <= 0);
    }
    assert.ok(item.top_logprobs[0].logprob >= item.top_logprobs[1].logprob, 'alternatives most likely first');
    assert.ok(Math.abs(item.top_logprobs[0].logprob - item.logprob) < 1e-4, 'greedy picks the top alternative');
  }
  const plain = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, temperature: 0,
  });
  assert.ok(plain.choices[0].logprobs === null || plain.choices[0].logprobs === undefined,
    'no logprobs unless asked');
});

test('models.list', async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  assert.equal(models.length, 1);
  assert.equal(models[0].id, MODEL);
  assert.equal(models[0].object, 'model');
  assert.equal(models[0].owned_by, 'foxserve');
  const one = await client.models.list();
  assert.equal(one.data[0].id, MODEL);
});

// A stop string taken from the middle of a previous greedy output: the new
// output is that output cut just before the string's first occurrence.
function pickStop(text) {
  for (let start = Math.floor(text.length / 3); start < text.length - 3; start++) {
    const s = text.slice(start, start + 3);
    if (s.trim().length < 2 || s.includes('\ufffd')) continue;
    const first = text.indexOf(s);
    if (first > 0) return { stop: s, cut: first };
  }
  return null;
}

test('completion: a stop string is honoured', async () => {
  const params = { model: MODEL, prompt: 'Once upon a time', max_tokens: 32, temperature: 0, ignore_eos: true };
  const full = (await client.completions.create(params)).choices[0].text;
  const picked = pickStop(full);
  assert.ok(picked, `no usable stop string in ${JSON.stringify(full)}`);
  const r = await client.completions.create({ ...params, stop: [picked.stop, 'never-appears-xyz'] });
  const [c] = r.choices;
  assert.equal(c.text, full.slice(0, picked.cut), `stop ${JSON.stringify(picked.stop)} in ${JSON.stringify(full)}`);
  assert.equal(c.finish_reason, 'stop');
  assert.equal(c.stop_reason, picked.stop);
  assert.ok(r.usage.completion_tokens < 32);

  const single = await client.completions.create({ ...params, stop: picked.stop });
  assert.equal(single.choices[0].text, full.slice(0, picked.cut), 'stop as a plain string');

  const streamed = await collect(await client.completions.create({ ...params, stop: picked.stop, stream: true }));
  let text = '';
  let finish = null;
  for (const chunk of streamed) for (const ch of chunk.choices) { text += ch.text; finish = ch.finish_reason ?? finish; }
  assert.equal(text, full.slice(0, picked.cut), 'streamed output stops at the same place, without the held-back text');
  assert.equal(finish, 'stop');
});

test('chat: a stop string is honoured', async () => {
  const params = { model: MODEL, messages: [{ role: 'user', content: 'Count to ten.' }], max_tokens: 32, temperature: 0, ignore_eos: true };
  const full = (await client.chat.completions.create(params)).choices[0].message.content;
  const picked = pickStop(full);
  assert.ok(picked, `no usable stop string in ${JSON.stringify(full)}`);
  const r = await client.chat.completions.create({ ...params, stop: picked.stop });
  assert.equal(r.choices[0].message.content, full.slice(0, picked.cut));
  assert.equal(r.choices[0].finish_reason, 'stop');
});

test('SDK error classes: 400 BadRequestError, 404 NotFoundError', async () => {
  await assert.rejects(
    client.completions.create({ model: MODEL, prompt: 'x', temperature: -1 }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 400);
      assert.match(`${err.message} ${err.param}`, /temperature/);
      return true;
    });
  await assert.rejects(
    client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], top_p: 1.5 }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.match(`${err.message} ${err.param}`, /top_p/);
      return true;
    });
  await assert.rejects(
    client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 1 }),
    (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 404);
      assert.match(err.message, /no-such-model/);
      return true;
    });
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }], stream: true }),
    (err) => err instanceof OpenAI.NotFoundError);
  // Still serving.
  const ok = await client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 1 });
  assert.equal(ok.choices.length, 1);
});

test('SDK error classes: 401 AuthenticationError with --api-key', async () => {
  const keyed = await startServer(['--api-key', 'sdk-secret']);
  try {
    const wrong = new OpenAI({ baseURL: keyed.baseURL, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(wrong.completions.create({ model: MODEL, prompt: 'x', max_tokens: 1 }), (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 401);
      return true;
    });
    await assert.rejects(wrong.models.list(), OpenAI.AuthenticationError);
    const right = new OpenAI({ baseURL: keyed.baseURL, apiKey: 'sdk-secret', maxRetries: 0 });
    const r = await right.completions.create({ model: MODEL, prompt: 'x', max_tokens: 2, ignore_eos: true });
    assert.equal(r.usage.completion_tokens, 2);
    const chunks = await collect(await right.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 2, stream: true,
    }));
    assert.ok(chunks.length >= 1);
  } finally {
    assert.equal(await keyed.stop(), 0);
  }
});
