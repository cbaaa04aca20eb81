// Builds the demo web app from src/ into dist/ (index.html, app.js, app.css),
// and the client API's browsable page (GET /v1/docs) from src/apidocs/ into
// apidocs/: Swagger UI's prebuilt bundle and stylesheet copied from
// node_modules/swagger-ui-dist with its licence, beside our page and its
// initializer, so that ECB serves every asset itself (no CDN).
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
const root = check ? mkdtempSync(join(tmpdir(), "ecb-web-")) : here;
const out = join(root, "dist");
const docsOut = join(root, "apidocs");
// What the committed folders must equal, by folder name.
const folders = ["dist", "apidocs"];
const swaggerUI = join(here, "node_modules/swagger-ui-dist");
const swaggerFiles = {
  "swagger-ui-bundle.js": "swagger-ui-bundle.js",
  "swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
  "swagger-ui.css": "swagger-ui.css",
  LICENSE: "swagger-ui-LICENSE.txt",
  NOTICE: "swagger-ui-NOTICE.txt",
};

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
  for (const d of [out, docsOut]) {
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
  }
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
  for (const n of ["index.html", "docs.js", "docs.css"]) copyFileSync(join(here, "src/apidocs", n), join(docsOut, n));
  for (const [from, to] of Object.entries(swaggerFiles)) copyFileSync(join(swaggerUI, from), join(docsOut, to));
}

await run();
if (check) {
  const list = (d) => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  };
  const stale = folders.flatMap((f) => {
    const built = join(root, f);
    const committed = join(here, f);
    const names = new Set([...list(built), ...list(committed)]);
    return [...names]
      .filter((n) => {
        try {
          return !readFileSync(join(built, n)).equals(readFileSync(join(committed, n)));
        } catch {
          return true;
        }
      })
      .map((n) => `${f}/${n}`);
  });
  rmSync(root, { recursive: true, force: true });
  if (stale.length) {
    console.error(`web/dist or web/apidocs is stale (${stale.join(", ")}): run \`npm run build\` in web/ and commit both.`);
    process.exit(1);
  }
  console.log("web/dist and web/apidocs are up to date.");
}
