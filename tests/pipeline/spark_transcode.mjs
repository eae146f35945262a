// Reads a splat file with the web app's own Spark build (the code the browser runs), then writes what Spark
// decoded back out with Spark's SPZ encoder, so that a Python test can compare it with what was written.
// Usage: node spark_transcode.mjs SPARK_MODULE INPUT OUTPUT; prints {"fileType": ...} on success.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [, , sparkModule, input, output] = process.argv;
const spark = await import(pathToFileURL(sparkModule).href);
const bytes = new Uint8Array(readFileSync(input));
const fileType = spark.getSplatFileType(bytes); // how SplatMesh sniffs a file given without a type

// Spark starts compiling its WebAssembly when imported and exports no promise for it: until that is done its
// decoders throw a TypeError, so retry those for a while.
const deadline = Date.now() + 20000;
for (;;) {
  try {
    const result = await spark.transcodeSpz({ inputs: [{ fileBytes: bytes, fileType }], maxSh: 3 });
    writeFileSync(output, result.fileBytes);
    break;
  } catch (error) {
    if (!(error instanceof TypeError) || Date.now() > deadline) throw error;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
console.log(JSON.stringify({ fileType }));
