#!/usr/bin/env node
// `npm start`: runs the demo once the server exists (issue 7); until then it checks the installation end to end.
import { spawnSync } from 'node:child_process';

const check = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '-e',
    `
  const { versions } = await import('./src/index.ts');
  const v = versions();
  console.log('tokmeter ' + v.tokmeter + ', N-API ' + v.napi + ', ONNX Runtime ' + v.onnxruntime + ' (' + v.onnxruntimePath + ')');
`,
  ],
  { stdio: 'inherit' },
);
if (check.status !== 0) process.exit(check.status ?? 1);
console.log('The OpenAI-compatible demo server is not built yet (issue 7): the native addon and ONNX Runtime work.');
