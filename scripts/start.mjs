// `npm start`: builds what the main job needs (through turbo, quietly unless
// it fails) and runs it. Until the iommufd-sim program exists, the main job is
// the uAPI summary of @iommufd-sim/uapi-types and the tour of the hardware
// models of @iommufd-sim/hw-models.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = spawnSync(
  'npx',
  [
    'turbo',
    'run',
    'build',
    '--filter=@iommufd-sim/uapi-types',
    '--filter=@iommufd-sim/hw-models',
    '--output-logs=errors-only',
  ],
  { cwd: root, encoding: 'utf8', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } },
);
if (build.status !== 0) {
  process.stdout.write(build.stdout ?? '');
  process.stderr.write(build.stderr ?? '');
  console.error('npm start: the build failed (output above)');
  process.exit(build.status ?? 1);
}
await import(join(root, 'packages/uapi-types/dist/bin/uapi-summary.js'));
console.log('');
await import(join(root, 'packages/hw-models/dist/bin/hardware-tour.js'));
