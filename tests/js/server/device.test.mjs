// `--device`: auto serves on the CPU where no CUDA device answers (and logs
// which device it chose and why, as one JSON line); cuda exits non-zero
// naming the reason. The model has no CUDA backend yet, so with a GPU auto
// still picks the CPU and cuda still refuses, saying so.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { complete, MODEL, startServer } from './harness.mjs';

function deviceLine(stderr) {
  const lines = stderr.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l));
  return lines.find((l) => l.msg === 'device chosen');
}

let cudaDevices = null;

test('--device auto serves on the CPU and logs why', async () => {
  const server = await startServer(['--device', 'auto']);
  try {
    const res = await complete(server, { model: MODEL, prompt: 'The forget gate', max_tokens: 2 });
    assert.equal(res.status, 200, res.text);
    const line = deviceLine(server.stderr);
    assert.ok(line, `no "device chosen" log line in:\n${server.stderr}`);
    assert.equal(line.level, 'info');
    assert.equal(line.device, 'cpu');
    assert.equal(line.requested, 'auto');
    assert.equal(typeof line.cuda_devices, 'number');
    cudaDevices = line.cuda_devices;
    assert.match(line.reason, cudaDevices === 0
      ? /no CUDA device answers|no CUDA support/
      : /CUDA model backend is not wired yet/);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('--device cpu logs that it was requested', async () => {
  const server = await startServer(['--device', 'cpu']);
  try {
    const line = deviceLine(server.stderr);
    assert.ok(line, server.stderr);
    assert.deepEqual([line.device, line.requested, line.reason], ['cpu', 'cpu', 'requested']);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('--device cuda exits non-zero naming the reason', async () => {
  const err = await startServer(['--device', 'cuda']).then(
    (server) => { server.stop(); assert.fail('--device cuda started serving'); },
    (e) => e);
  assert.notEqual(err.exitCode, 0, err.message);
  assert.notEqual(err.exitCode, null, err.message);
  assert.match(err.stderr, /--device cuda: /);
  if (cudaDevices === 0) {
    assert.match(err.stderr, /no CUDA device answers|no CUDA support/);
  } else if (cudaDevices !== null) {
    assert.match(err.stderr, /CUDA model backend is not wired yet/);
  }
  assert.doesNotMatch(err.stderr, /"event":"serving"/);
});
