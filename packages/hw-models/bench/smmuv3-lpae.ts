// Scratch timing of the Arm LPAE format against the hw-models targets (not a test).
// Run: npx tsx bench/smmuv3-lpae.ts
import {
  ArmLpaePageTable,
  FrameAllocator,
  IOMMU_READ,
  IOMMU_WRITE,
  newTranslation,
  PhysicalMemory,
} from '../src/index.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const PAGES = 1 << 20;

function fresh(stage: 1 | 2 = 1, pageSizes?: number[]) {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(memory);
  const table = new ArmLpaePageTable({
    stage,
    allocator,
    ...(pageSizes === undefined ? {} : { pageSizes }),
  });
  return { memory, allocator, table };
}

function time(label: string, per: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(
    `${label.padEnd(44)} ${(ns / per).toFixed(1).padStart(8)} ns/op  (${(ns / 1e6).toFixed(1)} ms)`,
  );
  return ns / per;
}

// A trivial reference loop (index an array of frames) in the same run, so the
// figures can be read relative to how fast this machine is right now.
function calibrate(): number {
  const frames: Uint32Array[] = [];
  for (let i = 0; i < 64; i++) frames.push(new Uint32Array(1024));
  let sink = 0;
  const n = 1 << 22;
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < n; k++) sink += (frames[k & 63] as Uint32Array)[k & 1023] as number;
  const ns = Number(process.hrtime.bigint() - t0) / n;
  if (sink === 1) console.log(sink);
  return ns;
}

for (let round = 0; round < 3; round++) {
  console.log(`-- round ${round}: reference frame-index loop ${calibrate().toFixed(2)} ns/op`);
  {
    const { table, allocator } = fresh();
    time('map 1M x 4K separate calls', PAGES, () => {
      for (let i = 0; i < PAGES; i++) table.map(i * 4096, 0x100000000 + i * 4096, 4096, RW);
    });
    console.log(
      `   table memory for 4 GiB of 4K pages: ${(allocator.bytesInUse / 2 ** 20).toFixed(2)} MiB`,
    );
    const out = newTranslation();
    const idx = new Float64Array(PAGES);
    let seed = 12345;
    for (let i = 0; i < PAGES; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      idx[i] = (seed % PAGES) * 4096 + 0x123;
    }
    let sink = 0;
    time('random translate (no TLB)', PAGES, () => {
      for (let i = 0; i < PAGES; i++) sink += table.translate(idx[i] as number, 1, out).pa;
    });
    time('unmap 1M x 4K separate calls', PAGES, () => {
      for (let i = 0; i < PAGES; i++) table.unmap(i * 4096, 4096);
    });
    if (sink === 42) console.log(sink);
    console.log(`   frames after unmap: ${table.tableFrames}`);
  }
  {
    const { table } = fresh(1, [4096]);
    time('map one 4 GiB call, 4K leaves', PAGES, () => {
      table.map(0, 0x100000000, PAGES * 4096, RW);
    });
    time('unmap one 4 GiB call', PAGES, () => {
      table.unmap(0, PAGES * 4096);
    });
  }
  {
    const { table } = fresh();
    time('map 1 TiB with 1G pages (total ms below)', 1, () => {
      table.map(0, 0, 2 ** 40, RW);
    });
  }
}
