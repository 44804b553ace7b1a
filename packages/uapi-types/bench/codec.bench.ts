/**
 * `npm run bench`: ns per encode and per decode of iommu_ioas_map and
 * iommu_hwpt_alloc through the generated codecs, beside hand-written DataView
 * versions of the same structs measured in the same run. Prints a table and
 * writes bench/results.json.
 */
import { writeFileSync } from 'node:fs';
import { type iommu_hwpt_alloc, type iommu_ioas_map, structs } from '../src/index.js';

// ---- hand-written references ------------------------------------------------

/** The floor: a ready DataView handed in, constant offsets, no range checks at all. */
const handReadyView = {
  encodeMap(v: iommu_ioas_map, d: DataView): void {
    d.setUint32(0, v.size, true);
    d.setUint32(4, v.flags, true);
    d.setUint32(8, v.ioas_id, true);
    d.setUint32(12, v.__reserved, true);
    d.setBigUint64(16, v.user_va, true);
    d.setBigUint64(24, v.length, true);
    d.setBigUint64(32, v.iova, true);
  },
  decodeMap(d: DataView): iommu_ioas_map {
    return {
      size: d.getUint32(0, true),
      flags: d.getUint32(4, true),
      ioas_id: d.getUint32(8, true),
      __reserved: d.getUint32(12, true),
      user_va: d.getBigUint64(16, true),
      length: d.getBigUint64(24, true),
      iova: d.getBigUint64(32, true),
    };
  },
  encodeAlloc(v: iommu_hwpt_alloc, d: DataView): void {
    d.setUint32(0, v.size, true);
    d.setUint32(4, v.flags, true);
    d.setUint32(8, v.dev_id, true);
    d.setUint32(12, v.pt_id, true);
    d.setUint32(16, v.out_hwpt_id, true);
    d.setUint32(20, v.__reserved, true);
    d.setUint32(24, v.data_type, true);
    d.setUint32(28, v.data_len, true);
    d.setBigUint64(32, v.data_uptr, true);
    d.setUint32(40, v.fault_id, true);
    d.setUint32(44, v.__reserved2, true);
  },
  decodeAlloc(d: DataView): iommu_hwpt_alloc {
    return {
      size: d.getUint32(0, true),
      flags: d.getUint32(4, true),
      dev_id: d.getUint32(8, true),
      pt_id: d.getUint32(12, true),
      out_hwpt_id: d.getUint32(16, true),
      __reserved: d.getUint32(20, true),
      data_type: d.getUint32(24, true),
      data_len: d.getUint32(28, true),
      data_uptr: d.getBigUint64(32, true),
      fault_id: d.getUint32(40, true),
      __reserved2: d.getUint32(44, true),
    };
  },
};

const viewOf = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** What a person writes given a Uint8Array: the same code, with a DataView made per call. */
const handPerCall = {
  encodeMap: (v: iommu_ioas_map, b: Uint8Array) => handReadyView.encodeMap(v, viewOf(b)),
  decodeMap: (b: Uint8Array) => handReadyView.decodeMap(viewOf(b)),
  encodeAlloc: (v: iommu_hwpt_alloc, b: Uint8Array) => handReadyView.encodeAlloc(v, viewOf(b)),
  decodeAlloc: (b: Uint8Array) => handReadyView.decodeAlloc(viewOf(b)),
};

// ---- inputs -------------------------------------------------------------------

const MASK = 255;
const mapValues: iommu_ioas_map[] = Array.from({ length: MASK + 1 }, (_, i) => ({
  size: 40,
  flags: 6 | (i & 1),
  ioas_id: 1 + (i & 7),
  __reserved: 0,
  user_va: 0x7f1200000000n + BigInt(i) * 0x200000n,
  length: BigInt(1 + (i & 15)) << 21n,
  iova: 0x100000000n + BigInt(i) * 0x200000n,
}));
const allocValues: iommu_hwpt_alloc[] = Array.from({ length: MASK + 1 }, (_, i) => ({
  size: 48,
  flags: i & 3,
  dev_id: 3,
  pt_id: 1 + (i & 3),
  out_hwpt_id: 0,
  __reserved: 0,
  data_type: 0,
  data_len: 0,
  data_uptr: 0x7f3400000000n + BigInt(i) * 0x1000n,
  fault_id: 0,
  __reserved2: 0,
}));

// ---- timing -------------------------------------------------------------------

type Fn = (value: unknown, target: unknown) => unknown;

interface Case {
  readonly loop: (n: number) => unknown;
  readonly rounds: number[];
}

/**
 * One loop function per case, made by `new Function` so that V8 keeps
 * separate type feedback for each: the function under test is a constant
 * of its own loop, called monomorphically, as it would be in real use.
 */
function makeCase(fn: Fn, values: readonly unknown[], target: unknown): Case {
  const factory = new Function(
    'fn',
    'values',
    'target',
    'return function loop(n) { let sink; for (let i = 0; i < n; i++) sink = fn(values[i & 255], target); return sink; };',
  ) as (f: Fn, v: readonly unknown[], t: unknown) => (n: number) => unknown;
  const loop = factory(fn, values, target);
  loop(300_000); // warm up into optimized code
  return { loop, rounds: [] };
}

/**
 * Times all cases round-robin, so that a noisy moment of the machine hits
 * every case alike, and returns each case's median ns per call.
 */
function timeInterleaved(cases: Case[], rounds = 11, perRound = 400_000): number[] {
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      const t0 = process.hrtime.bigint();
      c.loop(perRound);
      c.rounds.push(Number(process.hrtime.bigint() - t0) / perRound);
    }
    process.stdout.write('.');
  }
  return cases.map((c) => {
    const sorted = [...c.rounds].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] as number;
  });
}

interface Row {
  struct: string;
  op: 'encode' | 'decode';
  ours: number;
  perCall: number;
  readyView: number;
}

const rows: Row[] = [];

function run(struct: 'iommu_ioas_map' | 'iommu_hwpt_alloc'): void {
  const isMap = struct === 'iommu_ioas_map';
  const codec = structs[struct] as unknown as {
    encode(v: unknown, b: Uint8Array): Uint8Array;
    decode(b: Uint8Array): unknown;
  };
  const values = (isMap ? mapValues : allocValues) as unknown[];
  const buf = new Uint8Array(64);
  const view = new DataView(buf.buffer);
  codec.encode(values[3], buf);
  const ignoreValue = (f: (t: never) => unknown): Fn =>
    ((_v: unknown, t: unknown) => f(t as never)) as Fn;
  process.stdout.write(`  ${struct} `);
  const medians = timeInterleaved([
    makeCase(codec.encode as Fn, values, buf),
    makeCase((isMap ? handPerCall.encodeMap : handPerCall.encodeAlloc) as Fn, values, buf),
    makeCase((isMap ? handReadyView.encodeMap : handReadyView.encodeAlloc) as Fn, values, view),
    makeCase(ignoreValue(codec.decode), values, buf),
    makeCase(ignoreValue(isMap ? handPerCall.decodeMap : handPerCall.decodeAlloc), values, buf),
    makeCase(
      ignoreValue(isMap ? handReadyView.decodeMap : handReadyView.decodeAlloc),
      values,
      view,
    ),
  ]);
  process.stdout.write(' done\n');
  const [oe, pe, ve, od, pd, vd] = medians as [number, number, number, number, number, number];
  rows.push({ struct, op: 'encode', ours: oe, perCall: pe, readyView: ve });
  rows.push({ struct, op: 'decode', ours: od, perCall: pd, readyView: vd });
}

console.log('uapi-types codec benchmark: ns per call, median of 11 interleaved rounds');
run('iommu_ioas_map');
run('iommu_hwpt_alloc');

const f = (n: number) => n.toFixed(1).padStart(8);
const r = (a: number, b: number) => `${(a / b).toFixed(2)}x`.padStart(8);
console.log('');
console.log(
  `${'struct'.padEnd(18)}${'op'.padEnd(9)}${'ours'.padStart(8)}${'hand/call'.padStart(11)}${'ratio'.padStart(8)}${'hand/view'.padStart(11)}${'ratio'.padStart(8)}`,
);
for (const row of rows) {
  console.log(
    `${row.struct.padEnd(18)}${row.op.padEnd(9)}${f(row.ours)}${f(row.perCall).padStart(11)}${r(row.ours, row.perCall)}${f(row.readyView).padStart(11)}${r(row.ours, row.readyView)}`,
  );
}

const results: Record<string, number> = {};
for (const struct of ['iommu_ioas_map', 'iommu_hwpt_alloc']) {
  const e = rows.find((x) => x.struct === struct && x.op === 'encode') as Row;
  const d = rows.find((x) => x.struct === struct && x.op === 'decode') as Row;
  const round = (n: number) => Math.round(n * 10) / 10;
  results[`${struct}_encode_ns`] = round(e.ours);
  results[`${struct}_decode_ns`] = round(d.ours);
  results[`${struct}_encode_decode_ns`] = round(e.ours + d.ours);
  results[`${struct}_ref_dataview_per_call_encode_decode_ns`] = round(e.perCall + d.perCall);
  results[`${struct}_ref_ready_dataview_encode_decode_ns`] = round(e.readyView + d.readyView);
  results[`${struct}_ratio_vs_ready_dataview`] =
    Math.round(((e.ours + d.ours) / (e.readyView + d.readyView)) * 100) / 100;
  console.log(
    `${struct}: encode+decode ${round(e.ours + d.ours)} ns (target < 100); ` +
      `${results[`${struct}_ratio_vs_ready_dataview`]}x the unchecked ready-DataView version (target <= 1.5x), ` +
      `${Math.round(((e.ours + d.ours) / (e.perCall + d.perCall)) * 100) / 100}x the DataView-per-call version`,
  );
}
writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
console.log('wrote bench/results.json');
