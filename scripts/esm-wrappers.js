#!/usr/bin/env node
// Writes dist/*.mjs: ES module entry points that re-export the CommonJS build,
// so both `import` and `require` get the same module instance (one native
// binding, one set of classes for instanceof).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
for (const entry of ['index', 'testing']) {
  const cjs = path.join(dist, `${entry}.js`);
  if (!fs.existsSync(cjs)) continue;
  const names = Object.keys(require(cjs)).filter((n) => n !== 'default' && n !== '__esModule');
  const body =
    `import mod from './${entry}.js';\n` +
    `export const { ${names.join(', ')} } = mod;\n` +
    `export default mod;\n`;
  fs.writeFileSync(path.join(dist, `${entry}.mjs`), body);
}
