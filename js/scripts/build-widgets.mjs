// Bundle every js/widgets/*.ts entry into an anywidget ESM module in wanllm_jupyter/static/.
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';

const entryPoints = readdirSync('js/widgets')
  .filter(name => name.endsWith('.ts') && !name.endsWith('.test.ts'))
  .map(name => `js/widgets/${name}`);

await build({
  entryPoints,
  bundle: true,
  format: 'esm',
  minify: true,
  target: 'es2022',
  outdir: 'wanllm_jupyter/static',
  define: { 'define.amd': 'false' },
  logLevel: 'info'
});
