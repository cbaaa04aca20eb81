// Builds the demo web app from src/ into dist/ (index.html, app.js, app.css).
// The client library is bundled from its source (../clients/js/src), and
// socket.io-client always from this folder's node_modules, so the output
// depends only on files pinned here: `npm run check` rebuilds into a temporary
// folder and fails when the committed dist/ differs.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "ecb-web-")) : join(here, "dist");

// Resolve socket.io-client (and so its own dependencies) from web/node_modules
// whatever file imports it.
const pinDeps = {
  name: "pin-deps",
  setup(b) {
    b.onResolve({ filter: /^socket\.io-client$/ }, (args) => {
      if (args.pluginData?.pinned) return undefined;
      return b.resolve(args.path, { resolveDir: here, kind: args.kind, pluginData: { pinned: true } });
    });
  },
};

async function run() {
  if (!check) rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const common = { bundle: true, minify: true, target: ["es2022"], logLevel: "warning", legalComments: "eof", charset: "utf8" };
  await build({
    ...common,
    entryPoints: [join(here, "src/app.ts")],
    outfile: join(out, "app.js"),
    format: "esm",
    platform: "browser",
    alias: { "@ecb/client": join(here, "../clients/js/src/index.ts") },
    plugins: [pinDeps],
  });
  await build({ ...common, entryPoints: [join(here, "src/app.css")], outfile: join(out, "app.css") });
  copyFileSync(join(here, "src/index.html"), join(out, "index.html"));
}

await run();
if (check) {
  const committed = join(here, "dist");
  const names = new Set([...readdirSync(out), ...readdirSync(committed)]);
  const stale = [...names].filter((n) => {
    try {
      return !readFileSync(join(out, n)).equals(readFileSync(join(committed, n)));
    } catch {
      return true;
    }
  });
  rmSync(out, { recursive: true, force: true });
  if (stale.length) {
    console.error(`web/dist is stale (${stale.join(", ")}): run \`npm run build\` in web/ and commit web/dist.`);
    process.exit(1);
  }
  console.log("web/dist is up to date.");
}
