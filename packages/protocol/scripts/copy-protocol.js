// Copies the TypeScript that `authbridge schema` generates (docs/schema/authbridge.ts)
// into src/protocol.ts before a build, so the types exist in one committed place only.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const from = path.join(__dirname, '..', '..', '..', 'docs', 'schema', 'authbridge.ts');
const to = path.join(__dirname, '..', 'src', 'protocol.ts');
if (!fs.existsSync(from)) {
  console.error(`copy-protocol: ${from} is missing; run \`authbridge schema --out docs/schema\` in the repository`);
  process.exit(1);
}
fs.copyFileSync(from, to);
