// Splits texts into words with the pre-tokenizer pattern of the npm package
// gpt-3-encoder, for checking the hand-written matcher in the C++ tests. The
// package does not export its pattern, so this reads it from Encoder.js.
// usage: node gpt2_split.js PACKAGE_DIR < texts.json > words.json
// stdin: a JSON array of strings; stdout: a JSON array of arrays of strings.
'use strict';
const fs = require('fs');
const path = require('path');

const source = fs.readFileSync(path.resolve(process.argv[2], 'Encoder.js'), 'utf8');
const found = source.match(/^const pat = \/(.*)\/([a-z]*)$/m);
if (!found) throw new Error('no "const pat = /.../" line in Encoder.js');
const pattern = new RegExp(found[1], found[2]);

const texts = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(
    JSON.stringify(texts.map((text) => Array.from(text.matchAll(pattern), (m) => m[0]))));
