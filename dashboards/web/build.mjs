// Build the web UI into ../runstream_dashboards/static/: app.js and app.css (esbuild bundles
// src/main.js with its CSS, uPlot's included), index.html (copied), and the chunks that load only
// when asked (`import()`: the Visdom view's plotly.js, about 4.7 MB, stays out of app.js). The
// chunks sit beside app.js (no subfolder: the Python package ships static/*).
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
  format: 'esm', // ES modules: what lets esbuild split dynamic imports into chunks
  splitting: true,
  chunkNames: '[name]-[hash]',
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
