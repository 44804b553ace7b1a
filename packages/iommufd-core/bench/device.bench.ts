/**
 * Device-side figures, merged into bench/results.json beside the plain-JS
 * reference of bench/reference-device.ts measured in the same run:
 *
 * - dma_read_ns: 1M random 8-byte device reads through an attached VT-d
 *   domain with 4 KiB leaves (1 GiB mapped), each translated by the IOMMU
 *   model (IOTLB, page walk in simulated memory) and read from physical memory;
 * - dirty_harvest_4gib_ms: IOMMU_HWPT_GET_DIRTY_BITMAP over 4 GiB of 4 KiB
 *   IOPTEs with 10% of the pages dirtied by device writes beforehand.
 *
 * Rounds alternate model and reference and keep the median; the first
 * round of each warms the JIT up and is not counted.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import {
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  structs,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
} from '@iommufd-sim/uapi-types';
import { createHost, type Host, type Process } from '../src/index.js';
import { ReferenceDevice } from './reference-device.js';
import { check, median, time } from './timing.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PAGE = 4096;
const GiB = 2 ** 30;
const READS = 1_000_000;
const READ_SPAN = GiB;
const DIRTY_SPAN = 4 * GiB;
const DIRTY_FRACTION = 0.1;
const IOVA_BASE = 4 * GiB; // clear of the VT-d MSI window
const DEVICE = '0000:00:02.0';

/** A deterministic pseudo-random sequence (xorshift32), so model and reference see the same addresses. */
function randomPages(count: number, pages: number, seed: number): Uint32Array {
  const out = new Uint32Array(count);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x % pages;
  }
  return out;
}

/** A VT-d host with one PCI device bound through VFIO, `span` bytes of process memory mapped at IOVA_BASE. */
function vtdSetup(
  span: number,
  dirty: boolean,
): { host: Host; proc: Process; fd: number; hwpt: number } {
  const host = createHost({
    iommus: [{ name: 'vtd0', model: 'vtd', pageSizes: [4096] }],
    devices: [{ name: DEVICE, iommu: 'vtd0' }],
  });
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const ioasArg = structs.iommu_ioas_alloc.encode({ size: 12 });
  check(proc.ioctl(fd, IOMMU_IOAS_ALLOC, ioasArg), 'IOAS_ALLOC', proc);
  const ioas = structs.iommu_ioas_alloc.decode(ioasArg).out_ioas_id;
  const vfio = proc.open('/dev/vfio/devices/vfio0');
  const bind = structs.vfio_device_bind_iommufd.encode({ argsz: 24, iommufd: fd });
  check(proc.ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, bind), 'BIND', proc);
  const devId = structs.vfio_device_bind_iommufd.decode(bind).out_devid;
  let pt = ioas;
  if (dirty) {
    const alloc = structs.iommu_hwpt_alloc.encode({
      size: 48,
      flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
      dev_id: devId,
      pt_id: ioas,
    });
    check(proc.ioctl(fd, IOMMU_HWPT_ALLOC, alloc), 'HWPT_ALLOC', proc);
    pt = structs.iommu_hwpt_alloc.decode(alloc).out_hwpt_id;
  }
  const attach = structs.vfio_device_attach_iommufd_pt.encode({ argsz: 16, pt_id: pt });
  check(proc.ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, attach), 'ATTACH', proc);
  const hwpt = structs.vfio_device_attach_iommufd_pt.decode(attach).pt_id;
  const buf = proc.mmap(span);
  const map = structs.iommu_ioas_map.encode({
    size: 40,
    flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA,
    ioas_id: ioas,
    user_va: buf,
    length: BigInt(span),
    iova: BigInt(IOVA_BASE),
  });
  check(proc.ioctl(fd, IOMMU_IOAS_MAP, map), 'MAP', proc);
  return { host, proc, fd, hwpt };
}

/** 1M random 8-byte reads through the attached domain: ns per read. */
function dmaReadRound(offsets: Uint32Array): number {
  const { host, proc, fd } = vtdSetup(READ_SPAN, false);
  const requests = Array.from(offsets, (page, i) => ({
    iova: IOVA_BASE + page * PAGE + ((i * 8) & (PAGE - 8)),
    length: 8,
  }));
  let bad = 0;
  const ns = time(() => {
    for (let i = 0; i < requests.length; i++) {
      const out = host.deviceDma(DEVICE, requests[i] as { iova: number; length: number });
      if (out?.status !== 'done') bad++;
    }
  });
  if (bad !== 0) throw new Error(`${bad} reads faulted`);
  proc.close(fd);
  return ns / requests.length;
}

/** GET_DIRTY_BITMAP over 4 GiB with 10% of the pages written by the device: ms. */
function dirtyHarvestRound(dirtyPages: Uint32Array): { ms: number; bits: number } {
  const { host, proc, fd, hwpt } = vtdSetup(DIRTY_SPAN, true);
  const enable = structs.iommu_hwpt_set_dirty_tracking.encode({
    size: 16,
    flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
    hwpt_id: hwpt,
  });
  check(proc.ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, enable), 'SET_DIRTY_TRACKING', proc);
  const word = new Uint8Array(8).fill(0xa5);
  for (const page of dirtyPages) {
    const out = host.deviceDma(DEVICE, { iova: IOVA_BASE + page * PAGE, data: word });
    if (out?.status !== 'done') throw new Error('a device write faulted');
  }
  const bitmapBytes = DIRTY_SPAN / PAGE / 8;
  const bitmap = proc.mmap(bitmapBytes);
  const get = structs.iommu_hwpt_get_dirty_bitmap.encode({
    size: 48,
    hwpt_id: hwpt,
    iova: BigInt(IOVA_BASE),
    length: BigInt(DIRTY_SPAN),
    page_size: BigInt(PAGE),
    data: bitmap,
  });
  const ns = time(() => check(proc.ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, get), 'GET_DIRTY', proc));
  const bytes = proc.readMemory(bitmap, bitmapBytes) as Uint8Array;
  let bits = 0;
  for (const b of bytes) for (let v = b; v !== 0; v &= v - 1) bits++;
  proc.close(fd);
  return { ms: ns / 1e6, bits };
}

function referenceReadRound(offsets: Uint32Array): number {
  const ref = new ReferenceDevice(IOVA_BASE, READ_SPAN, 2 ** 40);
  const iovas = Array.from(offsets, (page, i) => IOVA_BASE + page * PAGE + ((i * 8) & (PAGE - 8)));
  let sink = 0;
  const ns = time(() => {
    for (let i = 0; i < iovas.length; i++) sink += ref.read(iovas[i] as number, 8)[0] as number;
  });
  if (sink < 0) console.log(sink);
  return ns / iovas.length;
}

function referenceHarvestRound(dirtyPages: Uint32Array): { ms: number; bits: number } {
  const ref = new ReferenceDevice(IOVA_BASE, DIRTY_SPAN, 2 ** 40);
  const word = new Uint8Array(8).fill(0xa5);
  for (const page of dirtyPages) ref.write(IOVA_BASE + page * PAGE, word);
  const bitmap = new Uint8Array(DIRTY_SPAN / PAGE / 8);
  const ns = time(() => ref.harvest(IOVA_BASE, DIRTY_SPAN, PAGE, bitmap));
  let bits = 0;
  for (const b of bitmap) for (let v = b; v !== 0; v &= v - 1) bits++;
  return { ms: ns / 1e6, bits };
}

async function main(): Promise<void> {
  const resultsUrl = new URL('./results.json', import.meta.url);
  const results: Record<string, number> = existsSync(resultsUrl)
    ? (JSON.parse(readFileSync(resultsUrl, 'utf8')) as Record<string, number>)
    : {};
  const reads = randomPages(READS, READ_SPAN / PAGE, 12345);
  const dirtyCount = Math.round((DIRTY_SPAN / PAGE) * DIRTY_FRACTION);
  // Distinct pages: a stride walk over a prime step hits each page at most once.
  const dirtyPages = new Uint32Array(dirtyCount);
  const pages = DIRTY_SPAN / PAGE;
  for (let i = 0, p = 7; i < dirtyCount; i++, p = (p + 104_729) % pages) dirtyPages[i] = p;

  process.stderr.write(`1M random 8-byte DMA reads, VT-d 4 KiB (${ROUNDS} rounds + warm-up) `);
  const dma: number[] = [];
  const dmaRef: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const m = dmaReadRound(reads);
    const ref = referenceReadRound(reads);
    if (r > 0) {
      dma.push(m);
      dmaRef.push(ref);
    }
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  results.dma_read_ns = median(dma);
  results.ref_dma_read_ns = median(dmaRef);

  process.stderr.write(`dirty bitmap of 4 GiB, 10% dirty (${ROUNDS} rounds + warm-up) `);
  const harvest: number[] = [];
  const harvestRef: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const m = dirtyHarvestRound(dirtyPages);
    const ref = referenceHarvestRound(dirtyPages);
    if (m.bits !== dirtyCount || ref.bits !== dirtyCount) {
      throw new Error(`harvest reported ${m.bits} (reference ${ref.bits}) of ${dirtyCount} pages`);
    }
    if (r > 0) {
      harvest.push(m.ms);
      harvestRef.push(ref.ms);
    }
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  results.dirty_harvest_4gib_ms = median(harvest);
  results.ref_dirty_harvest_4gib_ms = median(harvestRef);

  const rows: [string, string][] = [
    ['DMA read, 8 bytes at a random IOVA (VT-d 4 KiB), ns', 'dma_read_ns'],
    ['dirty bitmap of 4 GiB (10% dirty), ms', 'dirty_harvest_4gib_ms'],
  ];
  for (const [label, key] of rows) {
    const m = results[key] as number;
    const r = results[`ref_${key}`] as number;
    console.log(
      `${label.padEnd(56)} model ${m.toFixed(1).padStart(8)}  reference ${r.toFixed(1).padStart(8)}  model/ref ${(m / r).toFixed(2)}`,
    );
  }
  writeFileSync(resultsUrl, `${JSON.stringify(results, null, 2)}\n`);
}

await main();
