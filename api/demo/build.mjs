// Bundles src/meeting.js with its pinned dependencies into one script (argument: the
// output file). Versions are pinned in package.json and package-lock.json and every
// option is fixed here, so a rebuild gives the same bytes: scripts/test-all.sh rebuilds
// into a temporary file and compares it with the committed dist/meeting.js.
import * as esbuild from 'esbuild';

const outfile = process.argv[2];
if (!outfile) {
  console.error('usage: node build.mjs <output file>');
  process.exit(2);
}
await esbuild.build({
  entryPoints: ['src/meeting.js'],
  outfile,
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome100', 'firefox100', 'safari15'],
  charset: 'utf8',
  legalComments: 'eof',
  sourcemap: false,
  logLevel: 'warning',
});
