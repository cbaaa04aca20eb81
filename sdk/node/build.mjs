// Builds dist/: ESM (index.js) and CommonJS (index.cjs) with esbuild, and the
// .d.ts types with tsc (which also type-checks the sources), as clients/js does.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
rmSync("dist", { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.json"], { stdio: "inherit" });
const common = {
  entryPoints: ["src/index.ts"],
  bundle: true,
  packages: "external", // jose stays a dependency
  platform: "node",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
};
await build({ ...common, format: "esm", outfile: "dist/index.js" });
await build({ ...common, format: "cjs", outfile: "dist/index.cjs" });
