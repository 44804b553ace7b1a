// Scratch timing of the VT-d second-stage and x86-64 tables against the
// targets in the brief (not a test). Run: npx tsx bench/vtd-pagetable.ts
import {
  ACCESS_READ,
  FrameAllocator,
  IOMMU_READ,
  IOMMU_WRITE,
  newTranslation,
  type PageTable,
  PhysicalMemory,
  VtdSecondStagePageTable,
  X86PageTable,
} from '../src/index.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const N = 1 << 20;
const K4 = 4096;

function make(kind: string, sizes: number[]): { t: PageTable; a: FrameAllocator } {
  const a = new FrameAllocator(new PhysicalMemory(), { base: 2 ** 40, size: 2 ** 38 });
  const t =
    kind === 'vtd-ss'
      ? new VtdSecondStagePageTable({ allocator: a, pageSizes: sizes })
      : new X86PageTable({ allocator: a, pageSizes: sizes });
  return { t, a };
}

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

// Reference: the least a 4-level walk can cost here, over the same number of
// 4 KiB leaf tables held as separate typed arrays, with the same random indices.
function reference(idx: Float64Array): number {
  const tables: Uint32Array[] = [];
  const leafTables = N / 512;
  for (let i = 0; i < leafTables + 3; i++) tables.push(new Uint32Array(1024));
  (tables[0] as Uint32Array)[0] = (1 << 12) | 3;
  (tables[1] as Uint32Array)[0] = (2 << 12) | 3;
  for (let i = 0; i < leafTables; i++) (tables[2] as Uint32Array)[2 * i] = ((3 + i) << 12) | 3;
  for (let t = 3; t < leafTables + 3; t++) {
    for (let i = 0; i < 512; i++) (tables[t] as Uint32Array)[2 * i] = (i << 12) | 3;
  }
  let sink = 0;
  const ns = time(() => {
    for (let k = 0; k < N; k++) {
      const iova = idx[k] as number;
      let pfn = 0;
      for (let level = 4; level >= 1; level--) {
        const shift = 3 + 9 * level;
        const i = shift >= 32 ? 0 : (iova >>> shift) & 511;
        pfn = ((tables[pfn] as Uint32Array)[i << 1] as number) >>> 12;
      }
      sink += pfn;
    }
  });
  return sink >= 0 ? ns / N : 0;
}

for (const kind of ['vtd-ss', 'x86-64']) {
  for (let round = 0; round < 2; round++) {
    const r: Record<string, string> = {};
    {
      const { t } = make(kind, [K4]);
      const ns = time(() => {
        for (let i = 0; i < N; i++) t.map(i * K4, i * K4 + 2 ** 33, K4, RW);
      });
      r.map4k_separate_ns = (ns / N).toFixed(1);
      const out = newTranslation();
      const idx = new Float64Array(N);
      for (let i = 0; i < N; i++) idx[i] = Math.floor(Math.random() * N) * K4 + 0x10;
      const ns2 = time(() => {
        for (let i = 0; i < N; i++) t.translate(idx[i] as number, ACCESS_READ, out);
      });
      r.translate_random_ns = (ns2 / N).toFixed(1);
      r.translate_reference_ns = reference(idx).toFixed(1);
      const ns3 = time(() => {
        for (let i = 0; i < N; i++) t.unmap(i * K4, K4);
      });
      r.unmap4k_separate_ns = (ns3 / N).toFixed(1);
    }
    {
      const { t, a } = make(kind, [K4]);
      const ns = time(() => t.map(0, 2 ** 33, N * K4, RW));
      r.map4k_big_ns = (ns / N).toFixed(1);
      r.table_mib_4g = ((a.bytesInUse / 2 ** 20) * (2 ** 32 / (N * K4))).toFixed(2);
      const ns3 = time(() => t.unmap(0, N * K4));
      r.unmap4k_big_ns = (ns3 / N).toFixed(2);
    }
    {
      const { t } = make(kind, [K4, 2 ** 21, 2 ** 30]);
      const ns = time(() => t.map(0, 0, 2 ** 40, RW));
      r.map_1tib_1g_ms = (ns / 1e6).toFixed(2);
    }
    if (round === 1) console.log(kind, r);
  }
}
