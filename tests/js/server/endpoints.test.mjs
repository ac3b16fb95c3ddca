// The endpoints besides generation, and request options checked through
// their effect: /v1/models (and --served-model-name), /health, /ready,
// /version, /stats, /tokenize and /detokenize, echo, logit_bias,
// stop strings and stop token ids, min_tokens, lists of prompts, token-id
// prompts, chat with the default template, and --chat-template errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import {
  startServer, request, complete, chat, tokenize, stats, waitFor, waitIdle, streamJSON, joinCompletionChunks,
  checkErrorBody, MODEL, EOS, DEFAULT_MAX_MODEL_LEN,
} from './harness.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0, `serve exit code; stderr:\n${server.stderr}`);
});

async function ok(resPromise) {
  const res = await resPromise;
  assert.equal(res.status, 200, `HTTP ${res.status}: ${res.text}`);
  return res.json;
}

const greedy = (extra) => ({ max_tokens: 8, temperature: 0, ignore_eos: true, ...extra });

test('the serving line names the model and both ports', () => {
  assert.equal(server.serving.model, MODEL);
  assert.ok(Number.isInteger(server.httpPort) && server.httpPort > 0);
  assert.ok(Number.isInteger(server.grpcPort) && server.grpcPort > 0);
  assert.notEqual(server.httpPort, server.grpcPort);
});

test('GET /v1/models', async () => {
  const res = await request(server, '/v1/models');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const body = res.json;
  assert.equal(body.object, 'list');
  assert.equal(body.data.length, 1);
  const [m] = body.data;
  assert.equal(m.id, MODEL);
  assert.equal(m.object, 'model');
  assert.equal(m.owned_by, 'foxserve');
  assert.equal(m.max_model_len, DEFAULT_MAX_MODEL_LEN);
  assert.equal(typeof m.created, 'number');
});

test('--served-model-name and --max-model-len', async () => {
  const named = await startServer(['--served-model-name', 'my-fox', '--max-model-len', '4096']);
  try {
    assert.equal(named.serving.model, 'my-fox');
    const models = await ok(request(named, '/v1/models'));
    assert.equal(models.data[0].id, 'my-fox');
    assert.equal(models.data[0].max_model_len, 4096);
    const r = await ok(complete(named, { model: 'my-fox', prompt: 'Hi', max_tokens: 2 }));
    assert.equal(r.model, 'my-fox');
    const c = await ok(chat(named, { model: 'my-fox', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }));
    assert.equal(c.model, 'my-fox');
    checkErrorBody(assert, await complete(named, { model: MODEL, prompt: 'Hi', max_tokens: 2 }), 404, [MODEL]);
    const t = await tokenize(named, { prompt: 'Hi' });
    assert.equal(t.max_model_len, 4096);
  } finally {
    assert.equal(await named.stop(), 0);
  }
});

test('GET /health, /ready, /version', async () => {
  assert.equal((await request(server, '/health')).status, 200);
  assert.equal((await request(server, '/ready')).status, 200);
  const v = await ok(request(server, '/version'));
  assert.equal(typeof v.version, 'string');
  assert.ok(v.version.length > 0);
});

test('GET /stats when idle', async () => {
  const s = await waitIdle(server);
  for (const key of ['num_running', 'num_waiting', 'num_live_requests', 'kv_blocks_total', 'kv_blocks_free',
    'steps', 'step_seconds', 'preemptions', 'blocks_evicted']) {
    assert.equal(typeof s[key], 'number', `/stats.${key}: ${JSON.stringify(s)}`);
    assert.ok(s[key] >= 0);
  }
  assert.ok(s.kv_blocks_total > 0);
  const before = s.steps;
  await ok(complete(server, { prompt: 'Count the steps', ...greedy({ max_tokens: 5 }) }));
  const afterRun = await waitIdle(server);
  assert.ok(afterRun.steps >= before + 5, `steps ${before} -> ${afterRun.steps} for 5 tokens`);

  // While a request runs, the snapshot follows it within ~20 ms.
  const controller = new AbortController();
  const running = complete(server, { prompt: 'A long one', max_tokens: 3000, ignore_eos: true }, { signal: controller.signal })
    .catch(() => null);
  try {
    const first = await waitFor(async () => {
      const st = await stats(server);
      return st.num_running === 1 && st.num_live_requests === 1 ? st : null;
    }, { what: 'the request in /stats' });
    assert.ok(first.kv_blocks_free < first.kv_blocks_total, 'a running request holds KV blocks');
    await new Promise((r) => setTimeout(r, 150));
    const second = await stats(server);
    assert.ok(second.steps > first.steps, `/stats steps did not move in 150 ms: ${first.steps} -> ${second.steps}`);
    assert.ok(second.step_seconds > first.step_seconds);
  } finally {
    controller.abort();
    await running;
  }
  await waitIdle(server);
});

test('/tokenize and /detokenize', async () => {
  const plain = await tokenize(server, { prompt: 'Hello world', add_special_tokens: false });
  assert.deepEqual(plain.tokens, [15496, 995]);
  assert.equal(plain.count, 2);
  assert.equal(plain.max_model_len, DEFAULT_MAX_MODEL_LEN);
  const withBos = await tokenize(server, { prompt: 'Hello world' });
  assert.deepEqual(withBos.tokens, [EOS, 15496, 995]);
  assert.equal(withBos.count, 3);
  assert.deepEqual((await ok(request(server, '/detokenize', { body: { tokens: [15496, 995] } }))).prompt, 'Hello world');
  for (const text of ['Hello world', ' leading space', 'naïve café — 東京 🙂', 'tabs\tand\nnewlines', "it's \"quoted\""]) {
    const ids = (await tokenize(server, { prompt: text, add_special_tokens: false })).tokens;
    const back = await ok(request(server, '/detokenize', { body: { tokens: ids } }));
    assert.equal(back.prompt, text, `round trip of ${JSON.stringify(text)} via ${JSON.stringify(ids)}`);
  }
  const msgs = await tokenize(server, { messages: [{ role: 'user', content: 'Hello world' }] });
  assert.ok(Array.isArray(msgs.tokens));
  assert.equal(msgs.count, msgs.tokens.length);
  assert.ok(msgs.count > 2);
  checkErrorBody(assert, await request(server, '/detokenize', { body: { tokens: [50257] } }), 400);
  checkErrorBody(assert, await request(server, '/tokenize', { body: {} }), 400);
});

test('chat with the default template: prompt tokens as /tokenize counts them, deterministic greedy', async () => {
  const messages = [
    { role: 'system', content: 'You answer in one word.' },
    { role: 'user', content: 'What colour is the sky?' },
    { role: 'assistant', content: 'Blue.' },
    { role: 'user', content: 'And grass?' },
  ];
  const a = await ok(chat(server, { messages, ...greedy({ max_tokens: 6 }) }));
  const b = await ok(chat(server, { messages, ...greedy({ max_tokens: 6 }) }));
  assert.equal(a.object, 'chat.completion');
  assert.equal(a.choices[0].message.role, 'assistant');
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  const counted = await tokenize(server, { messages });
  assert.equal(a.usage.prompt_tokens, counted.count, 'chat prompt tokens = /tokenize of the same messages');
  // Every message's content is part of the prompt.
  let contentTokens = 0;
  for (const m of messages) contentTokens += (await tokenize(server, { prompt: m.content, add_special_tokens: false })).count;
  assert.ok(a.usage.prompt_tokens >= contentTokens, `${a.usage.prompt_tokens} prompt tokens < ${contentTokens} content tokens`);
  // A different conversation is a different prompt.
  const other = await ok(chat(server, { messages: messages.slice(0, 2), ...greedy({ max_tokens: 1 }) }));
  assert.ok(other.usage.prompt_tokens < a.usage.prompt_tokens);
});

test('chat content as a list of text parts equals the same text as a string', async () => {
  const asString = await ok(chat(server, { messages: [{ role: 'user', content: 'Hello there, fox' }], ...greedy({ max_tokens: 4 }) }));
  const asParts = await ok(chat(server, {
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello there, ' }, { type: 'text', text: 'fox' }] }],
    ...greedy({ max_tokens: 4 }),
  }));
  assert.equal(asParts.usage.prompt_tokens, asString.usage.prompt_tokens);
  assert.equal(asParts.choices[0].message.content, asString.choices[0].message.content);
});

test('echo prepends the prompt text', async () => {
  const plain = await ok(complete(server, { prompt: 'Hello world', ...greedy() }));
  const echoed = await ok(complete(server, { prompt: 'Hello world', echo: true, ...greedy() }));
  assert.equal(echoed.choices[0].text, 'Hello world' + plain.choices[0].text);
  assert.equal(echoed.usage.completion_tokens, 8);
  const ids = await ok(complete(server, { prompt: [15496, 995], echo: true, ...greedy() }));
  assert.ok(ids.choices[0].text.startsWith('Hello world'), `token-id prompt echoed as its text: ${JSON.stringify(ids.choices[0].text)}`);
  const streamed = await streamJSON(server, '/v1/completions', { model: MODEL, prompt: 'Hello world', echo: true, stream: true, ...greedy() });
  assert.equal(joinCompletionChunks(streamed.chunks).texts[0], echoed.choices[0].text, 'a streamed echo');
});

test('logit_bias +100 forces a token; -100 bans one', async () => {
  const forced = await ok(complete(server, { prompt: 'Anything at all', logit_bias: { 995: 100 }, logprobs: 1, ...greedy() }));
  assert.equal(forced.choices[0].text, ' world'.repeat(8));
  assert.deepEqual(forced.choices[0].logprobs.tokens, Array(8).fill(' world'));
  const chatForced = await ok(chat(server, { messages: [{ role: 'user', content: 'Hi' }], logit_bias: { 995: 100 }, ...greedy({ max_tokens: 4 }) }));
  assert.equal(chatForced.choices[0].message.content, ' world'.repeat(4));

  const free = await ok(complete(server, { prompt: 'Anything at all', logprobs: 1, ...greedy({ max_tokens: 1 }) }));
  const firstToken = free.choices[0].logprobs.tokens[0];
  const firstId = (await tokenize(server, { prompt: firstToken, add_special_tokens: false })).tokens;
  if (firstId.length === 1) {
    const banned = await ok(complete(server, {
      prompt: 'Anything at all', logit_bias: { [firstId[0]]: -100 }, logprobs: 1, ...greedy({ max_tokens: 1 }),
    }));
    assert.notEqual(banned.choices[0].logprobs.tokens[0], firstToken, `token ${firstId[0]} banned`);
  }
});

test('logprobs text_offset counts characters, not UTF-8 bytes', async () => {
  // Token 960 is "\u2014" (an em dash: one character, three UTF-8 bytes).
  const forced = await ok(complete(server, { prompt: 'Hi', logit_bias: { 960: 100 }, logprobs: 1, ...greedy({ max_tokens: 4 }) }));
  const [c] = forced.choices;
  assert.equal(c.text, '\u2014'.repeat(4));
  assert.deepEqual(c.logprobs.tokens, Array(4).fill('\u2014'));
  assert.deepEqual(c.logprobs.text_offset, [0, 1, 2, 3], `text_offset ${JSON.stringify(c.logprobs.text_offset)} for ${JSON.stringify(c.text)}`);
  const streamed = await streamJSON(server, '/v1/completions', {
    model: MODEL, prompt: 'Hi', logit_bias: { 960: 100 }, logprobs: 1, stream: true, ...greedy({ max_tokens: 4 }),
  });
  const offsets = streamed.chunks.flatMap((ch) => ch.choices.flatMap((x) => x.logprobs?.text_offset ?? []));
  assert.deepEqual(offsets, [0, 1, 2, 3], 'streamed text_offset');
});

test('stop_token_ids and min_tokens', async () => {
  // Forced " world" (995) at every step; stopping on it ends at once.
  const stopped = await ok(complete(server, {
    prompt: 'Anything', logit_bias: { 995: 100 }, stop_token_ids: [995], ...greedy(),
  }));
  const [c] = stopped.choices;
  assert.equal(c.finish_reason, 'stop');
  assert.equal(c.stop_reason, 995);
  assert.equal(stopped.usage.completion_tokens, 1);
  assert.equal(c.text, '', 'the stop token is not part of the text');
  // min_tokens holds off the stop token for 3 tokens.
  const held = await ok(complete(server, {
    prompt: 'Anything', logit_bias: { 995: 100 }, stop_token_ids: [995], min_tokens: 3, logprobs: 1, ...greedy(),
  }));
  assert.equal(held.choices[0].finish_reason, 'stop');
  assert.equal(held.usage.completion_tokens, 4);
  assert.ok(!held.choices[0].logprobs.tokens.slice(0, 3).includes(' world'));
  // EOS ends generation unless ignore_eos; min_tokens holds it off too.
  const eos = await ok(complete(server, { prompt: 'Anything', logit_bias: { [EOS]: 100 }, max_tokens: 8, temperature: 0 }));
  assert.equal(eos.choices[0].finish_reason, 'stop');
  assert.equal(eos.usage.completion_tokens, 1);
  assert.equal(eos.choices[0].text, '');
  const eosMin = await ok(complete(server, { prompt: 'Anything', logit_bias: { [EOS]: 100 }, max_tokens: 8, min_tokens: 5, temperature: 0 }));
  assert.equal(eosMin.usage.completion_tokens, 6);
  const eosIgnored = await ok(complete(server, { prompt: 'Anything', logit_bias: { [EOS]: 100 }, max_tokens: 5, temperature: 0, ignore_eos: true }));
  assert.equal(eosIgnored.choices[0].finish_reason, 'length');
  assert.equal(eosIgnored.usage.completion_tokens, 5);
});

test('stop strings with and without include_stop_str_in_output', async () => {
  const body = { prompt: 'Anything', logit_bias: { 995: 100 }, ...greedy() };
  // The text would be " world world world ..."; stop at "ld w".
  const cut = await ok(complete(server, { ...body, stop: 'ld w' }));
  assert.equal(cut.choices[0].text, ' wor');
  assert.equal(cut.choices[0].finish_reason, 'stop');
  assert.equal(cut.choices[0].stop_reason, 'ld w');
  const kept = await ok(complete(server, { ...body, stop: ['ld w'], include_stop_str_in_output: true }));
  assert.equal(kept.choices[0].text, ' world w');
  assert.equal(kept.choices[0].finish_reason, 'stop');
  const streamedCut = await streamJSON(server, '/v1/completions', { model: MODEL, ...body, stop: 'ld w', stream: true });
  assert.equal(joinCompletionChunks(streamedCut.chunks).texts[0], ' wor');
  const streamedKept = await streamJSON(server, '/v1/completions', { model: MODEL, ...body, stop: 'ld w', include_stop_str_in_output: true, stream: true });
  assert.equal(joinCompletionChunks(streamedKept.chunks).texts[0], ' world w');
  // The earliest of several stop strings wins.
  const earliest = await ok(complete(server, { ...body, stop: ['world world world', 'rld'] }));
  assert.equal(earliest.choices[0].text, ' wo');
  assert.equal(earliest.choices[0].stop_reason, 'rld');
  const chatCut = await ok(chat(server, { messages: [{ role: 'user', content: 'Hi' }], ...body, prompt: undefined, stop: 'ld w' }));
  assert.equal(chatCut.choices[0].message.content, ' wor');
});

test('a list of prompts: choices indexed by prompt, each as when sent alone', async () => {
  const prompts = ['The cat', 'Once upon a time there', 'Numbers: 1, 2,'];
  const alone = [];
  for (const p of prompts) alone.push((await ok(complete(server, { prompt: p, ...greedy() }))).choices[0].text);
  const all = await ok(complete(server, { prompt: prompts, ...greedy() }));
  assert.equal(all.choices.length, 3);
  const byIndex = [...all.choices].sort((a, b) => a.index - b.index);
  assert.deepEqual(byIndex.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(byIndex.map((c) => c.text), alone);
  let promptTokens = 0;
  for (const p of prompts) promptTokens += (await tokenize(server, { prompt: p })).count;
  assert.equal(all.usage.prompt_tokens, promptTokens);
  assert.equal(all.usage.completion_tokens, 24);

  // n=2 with a seed: index = prompt_index * n + i; each prompt's pair as when sent alone.
  const seeded = { temperature: 1, seed: 99, n: 2, max_tokens: 6, ignore_eos: true };
  const pairs = [];
  for (const p of prompts) {
    const r = await ok(complete(server, { prompt: p, ...seeded }));
    pairs.push([...r.choices].sort((a, b) => a.index - b.index).map((c) => c.text));
  }
  const multi = await ok(complete(server, { prompt: prompts, ...seeded }));
  assert.equal(multi.choices.length, 6);
  const texts = [...multi.choices].sort((a, b) => a.index - b.index);
  assert.deepEqual(texts.map((c) => c.index), [0, 1, 2, 3, 4, 5]);
  for (let p = 0; p < 3; p++) {
    assert.deepEqual([texts[2 * p].text, texts[2 * p + 1].text], pairs[p], `prompt ${p}`);
  }
  const streamed = await streamJSON(server, '/v1/completions', { model: MODEL, prompt: prompts, ...seeded, stream: true });
  assert.deepEqual(joinCompletionChunks(streamed.chunks).texts, texts.map((c) => c.text));
});

test('token-id prompts are taken as given', async () => {
  const ids = await ok(complete(server, { prompt: [15496, 995], ...greedy() }));
  assert.equal(ids.usage.prompt_tokens, 2);
  const withBos = await ok(complete(server, { prompt: [EOS, 15496, 995], ...greedy() }));
  const text = await ok(complete(server, { prompt: 'Hello world', ...greedy() }));
  assert.equal(text.usage.prompt_tokens, 3, 'a text prompt gets a BOS token');
  assert.equal(withBos.choices[0].text, text.choices[0].text, 'BOS + ids = the text prompt');
  const lists = await ok(complete(server, { prompt: [[15496, 995], [EOS, 15496, 995]], ...greedy() }));
  assert.equal(lists.usage.prompt_tokens, 5);
  const sorted = [...lists.choices].sort((a, b) => a.index - b.index);
  assert.equal(sorted[0].text, ids.choices[0].text);
  assert.equal(sorted[1].text, text.choices[0].text);
  const single = await ok(complete(server, { prompt: [464], ...greedy({ max_tokens: 2 }) }));
  assert.equal(single.usage.prompt_tokens, 1);
});

test('presence and frequency penalties count the generated tokens', async () => {
  // The random model's logits lie within about 1.5 of each other, so a +10
  // bias on " world" (995) wins every step unless a penalty eats it up.
  const body = { prompt: 'Penalties', logit_bias: { 995: 10 }, logprobs: 1, ...greedy() };
  const plain = await ok(complete(server, body));
  assert.deepEqual(plain.choices[0].logprobs.tokens, Array(8).fill(' world'));
  // presence_penalty 2: the bias stays 8 ahead after the first occurrence.
  const presence = await ok(complete(server, { ...body, presence_penalty: 2 }));
  assert.deepEqual(presence.choices[0].logprobs.tokens, Array(8).fill(' world'));
  // frequency_penalty 2: 10, 8, 6, 4, 2, 0... so " world" wins at least the
  // first 3 steps and at most the first 6.
  const frequency = await ok(complete(server, { ...body, frequency_penalty: 2 }));
  const toks = frequency.choices[0].logprobs.tokens;
  assert.deepEqual(toks.slice(0, 3), Array(3).fill(' world'), JSON.stringify(toks));
  const count = toks.filter((t) => t === ' world').length;
  assert.ok(count <= 6, `frequency_penalty 2 let " world" win ${count} of 8 steps: ${JSON.stringify(toks)}`);
});

test('sampling parameters are accepted and seeds reproduce', async () => {
  const body = {
    prompt: 'Sampling with everything', max_tokens: 12, temperature: 0.9, top_p: 0.9, top_k: 50, min_p: 0.01,
    presence_penalty: 0.5, frequency_penalty: 0.3, repetition_penalty: 1.1, seed: 5, ignore_eos: true,
  };
  const a = await ok(complete(server, body));
  const b = await ok(complete(server, body));
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.equal(a.usage.completion_tokens, 12);
  // top_k 1 is greedy.
  const k1 = await ok(complete(server, { prompt: 'Sampling with everything', max_tokens: 8, temperature: 1, top_k: 1, seed: 1, ignore_eos: true }));
  const g = await ok(complete(server, { prompt: 'Sampling with everything', ...greedy() }));
  assert.equal(k1.choices[0].text, g.choices[0].text);
});

test('an unreadable --chat-template makes serve exit non-zero naming the file', async () => {
  const missing = path.join(os.tmpdir(), `foxserve-no-such-template-${process.pid}.jinja`);
  fs.rmSync(missing, { force: true });
  await assert.rejects(startServer(['--chat-template', missing], { timeoutMs: 30000 }), (err) => {
    assert.ok(err.exitCode !== null && err.exitCode !== undefined && err.exitCode !== 0,
      `exit code ${err.exitCode}: ${err.message}`);
    assert.ok(err.stderr.includes(missing), `stderr does not name ${missing}:\n${err.stderr}`);
    return true;
  });
});
