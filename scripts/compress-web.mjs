// Writes a brotli (.br) and a gzip (.gz) copy beside every compressible file of the built web app's
// hashed assets (vidscene/web/dist/assets), so the server sends them without compressing per request.
// Uses only Node's own zlib: nothing to install.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const dir = process.argv[2];
const COMPRESSIBLE = /\.(js|mjs|css|html|svg|json|wasm|map)$/;
let before = 0;
let afterBr = 0;
for (const name of readdirSync(dir)) {
  const path = join(dir, name);
  if (!COMPRESSIBLE.test(name) || !statSync(path).isFile()) continue;
  const data = readFileSync(path);
  const br = brotliCompressSync(data, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  });
  writeFileSync(`${path}.br`, br);
  writeFileSync(`${path}.gz`, gzipSync(data, { level: 9 }));
  before += data.length;
  afterBr += br.length;
}
console.log(`precompressed web assets: ${before} bytes -> ${afterBr} bytes with brotli`);
