// `npm start`: builds the iommufd-sim program and the packages it uses
// (through turbo, quietly unless the build fails), then runs it: the default
// scenario, or whatever follows `npm start --` (`npm start -- run nested-vsmmu`,
// `npm start -- trace --format json`, `npm start -- --help`).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = spawnSync(
  'npx',
  ['turbo', 'run', 'build', '--filter=@iommufd-sim/cli...', '--output-logs=errors-only'],
  { cwd: root, encoding: 'utf8', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } },
);
if (build.status !== 0) {
  process.stdout.write(build.stdout ?? '');
  process.stderr.write(build.stderr ?? '');
  console.error('npm start: the build failed (output above)');
  process.exit(build.status ?? 1);
}
const cli = await import(pathToFileURL(join(root, 'apps/cli/dist/index.js')).href);
process.exitCode = cli.main(process.argv.slice(2), cli.processIo());
