// Scratch timing of the AMD v1 table against the 4K-format targets (not a test).
// Run: npx tsx bench/amd-v1.ts (or bundle it with esbuild first: tsx's module wrappers add a
// getter call per imported binding and inflate the figures).
import { FrameAllocator, PhysicalMemory } from '../src/memory/index.js';
import { AmdV1PageTable } from '../src/pagetable/amd-v1.js';
import {
  IOMMU_READ,
  IOMMU_WRITE,
  newTranslation,
  type PageTable,
} from '../src/pagetable/format.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const N = 1 << 20;

function fresh(pageSizes?: number[]): { t: PageTable; a: FrameAllocator } {
  const a = new FrameAllocator(new PhysicalMemory());
  const t = new AmdV1PageTable(
    pageSizes === undefined ? { allocator: a } : { allocator: a, pageSizes },
  );
  return { t, a };
}

function time(label: string, per: number, f: () => void): void {
  f(); // warm
  const t0 = process.hrtime.bigint();
  f();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${label}: ${(ns / per).toFixed(1)} ns/unit, ${(ns / 1e6).toFixed(1)} ms total`);
}

let t: PageTable = fresh().t;
time('map 1M x 4K separate calls', N, () => {
  t = fresh().t;
  for (let i = 0; i < N; i++) t.map(i * 4096, i * 4096 + 2 ** 32, 4096, RW);
});
time('unmap 1M x 4K separate calls', N, () => {
  t = fresh().t;
  for (let i = 0; i < N; i++) t.map(i * 4096, i * 4096, 4096, RW);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) t.unmap(i * 4096, 4096);
  console.log(`  (unmap part ${(Number(process.hrtime.bigint() - t0) / N).toFixed(1)} ns/page)`);
});
time('map 4 GiB in one call, 4K leaves only', N, () => {
  t = fresh([4096]).t;
  t.map(0, 2 ** 32, 4 * 2 ** 30, RW);
});
{
  const { t: big, a } = fresh([4096]);
  big.map(0, 2 ** 32, 4 * 2 ** 30, RW);
  console.log(`table memory for 4 GiB of 4K pages: ${(a.bytesInUse / 2 ** 20).toFixed(2)} MiB`);
  const out = newTranslation();
  const addrs = new Float64Array(N);
  for (let i = 0; i < N; i++) addrs[i] = Math.floor(Math.random() * 2 ** 20) * 4096 + 123;
  let sum = 0;
  time('random translate (no TLB)', N, () => {
    for (let i = 0; i < N; i++) sum += big.translate(addrs[i] as number, 0, out).pa;
  });
  big.unmap(0, 4 * 2 ** 30);
  big.map(0, 2 ** 32, 4 * 2 ** 30, RW);
  const t0 = process.hrtime.bigint();
  big.unmap(0, 4 * 2 ** 30);
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`unmap 4 GiB in one call: ${(ns / N).toFixed(1)} ns/page`);
  if (sum === 0) console.log('');
}
time('map 1 TiB with 1 GiB pages', 1, () => {
  t = fresh([4096, 2 ** 21, 2 ** 30]).t;
  t.map(0, 0, 2 ** 40, RW);
});
