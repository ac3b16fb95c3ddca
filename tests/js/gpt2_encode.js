// Encodes texts with the reference GPT-2 encoder of the npm package
// gpt-3-encoder (its Encoder.js `encode`), for comparison in the C++ tests.
// usage: node gpt2_encode.js PACKAGE_DIR < texts.json > ids.json
// stdin: a JSON array of strings; stdout: a JSON array of arrays of ids.
'use strict';
const fs = require('fs');
const path = require('path');

const { encode } = require(path.resolve(process.argv[2], 'Encoder.js'));
const texts = JSON.parse(fs.readFileSync(0, 'utf8'));
// An id the reference cannot name (undefined) is written as -1.
process.stdout.write(JSON.stringify(
    texts.map((text) => encode(text).map((id) => (id === undefined ? -1 : id)))));
