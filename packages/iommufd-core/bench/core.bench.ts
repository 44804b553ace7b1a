/**
 * `npm run bench`: iommufd-core figures through the syscall surface, each
 * beside the plain-JS reference of bench/reference-ioas.ts measured in the
 * same run (`ref_*` keys), so ratios survive a noisy machine. Prints a table
 * and writes bench/results.json (metric -> number).
 *
 * - ioctl_roundtrip_ns: IOMMU_DESTROY of an unknown id (dispatch, copy-in, lookup, errno);
 * - ioas_map/unmap_ns_per_page: one MAP of the whole mock aperture (2 GiB - 16 MiB)
 *   with a mock device attached, per 4 KiB page, pinning and mock page table included;
 * - vtd_map/unmap_4gib_ns_per_page: 4 GiB on a VT-d device (4 KiB leaves) through VFIO;
 * - auto_map_unmap_ops_s: 100k automatic 4 KiB maps, then their unmaps (no domain);
 * - bytes_per_area: heap per live area with 1M areas.
 *
 * Rounds alternate model and reference and keep the median; a first round
 * of each warms the JIT up and is not counted.
 */
import { writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  IOMMU_DESTROY,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  structs,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
} from '@iommufd-sim/uapi-types';
import { createHost, type Process } from '../src/index.js';
import { ReferenceIoas, referenceDestroy } from './reference-ioas.js';
import { check, median, time } from './timing.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PAGE = 4096;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
const MOCK_SPAN = 2 * GiB - 16 * MiB;
const VTD_SPAN = 4 * GiB;
const AUTO_OPS = 100_000;
const AREAS = 1_000_000;

/** A garbage collector: node --expose-gc, or one exposed at run time; undefined if neither works. */
function findGc(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g !== undefined) return g;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}
const gc = findGc();

/** Heap in use after collecting (or after letting the heap settle when there is no gc). */
async function heapUsed(): Promise<number> {
  if (gc !== undefined) {
    gc();
    gc();
  } else {
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage().heapUsed;
}

// ---- syscall helpers (prebuilt argument bytes keep encoding out of the timings) ----

function ioasAlloc(proc: Process, fd: number): number {
  const b = structs.iommu_ioas_alloc.encode({ size: 12 });
  check(proc.ioctl(fd, 0x3b81, b), 'IOAS_ALLOC', proc);
  return structs.iommu_ioas_alloc.decode(b).out_ioas_id;
}

function mapArg(ioas: number, va: bigint, length: bigint, iova?: bigint): Uint8Array {
  return structs.iommu_ioas_map.encode({
    size: 40,
    flags: iova === undefined ? RW : RW | IOMMU_IOAS_MAP_FIXED_IOVA,
    ioas_id: ioas,
    user_va: va,
    length,
    iova: iova ?? 0n,
  });
}

function unmapArg(ioas: number, iova: bigint, length: bigint): Uint8Array {
  return structs.iommu_ioas_unmap.encode({ size: 24, ioas_id: ioas, iova, length });
}

// ---- the measurements ------------------------------------------------------------

function ioctlRoundtrip(): { model: number; reference: number } {
  const N = 200_000;
  const host = createHost({ selftest: true });
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const arg = structs.iommu_destroy.encode({ size: 8, id: 12345 });
  const objects = new Map<number, object>([[1, {}]]);
  const m: number[] = [];
  const r: number[] = [];
  let sink = 0;
  for (let round = 0; round < ROUNDS + 1; round++) {
    m.push(
      time(() => {
        for (let i = 0; i < N; i++) sink += proc.ioctl(fd, IOMMU_DESTROY, arg);
      }) / N,
    );
    r.push(
      time(() => {
        for (let i = 0; i < N; i++) sink += referenceDestroy(objects, arg);
      }) / N,
    );
  }
  if (sink === 0.5) console.log(sink);
  proc.close(fd);
  // The first round warms up.
  return { model: median(m.slice(1)), reference: median(r.slice(1)) };
}

interface MapFigures {
  map: number;
  unmap: number;
}

/** One MAP of the mock aperture with a mock device attached, and its UNMAP. */
function mockMapRound(): MapFigures {
  const host = createHost({ selftest: true });
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const ioas = ioasAlloc(proc, fd);
  const md = structs.iommu_test_cmd.encode({ size: 72, op: IOMMU_TEST_OP_MOCK_DOMAIN, id: ioas });
  check(proc.ioctl(fd, IOMMU_TEST_CMD, md), 'MOCK_DOMAIN', proc);
  const buf = proc.mmap(MOCK_SPAN);
  const pages = MOCK_SPAN / PAGE;
  const map = mapArg(ioas, buf, BigInt(MOCK_SPAN), BigInt(16 * MiB));
  const unmap = unmapArg(ioas, BigInt(16 * MiB), BigInt(MOCK_SPAN));
  const figures = {
    map: time(() => check(proc.ioctl(fd, IOMMU_IOAS_MAP, map), 'MAP', proc)) / pages,
    unmap: time(() => check(proc.ioctl(fd, IOMMU_IOAS_UNMAP, unmap), 'UNMAP', proc)) / pages,
  };
  if (host.pinnedPages() !== 0) throw new Error('pages stayed pinned after the unmap');
  proc.close(fd);
  return figures;
}

/** 4 GiB mapped for a VT-d device (4 KiB leaves) bound and attached through its VFIO cdev. */
function vtdMapRound(): MapFigures {
  const host = createHost({
    iommus: [{ name: 'vtd0', model: 'vtd', pageSizes: [4096] }],
    devices: [{ name: '0000:00:02.0', iommu: 'vtd0' }],
  });
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const ioas = ioasAlloc(proc, fd);
  const vfio = proc.open('/dev/vfio/devices/vfio0');
  check(
    proc.ioctl(
      vfio,
      VFIO_DEVICE_BIND_IOMMUFD,
      structs.vfio_device_bind_iommufd.encode({ argsz: 24, iommufd: fd }),
    ),
    'BIND',
    proc,
  );
  check(
    proc.ioctl(
      vfio,
      VFIO_DEVICE_ATTACH_IOMMUFD_PT,
      structs.vfio_device_attach_iommufd_pt.encode({ argsz: 16, pt_id: ioas }),
    ),
    'ATTACH',
    proc,
  );
  const buf = proc.mmap(VTD_SPAN);
  const pages = VTD_SPAN / PAGE;
  // Above 4 GiB: clear of the MSI window below it.
  const map = mapArg(ioas, buf, BigInt(VTD_SPAN), BigInt(4 * GiB));
  const unmap = unmapArg(ioas, BigInt(4 * GiB), BigInt(VTD_SPAN));
  const figures = {
    map: time(() => check(proc.ioctl(fd, IOMMU_IOAS_MAP, map), 'MAP', proc)) / pages,
    unmap: time(() => check(proc.ioctl(fd, IOMMU_IOAS_UNMAP, unmap), 'UNMAP', proc)) / pages,
  };
  if (host.pinnedPages() !== 0) throw new Error('pages stayed pinned after the unmap');
  proc.close(vfio);
  proc.close(fd);
  return figures;
}

function referenceMapRound(span: number, ioPage: number, start: number, last: number): MapFigures {
  const ref = new ReferenceIoas(ioPage, true, start, last, (va) => va + 2 ** 40);
  const va = 2 ** 40;
  const pages = span / PAGE;
  return {
    map: time(() => check(ref.map(va, span, start), 'reference map')) / pages,
    unmap: time(() => check(ref.unmap(start, span), 'reference unmap')) / pages,
  };
}

/** 100k automatic 4 KiB maps then their unmaps, no domain: operations per second. */
function autoMapUnmapRound(): number {
  const host = createHost({ selftest: true });
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const ioas = ioasAlloc(proc, fd);
  const buf = proc.mmap(64 * PAGE);
  const maps = Array.from({ length: 64 }, (_, i) => mapArg(ioas, buf + BigInt(i * PAGE), 4096n));
  const iovas = new Array<bigint>(AUTO_OPS);
  const unmap = unmapArg(ioas, 0n, 4096n);
  const view = new DataView(unmap.buffer);
  const ns = time(() => {
    for (let i = 0; i < AUTO_OPS; i++) {
      const arg = maps[i % 64] as Uint8Array;
      check(proc.ioctl(fd, IOMMU_IOAS_MAP, arg), 'auto MAP', proc);
      iovas[i] = new DataView(arg.buffer).getBigUint64(32, true);
    }
    for (let i = 0; i < AUTO_OPS; i++) {
      view.setBigUint64(8, iovas[i] as bigint, true);
      view.setBigUint64(16, 4096n, true);
      check(proc.ioctl(fd, IOMMU_IOAS_UNMAP, unmap), 'UNMAP', proc);
    }
  });
  proc.close(fd);
  return (2 * AUTO_OPS) / (ns / 1e9);
}

function referenceAutoRound(): number {
  const ref = new ReferenceIoas(4096, false);
  const iovas = new Array<number>(AUTO_OPS);
  const ns = time(() => {
    for (let i = 0; i < AUTO_OPS; i++) iovas[i] = ref.map(2 ** 40 + (i % 64) * PAGE, 4096);
    for (let i = 0; i < AUTO_OPS; i++)
      check(ref.unmap(iovas[i] as number, 4096), 'reference unmap');
  });
  return (2 * AUTO_OPS) / (ns / 1e9);
}

/** Heap bytes per live area with 1M automatic 4 KiB maps (no domain), model and reference. */
async function bytesPerArea(): Promise<{ model: number; reference: number }> {
  const host = createHost({ selftest: true });
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const ioas = ioasAlloc(proc, fd);
  const buf = proc.mmap(64 * PAGE);
  const maps = Array.from({ length: 64 }, (_, i) => mapArg(ioas, buf + BigInt(i * PAGE), 4096n));
  const before = await heapUsed();
  for (let i = 0; i < AREAS; i++) {
    check(proc.ioctl(fd, IOMMU_IOAS_MAP, maps[i % 64] as Uint8Array), 'MAP', proc);
    if (i % 100_000 === 0) process.stderr.write('.');
  }
  const model = ((await heapUsed()) - before) / AREAS;
  proc.close(fd);

  const refBefore = await heapUsed();
  let ref: ReferenceIoas | undefined = new ReferenceIoas(4096, false);
  for (let i = 0; i < AREAS; i++) ref.map(2 ** 40 + (i % 64) * PAGE, 4096);
  const reference = ((await heapUsed()) - refBefore) / AREAS;
  if (ref.areas.length !== AREAS) throw new Error('the reference lost areas');
  ref = undefined;
  return { model, reference };
}

/**
 * How fast this machine is right now: ns per iteration of a loop doing one
 * integer add (about 0.4 ns, one cycle, on an idle 2.5 GHz core). Figures
 * scale with it when the machine is shared.
 */
function calibrate(): number {
  let s = 0;
  const n = 2e7;
  const t = time(() => {
    for (let i = 0; i < n; i++) s = (s + i * 7) | 0;
  });
  if (s === 0.5) console.log(s);
  return t / n;
}

// ---- run -------------------------------------------------------------------------

async function main(): Promise<void> {
  const results: Record<string, number> = {};
  const progress = (what: string): void => {
    process.stderr.write(`${what} `);
  };
  results.calib_int_add_ns = calibrate();

  progress('ioctl round trip');
  const rt = ioctlRoundtrip();
  results.ioctl_roundtrip_ns = rt.model;
  results.ref_ioctl_roundtrip_ns = rt.reference;
  process.stderr.write('\n');

  progress(`mock aperture map/unmap (${ROUNDS} rounds + warm-up)`);
  const mock: MapFigures[] = [];
  const mockRef: MapFigures[] = [];
  // Round 0 warms the JIT up and is not counted.
  for (let r = 0; r <= ROUNDS; r++) {
    const m = mockMapRound();
    const ref = referenceMapRound(MOCK_SPAN, 2048, 16 * MiB, 2 * GiB - 1);
    if (r > 0) {
      mock.push(m);
      mockRef.push(ref);
    }
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  results.ioas_map_ns_per_page = median(mock.map((f) => f.map));
  results.ioas_unmap_ns_per_page = median(mock.map((f) => f.unmap));
  results.ref_ioas_map_ns_per_page = median(mockRef.map((f) => f.map));
  results.ref_ioas_unmap_ns_per_page = median(mockRef.map((f) => f.unmap));

  progress(`VT-d 4 GiB map/unmap (${ROUNDS} rounds + warm-up)`);
  const vtd: MapFigures[] = [];
  const vtdRef: MapFigures[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const m = vtdMapRound();
    const ref = referenceMapRound(VTD_SPAN, 4096, 4 * GiB, 2 ** 48 - 1);
    if (r > 0) {
      vtd.push(m);
      vtdRef.push(ref);
    }
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  results.vtd_map_4gib_ns_per_page = median(vtd.map((f) => f.map));
  results.vtd_unmap_4gib_ns_per_page = median(vtd.map((f) => f.unmap));
  results.ref_vtd_map_4gib_ns_per_page = median(vtdRef.map((f) => f.map));
  results.ref_vtd_unmap_4gib_ns_per_page = median(vtdRef.map((f) => f.unmap));

  progress(`100k automatic maps + unmaps (${ROUNDS} rounds + warm-up)`);
  const auto: number[] = [];
  const autoRef: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const m = autoMapUnmapRound();
    const ref = referenceAutoRound();
    if (r > 0) {
      auto.push(m);
      autoRef.push(ref);
    }
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  results.auto_map_unmap_ops_s = median(auto);
  results.ref_auto_map_unmap_ops_s = median(autoRef);

  progress(`heap per area, 1M areas${gc === undefined ? ' (no gc: settled heap)' : ''}`);
  const bytes = await bytesPerArea();
  process.stderr.write('\n');
  results.bytes_per_area = bytes.model;
  results.ref_bytes_per_area = bytes.reference;

  const fmt = (x: number | undefined, digits = 1): string =>
    x === undefined || Number.isNaN(x) ? '-' : x.toFixed(digits);
  const rows: [string, string, string, string][] = [
    ['ioctl round trip (DESTROY unknown id), ns', 'ioctl_roundtrip_ns', '', ''],
    ['MAP mock aperture, ns per 4 KiB page', 'ioas_map_ns_per_page', '', ''],
    ['UNMAP mock aperture, ns per 4 KiB page', 'ioas_unmap_ns_per_page', '', ''],
    ['MAP 4 GiB VT-d, ns per 4 KiB page', 'vtd_map_4gib_ns_per_page', '', ''],
    ['UNMAP 4 GiB VT-d, ns per 4 KiB page', 'vtd_unmap_4gib_ns_per_page', '', ''],
    ['auto 4 KiB MAP+UNMAP, ops/s (100k live)', 'auto_map_unmap_ops_s', '', ''],
    ['heap per area (1M areas), bytes', 'bytes_per_area', '', ''],
  ];
  const table = rows.map(([label, key]) => {
    const m = results[key];
    const r = results[`ref_${key}`];
    const ratio = m !== undefined && r !== undefined && r > 0 ? m / r : Number.NaN;
    return [
      label,
      fmt(m, key.endsWith('ops_s') ? 0 : 1),
      fmt(r, key.endsWith('ops_s') ? 0 : 1),
      fmt(ratio, 2),
    ];
  });
  const header = ['figure', 'model', 'reference', 'model/ref'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ');
  console.log(line(header));
  for (const r of table) console.log(line(r));
  console.log(
    `\nmachine: ${fmt(results.calib_int_add_ns, 2)} ns per integer add (about 0.4 on an idle 2.5 GHz core); gc ${gc === undefined ? 'unavailable' : 'available'}`,
  );
  writeFileSync(
    new URL('./results.json', import.meta.url),
    `${JSON.stringify(results, null, 2)}\n`,
  );
}

await main();
