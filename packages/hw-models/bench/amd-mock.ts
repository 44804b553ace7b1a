// Scratch timing of the selftest mock table (not a test). Bundle and run:
// npx esbuild bench/amd-mock.ts --bundle --platform=node --format=esm --outfile=/tmp/m.mjs && node /tmp/m.mjs
import { FrameAllocator, PhysicalMemory } from '../src/memory/index.js';
import { newTranslation } from '../src/pagetable/format.js';
import { MockPageTable } from '../src/pagetable/mock.js';

const N = 1 << 20;
const SLOT = 2048;

function time(label: string, units: number, f: () => void): void {
  f();
  const t0 = process.hrtime.bigint();
  f();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${label}: ${(ns / units).toFixed(1)} ns/unit, ${(ns / 1e6).toFixed(1)} ms`);
}

let t = new MockPageTable({ allocator: new FrameAllocator(new PhysicalMemory()) });
time('map 1M x 2K separate calls', N, () => {
  t = new MockPageTable({ allocator: new FrameAllocator(new PhysicalMemory()) });
  for (let i = 0; i < N; i++) t.map(16 * 2 ** 20 + i * SLOT, i * SLOT, SLOT, 3);
});
time('map 2 GiB in one call', N, () => {
  t = new MockPageTable({ allocator: new FrameAllocator(new PhysicalMemory()) });
  t.map(0, 2 ** 32, 2 ** 31, 3);
});
const out = newTranslation();
let sum = 0;
time('random translate', N, () => {
  for (let i = 0; i < N; i++) sum += t.translate(Math.floor(Math.random() * 2 ** 31), 0, out).pa;
});
time('unmap 2 GiB in one call', N, () => {
  t.unmap(0, 2 ** 31);
  t.map(0, 2 ** 32, 2 ** 31, 3);
});
if (sum === 0) console.log('');
