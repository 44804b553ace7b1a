// Scratch: the LPAE translate against a bare 4-level walk over the same frames,
// to see what the format's own logic costs. Run: npx tsx bench/smmuv3-walkref.ts
import { ArmLpaePageTable, FrameAllocator, newTranslation, PhysicalMemory } from '../src/index.js';

const memory = new PhysicalMemory();
const allocator = new FrameAllocator(memory);
const table = new ArmLpaePageTable({ stage: 1, allocator });
const N = 1 << 18;
for (let i = 0; i < N; i++) table.map(i * 4096, 0x100000000 + i * 4096, 4096, 3);
const rootPfn = table.root / 4096;
function bare(iova: number): number {
  let pfn = rootPfn;
  for (let l = 0; l < 4; l++) {
    const shift = 2 ** (39 - 9 * l);
    const i = Math.floor(iova / shift) & 511;
    const f = allocator.readFrame(pfn) as Uint32Array;
    const lo = f[i << 1] as number;
    const hi = f[(i << 1) + 1] as number;
    if ((lo & 1) === 0) return -1;
    pfn = (hi & 0xffff) * 1048576 + (lo >>> 12);
  }
  return pfn * 4096 + (iova % 4096);
}
const idx = new Float64Array(1 << 20);
let seed = 7;
for (let i = 0; i < idx.length; i++) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  idx[i] = (seed % N) * 4096 + 0x10;
}
const out = newTranslation();
for (let r = 0; r < 4; r++) {
  let sink = 0;
  let t0 = process.hrtime.bigint();
  for (let k = 0; k < idx.length; k++) sink += bare(idx[k] as number);
  const a = Number(process.hrtime.bigint() - t0) / idx.length;
  t0 = process.hrtime.bigint();
  for (let k = 0; k < idx.length; k++) sink += table.translate(idx[k] as number, 1, out).pa;
  const b = Number(process.hrtime.bigint() - t0) / idx.length;
  console.log(
    `bare walk ${a.toFixed(1)} ns, translate ${b.toFixed(1)} ns, ratio ${(b / a).toFixed(2)}`,
    sink > 0,
  );
}
