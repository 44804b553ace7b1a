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
