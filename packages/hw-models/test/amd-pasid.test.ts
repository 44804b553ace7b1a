import { EINVAL, EOPNOTSUPP } from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Device } from '../src/device.js';
import { DmaEngine } from '../src/dma.js';
import {
  AMD_V2_PAGE_SIZES,
  AmdIommu,
  decodeDte,
  EVENT_FLAG_GN,
  EVENT_IO_PAGE_FAULT,
  encodeInvalidateIommuPages,
  gcr3Levels,
  PPR_FLAG_GN,
} from '../src/iommu/amd/index.js';
import { type DmaContext, type IommuDomain, newDmaTranslation } from '../src/iommu/iommu.js';
import { FrameAllocator, PhysicalMemory } from '../src/memory/index.js';
import { ACCESS_READ, ACCESS_WRITE, IOMMU_READ, IOMMU_WRITE } from '../src/pagetable/format.js';
import { X86PageTable } from '../src/pagetable/x86-64.js';

const RW = IOMMU_READ | IOMMU_WRITE;

function setup(opts: { pasidBits?: number; devPasidBits?: number; pri?: boolean } = {}) {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(memory, { base: 2 ** 36, size: 2 ** 30 });
  const iommu = new AmdIommu(
    { name: 'amd0', model: 'amd', pasidBits: opts.pasidBits ?? 16 },
    { memory, allocator },
  );
  const dev = new Device({
    name: '0000:00:02.0',
    pasidBits: opts.devPasidBits ?? 16,
    pri: opts.pri ?? false,
  });
  iommu.addDevice(dev);
  return { memory, iommu, dev, dma: new DmaEngine(memory) };
}

function alloc(iommu: AmdIommu, spec: Record<string, unknown> = {}): IommuDomain {
  const r = iommu.allocDomain({ type: 'paging', ...spec });
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

function v2(iommu: AmdIommu, iopf = false): IommuDomain {
  return alloc(iommu, { pasid: true, iopf });
}

function ctx(device: Device, access: number, pasid = -1): DmaContext {
  return { device, requester: device.rid, pasid, access };
}

function identity(iommu: AmdIommu): IommuDomain {
  const r = iommu.allocDomain({ type: 'identity' });
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

describe('AMD-Vi PASID: v2 domains and what is reported', () => {
  it('PASID domains are v2 (x86-64, 4K/2M/1G, 47-bit aperture); not with dirty tracking', () => {
    const { iommu } = setup();
    const d = v2(iommu);
    expect(d.pasidCapable).toBe(true);
    expect(d.pageTable).toBeInstanceOf(X86PageTable);
    expect(d.geometry).toEqual({
      apertureStart: 0,
      apertureLast: 2 ** 47 - 1,
      pageSizes: AMD_V2_PAGE_SIZES,
    });
    expect(d.setDirtyTracking(true)).toBe(-EOPNOTSUPP);
    const both = iommu.allocDomain({ type: 'paging', pasid: true, dirtyTracking: true });
    expect(both.ok || both.errno).toBe(EOPNOTSUPP);
    // amd_iommu_pasid_supported needs GT (PASIDs) and PPR.
    const noPasid = setup({ pasidBits: 0 }).iommu.allocDomain({ type: 'paging', pasid: true });
    expect(noPasid.ok || noPasid.errno).toBe(EOPNOTSUPP);
    const noPri = new AmdIommu(
      { name: 'amd1', model: 'amd', pasidBits: 16, pri: false },
      {
        memory: iommu.env.memory,
        allocator: new FrameAllocator(iommu.env.memory, { base: 2 ** 37, size: 2 ** 28 }),
      },
    );
    const r = noPri.allocDomain({ type: 'paging', pasid: true });
    expect(r.ok || r.errno).toBe(EOPNOTSUPP);
  });

  it('hw_info max_pasid_log2 is ilog2(min(IOMMU PASIDs, device PASIDs)); GCR3 levels follow', () => {
    expect(
      setup({ pasidBits: 16, devPasidBits: 8 }).iommu.hwInfo(
        new Device({ name: 'a', pasidBits: 8 }),
      ).maxPasidLog2,
    ).toBe(8);
    const { iommu, dev } = setup({ pasidBits: 16, devPasidBits: 16 });
    // (1 << 16) - 1 PASIDs on the IOMMU side: ilog2 is 15.
    expect(iommu.hwInfo(dev).maxPasidLog2).toBe(15);
    expect(iommu.hwInfo(new Device({ name: 'b' })).maxPasidLog2).toBe(0);
    expect(setup({ pasidBits: 0 }).iommu.hwInfo(dev).maxPasidLog2).toBe(0);
    expect(iommu.decodedRegisters().EFR).toMatchObject({ GT: true, PASMAX: 15, GLX: 1 });
    expect([1, 256, 512, 513, 65535, 2 ** 18, 2 ** 20 - 1].map(gcr3Levels)).toEqual([
      0, 0, 0, 1, 1, 1, 2,
    ]);
  });
});

describe('AMD-Vi PASID: attach and detach', () => {
  it('answers the driver errnos', () => {
    const { iommu, dev } = setup();
    const d = v2(iommu);
    const v1 = alloc(iommu);
    // No GCR3 table while the RID is blocked or on a v1 domain (is_pasid_enabled).
    expect(iommu.attach(dev, d, 1)).toMatchObject({ ok: false, errno: EINVAL });
    iommu.attach(dev, v1);
    expect(iommu.attach(dev, d, 1)).toMatchObject({ ok: false, errno: EINVAL });
    iommu.attach(dev, identity(iommu));
    expect(iommu.attach(dev, v1, 1)).toMatchObject({ ok: false, errno: EINVAL });
    expect(iommu.attach(dev, identity(iommu), 1)).toMatchObject({ ok: false, errno: EOPNOTSUPP });
    expect(iommu.attach(dev, d, 0)).toMatchObject({ ok: false, errno: EINVAL });
    expect(iommu.attach(dev, d, 0xffff)).toMatchObject({ ok: false, errno: EINVAL });
    expect(iommu.attach(dev, d, 0xfffe)).toEqual({ ok: true, value: undefined });
    // A device without the PASID capability.
    const plain = new Device({ name: '0000:00:05.0' });
    iommu.addDevice(plain);
    iommu.attach(plain, identity(iommu));
    expect(iommu.attach(plain, d, 1)).toMatchObject({ ok: false, errno: EINVAL });
  });

  it('writes GCR3[pasid] and GV/GLX/GCR3 root in the DTE; detach clears the entry', () => {
    const { iommu, dev } = setup();
    const d = v2(iommu);
    expect(iommu.attach(dev, identity(iommu)).ok).toBe(true);
    expect(iommu.attach(dev, d, 0x234).ok).toBe(true);
    expect(iommu.attachedPasidDomain(dev, 0x234)).toBe(d);
    const dte = decodeDte(iommu.deviceTableEntry(dev.rid));
    expect(dte).toMatchObject({
      valid: true,
      translationValid: true,
      mode: 0,
      gv: true,
      giov: false,
    });
    expect(dte.glx).toBe(1); // 2^16 - 1 PASIDs: two levels
    expect(dte.domainId).not.toBe(d.tag); // the GCR3 table's own DomainID
    const root = (d.pageTable as X86PageTable).root;
    const g = iommu.gcr3Entry(dev.rid, 0x234);
    expect(g).toEqual({ root: dte.gcr3, glx: 1, entry: BigInt(root) | 1n });
    // Raw memory: level 1 index 0x234 >> 9 = 1 points at the leaf table, index 0x34 there.
    const l1 = iommu.env.memory.readU64(dte.gcr3 + 1 * 8);
    expect(l1 & 1n).toBe(1n);
    const leaf = Number(l1 & 0x000f_ffff_ffff_f000n);
    expect(iommu.env.memory.readU64(leaf + 0x34 * 8)).toBe(BigInt(root) | 1n);
    iommu.detach(dev, 0x234);
    expect(iommu.env.memory.readU64(leaf + 0x34 * 8)).toBe(0n);
    expect(iommu.attachedPasidDomain(dev, 0x234)).toBe(null);
    const flushes = iommu.commandLog.filter(
      (c) => c.op === 'INVALIDATE_IOMMU_PAGES' && c.pasid === 0x234,
    );
    expect(flushes.length).toBe(2);
  });

  it('a v2 RID domain sits in GCR3[0] with GIOV; RID DMA walks it', () => {
    const { iommu, dev, dma } = setup();
    const d = v2(iommu);
    expect(d.map(0x40_0000, 0x3000_0000, 0x2000, RW)).toBe(0x2000);
    expect(iommu.attach(dev, d).ok).toBe(true);
    const dte = decodeDte(iommu.deviceTableEntry(dev.rid));
    expect(dte).toMatchObject({ gv: true, giov: true, mode: 0, hostRoot: 0, guestPagingMode: 0 });
    expect(iommu.gcr3Entry(dev.rid, 0)?.entry).toBe(
      BigInt((d.pageTable as X86PageTable).root) | 1n,
    );
    const w = dma.run(dev, iommu, { iova: 0x40_0ff0, data: new Uint8Array([1, 2, 3, 4, 5]) });
    expect(w.status).toBe('done');
    expect([...iommu.env.memory.read(0x3000_0ff0, 5)]).toEqual([1, 2, 3, 4, 5]);
    // Back to a v1 domain: no GCR3 table, the v1 host table again.
    const v1 = alloc(iommu);
    v1.map(0, 0x5000_0000, 4096, RW);
    iommu.attach(dev, v1);
    expect(decodeDte(iommu.deviceTableEntry(dev.rid))).toMatchObject({ gv: false, mode: 3 });
    expect(dma.run(dev, iommu, { iova: 0x10, length: 1 }).status).toBe('done');
    expect(dma.run(dev, iommu, { iova: 0x40_0ff0, length: 1 }).status).toBe('fault');
  });
});

describe('AMD-Vi PASID: DMA, faults, IOTLB', () => {
  it('DMA with a PASID goes through its v2 domain; RID DMA stays on identity', () => {
    const { iommu, dev, dma, memory } = setup();
    iommu.attach(dev, identity(iommu));
    const a = v2(iommu);
    const b = v2(iommu);
    a.map(0x1000, 0x1000_0000, 4096, RW);
    b.map(0x1000, 0x2000_0000, 4096, RW);
    expect(iommu.attach(dev, a, 5).ok).toBe(true);
    expect(iommu.attach(dev, b, 600).ok).toBe(true);
    const data = new Uint8Array([0xaa, 0xbb, 0xcc]);
    expect(dma.run(dev, iommu, { iova: 0x1100, data, pasid: 5 }).status).toBe('done');
    expect([...memory.read(0x1000_0100, 3)]).toEqual([0xaa, 0xbb, 0xcc]);
    const r = dma.run(dev, iommu, { iova: 0x1100, length: 3, pasid: 5 });
    expect(r.status === 'done' && [...r.data]).toEqual([0xaa, 0xbb, 0xcc]);
    dma.run(dev, iommu, { iova: 0x1100, data: new Uint8Array([7]), pasid: 600 });
    expect(memory.read(0x2000_0100, 1)[0]).toBe(7);
    // Untagged traffic: identity (Mode 0, GIOV clear).
    dma.run(dev, iommu, { iova: 0x4000_0000, data: new Uint8Array([9]) });
    expect(memory.read(0x4000_0000, 1)[0]).toBe(9);
  });

  it('a PASID fault is an IO_PAGE_FAULT with GN and the PASID; an empty GCR3 entry faults too', () => {
    const { iommu, dev, dma } = setup();
    iommu.attach(dev, identity(iommu));
    const d = v2(iommu);
    const pasid = 0x2345;
    iommu.attach(dev, d, pasid);
    const f = dma.run(dev, iommu, { iova: 0x7000, data: new Uint8Array([1]), pasid });
    expect(f.status === 'fault' && f.fault).toMatchObject({
      name: 'IO_PAGE_FAULT',
      pasid,
      kind: 'not-present',
      stage: 1,
    });
    const [e] = iommu.readEventLog();
    expect(e).toMatchObject({
      code: EVENT_IO_PAGE_FAULT,
      deviceId: dev.rid,
      tag: pasid,
      address: 0x7000,
    });
    expect((e?.flags ?? 0) & EVENT_FLAG_GN).toBe(EVENT_FLAG_GN);
    // A PASID with no valid GCR3 entry.
    const g = dma.run(dev, iommu, { iova: 0x7000, length: 1, pasid: 77 });
    expect(g.status === 'fault' && g.fault).toMatchObject({ kind: 'no-context', pasid: 77 });
    expect(iommu.readEventLog()[0]).toMatchObject({ code: EVENT_IO_PAGE_FAULT, tag: 77 });
    // A PASID-tagged request to a DTE without GV (the RID on a v1 domain).
    iommu.attach(dev, alloc(iommu));
    const h = dma.run(dev, iommu, { iova: 0, length: 1, pasid: 1 });
    expect(h.status === 'fault' && h.fault.name).toBe('INVALID_DEVICE_REQUEST');
  });

  it('PRI: a PASID page request carries the PASID and GN', () => {
    const { iommu, dev, dma } = setup({ pri: true });
    iommu.attach(dev, identity(iommu));
    const d = v2(iommu, true);
    iommu.attach(dev, d, 9);
    expect(decodeDte(iommu.deviceTableEntry(dev.rid)).ppr).toBe(true);
    const r = dma.run(dev, iommu, { iova: 0x5123, length: 1, pasid: 9 });
    expect(r.status).toBe('page-request');
    if (r.status !== 'page-request') return;
    expect(r.request).toMatchObject({ pasid: 9, address: 0x5000, source: 'pri' });
    const [ppr] = iommu.readPprLog();
    expect(ppr?.pasid).toBe(9);
    expect((ppr?.flags ?? 0) & PPR_FLAG_GN).toBe(PPR_FLAG_GN);
    d.map(0x5000, 0x6000_0000, 4096, RW);
    iommu.completePageRequest(r.request, 'success');
    expect(dma.resume(r.ticket).status).toBe('done');
  });

  it('stale IOTLB for a PASID until INVALIDATE_IOMMU_PAGES with GN; unmap flushes with GN', () => {
    const { iommu, dev } = setup();
    iommu.attach(dev, identity(iommu));
    const d = v2(iommu);
    iommu.attach(dev, d, 3);
    d.map(0x20_0000, 0x1000_0000, 4096, RW);
    const domid = decodeDte(iommu.deviceTableEntry(dev.rid)).domainId;
    const t = newDmaTranslation();
    expect(iommu.translateDma(ctx(dev, ACCESS_READ, 3), 0x20_0000, t)).toBe(true);
    expect(t.fromCache).toBe(false);
    (d.pageTable as X86PageTable).unmap(0x20_0000, 4096);
    expect(iommu.translateDma(ctx(dev, ACCESS_READ, 3), 0x20_0000, t)).toBe(true);
    expect(t.fromCache).toBe(true);
    // Without GN (host translations) or for another PASID: still stale.
    iommu.submitCommands(encodeInvalidateIommuPages({ domainId: domid }));
    iommu.submitCommands(encodeInvalidateIommuPages({ domainId: domid, pasid: 4 }));
    expect(iommu.translateDma(ctx(dev, ACCESS_READ, 3), 0x20_0000, t)).toBe(true);
    const r = iommu.submitCommands(
      encodeInvalidateIommuPages({ domainId: domid, pasid: 3, address: 0x20_0000, size: 4096 }),
    );
    expect(r).toEqual({ ok: true, value: 1 });
    expect(iommu.translateDma(ctx(dev, ACCESS_WRITE, 3), 0x20_0000, t)).toBe(false);
    // Domain.unmap: INVALIDATE_IOMMU_PAGES for (GCR3 DomainID, PASID 3) with GN.
    d.map(0x30_0000, 0x2000_0000, 4096, RW);
    expect(iommu.translateDma(ctx(dev, ACCESS_READ, 3), 0x30_0000, t)).toBe(true);
    iommu.commandLog.length = 0;
    d.unmap(0x30_0000, 4096);
    expect(
      iommu.commandLog.some(
        (c) => c.op === 'INVALIDATE_IOMMU_PAGES' && c.pasid === 3 && c.domainId === domid,
      ),
    ).toBe(true);
    expect(iommu.translateDma(ctx(dev, ACCESS_READ, 3), 0x30_0000, t)).toBe(false);
  });

  it('property: random PASIDs on random domains translate to their domain', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 0xfffe }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(3), { minLength: 12, maxLength: 12 }),
        fc.boolean(),
        (pasids, picks, v2Rid) => {
          const { iommu, dev } = setup();
          const domains = [0, 1, 2, 3].map((i) => {
            const d = v2(iommu);
            d.map(0x10_0000, 0x1000_0000 + i * 0x10_0000, 4096, RW);
            return d;
          });
          iommu.attach(dev, v2Rid ? (domains[0] as IommuDomain) : identity(iommu));
          const chosen = new Map<number, number>();
          pasids.forEach((p, i) => {
            const k = picks[i] ?? 0;
            expect(iommu.attach(dev, domains[k] as IommuDomain, p).ok).toBe(true);
            chosen.set(p, k);
          });
          // Re-attach some to another domain and detach one.
          const first = pasids[0] as number;
          iommu.attach(dev, domains[3] as IommuDomain, first);
          chosen.set(first, 3);
          const last = pasids[pasids.length - 1] as number;
          if (pasids.length > 1) {
            iommu.detach(dev, last);
            chosen.delete(last);
          }
          const t = newDmaTranslation();
          for (const p of pasids) {
            const ok = iommu.translateDma(ctx(dev, ACCESS_READ, p), 0x10_0abc, t);
            const k = chosen.get(p);
            if (k === undefined) expect(ok).toBe(false);
            else expect(t.pa).toBe(0x1000_0abc + k * 0x10_0000);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
