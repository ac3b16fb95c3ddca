#!/usr/bin/env node
// A command-line gRPC client for foxserve.v1.Foxserve/Generate: streams the
// generated text to stdout and prints the final message (finish reason and
// usage) to stderr.
//
//   node scripts/grpc_generate.mjs [--target 127.0.0.1:50051] [--api-key KEY]
//       [--max-tokens 24] [--temperature 0] "prompt text"
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    target: { type: 'string', default: '127.0.0.1:50051' },
    'api-key': { type: 'string', default: process.env.FOXSERVE_API_KEY ?? '' },
    'max-tokens': { type: 'string', default: '24' },
    temperature: { type: 'string', default: '0' },
  },
});
if (positionals.length !== 1) {
  console.error('usage: node scripts/grpc_generate.mjs [--target HOST:PORT] "prompt"');
  process.exit(2);
}

const definition = protoLoader.loadSync(path.join(root, 'proto/foxserve/v1/foxserve.proto'), {
  keepCase: true, longs: Number, defaults: true, oneofs: true,
});
const { Foxserve } = grpc.loadPackageDefinition(definition).foxserve.v1;
const client = new Foxserve(values.target, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
if (values['api-key']) metadata.set('authorization', `Bearer ${values['api-key']}`);

const call = client.Generate({
  text: positionals[0],
  sampling: { max_tokens: Number(values['max-tokens']), temperature: Number(values.temperature) },
}, metadata);
call.on('data', (response) => {
  if (response.chunk) process.stdout.write(response.chunk.text);
  if (response.final) process.stderr.write(`\n${JSON.stringify(response.final)}\n`);
});
call.on('error', (error) => {
  console.error(`grpc_generate: ${error.code} ${error.details}`);
  process.exitCode = 1;
});
call.on('end', () => client.close());
