#!/usr/bin/env node
// A `solc` for py-solc-x, backed by the npm package `solc` (solcjs, WebAssembly).
//
// No native solc exists in the registries we may use, and the `solcjs` CLI prints a line before its
// JSON, so py-solc-x cannot drive it. This script answers the two calls py-solc-x makes, the way the
// native binary does: `--version` (parsed with the regex `\d+\.\d+\.\d+...\+commit.\w+`) and
// `--standard-json` (Standard JSON on stdin, on stdout), ignoring --allow-paths/--base-path/--include-path. All sources must be given inline: imports
// resolve only among them, never from disk.
'use strict';

const solc = require('solc');

const args = process.argv.slice(2);

if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}

// Path options other drivers pass (crytic-compile for Slither, forge): sources are inline, so they do
// not apply; each takes one value.
const PATH_OPTIONS = new Set(['--allow-paths', '--base-path', '--include-path']);
const unknown = args.filter((a, i) => a !== '--standard-json' && a !== '-' && !PATH_OPTIONS.has(a) && !PATH_OPTIONS.has(args[i - 1]));
if (unknown.length > 0 || !args.includes('--standard-json')) {
  // The native binary's wording, which py-solc-x turns into UnknownOption.
  process.stderr.write(`unrecognised option '${unknown[0] || ''}' (this wrapper supports --version and --standard-json)\n`);
  process.exit(2);
}

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks).toString('utf8');
  const noImports = (path) => ({ error: `import ${path}: every source must be given in the Standard JSON input` });
  process.stdout.write(solc.compile(input, { import: noImports }));
});
