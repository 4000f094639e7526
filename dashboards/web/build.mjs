// Build the web UI into ../runstream_dashboards/static/: app.js and app.css (esbuild bundles
// src/main.js with its CSS, uPlot's included) and index.html (copied).
//   node build.mjs            one minified build
//   node build.mjs --watch    rebuild on change (unminified, with source maps)

import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'runstream_dashboards', 'static');
const watch = process.argv.includes('--watch');

const copyHtml = {
  name: 'copy-index-html',
  setup(build) {
    build.onEnd(async (result) => {
      if (result.errors.length) return;
      await copyFile(join(here, 'src', 'index.html'), join(out, 'index.html'));
    });
  },
};

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

const options = {
  entryPoints: { app: join(here, 'src', 'main.js') },
  outdir: out,
  bundle: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: !watch,
  sourcemap: watch ? 'inline' : false,
  legalComments: 'eof',
  logLevel: 'info',
  plugins: [copyHtml],
};

if (watch) {
  const context = await esbuild.context(options);
  await context.watch();
} else {
  await esbuild.build(options);
}
