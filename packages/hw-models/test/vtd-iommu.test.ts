import {
  E2BIG,
  EINVAL,
  EOPNOTSUPP,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_VTD_S1,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_READ,
  ACCESS_UPDATE_AD,
  ACCESS_WRITE,
  buildQemuQtestLayout,
  bytesToWords,
  Device,
  DmaEngine,
  type DmaTranslation,
  decodeQiDescriptor,
  encodeQiDescriptor,
  FrameAllocator,
  frcdLayout,
  IOMMU_READ,
  IOMMU_WRITE,
  type IommuConfig,
  type IommuDomain,
  newDmaTranslation,
  PhysicalMemory,
  pageRequestLayout,
  pasidEntryLayout,
  QEMU_QTEST,
  QI_TYPE,
  smContextEntryLayout,
  smRootEntryLayout,
  VTD_FAULT,
  VTD_FSTS,
  type VtdDomain,
  VtdIommu,
  wordsToQwords,
} from '../src/index.js';

const K4 = 4096;
const RW = IOMMU_READ | IOMMU_WRITE;

function setup(config: Partial<IommuConfig> = {}) {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(memory);
  const iommu = new VtdIommu({ name: 'vtd0', model: 'vtd', ...config }, { memory, allocator });
  const dma = new DmaEngine(memory);
  return { memory, allocator, iommu, dma };
}

function ok<T>(r: { ok: true; value: T } | { ok: false; errno: number; reason: string }): T {
  if (!r.ok) throw new Error(`expected ok, got errno ${r.errno}: ${r.reason}`);
  return r.value;
}

function errno(r: { ok: boolean; errno?: number }): number {
  return r.ok ? 0 : (r.errno as number);
}

function translate(
  iommu: VtdIommu,
  device: Device,
  iova: number,
  access: number,
  pasid = -1,
): DmaTranslation {
  const out = newDmaTranslation();
  iommu.translateDma(
    { device, requester: device.rid, pasid, access: access | ACCESS_UPDATE_AD },
    iova,
    out,
  );
  return out;
}

// The PASID entry the hardware would read for (device, pasid), decoded from memory.
function pasidEntry(iommu: VtdIommu, memory: PhysicalMemory, rid: number, pasid: number) {
  const rt = Number(iommu.registers().RTADDR);
  const root = rt - (rt % 4096);
  const re = smRootEntryLayout.decode(bytesToWords(memory.read(root + (rid >>> 8) * 16, 16)));
  const ctxAddr =
    ((rid & 0xff) >= 128 ? re.upperContextTable : re.lowerContextTable) + (rid & 0x7f) * 32;
  const ctx = smContextEntryLayout.decode(bytesToWords(memory.read(ctxAddr, 32)));
  const dir = Number(memory.readU64(ctx.pasidDir + (pasid >>> 6) * 8));
  const table = dir - (dir % 4096);
  return {
    ctx,
    entry: pasidEntryLayout.decode(bytesToWords(memory.read(table + (pasid & 63) * 64, 64))),
  };
}

describe('VtdIommu: what it reports', () => {
  it('hw_info carries CAP/ECAP, the errata flag, dirty capability and PASID width', () => {
    const { iommu } = setup();
    const plain = new Device({ name: '0000:00:02.0' });
    const pasid = new Device({ name: '0000:00:03.0', pasidBits: 16 });
    const info = iommu.hwInfo(plain);
    expect(info.type).toBe(IOMMU_HW_INFO_TYPE_INTEL_VTD);
    const vtd = structs.iommu_hw_info_vtd.decode(info.data);
    expect(vtd).toEqual({
      flags: IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
      __reserved: 0,
      cap_reg: iommu.cap,
      ecap_reg: iommu.ecap,
    });
    expect(info.capabilities).toBe(BigInt(IOMMU_HW_CAP_DIRTY_TRACKING));
    expect(info.maxPasidLog2).toBe(0);
    expect(iommu.hwInfo(pasid).maxPasidLog2).toBe(16);
    expect(setup({ dirtyTracking: false }).iommu.hwInfo(plain).capabilities).toBe(0n);
    expect(setup({ pasidBits: 0 }).iommu.hwInfo(pasid).maxPasidLog2).toBe(0);
    expect(iommu.reservedRegions(plain)).toEqual([
      { start: 0xfee00000, last: 0xfeefffff, kind: 'msi' },
    ]);
    expect(iommu.decodedRegisters().CAP).toMatchObject({ MGAW: 47, SAGAW: 6 });
  });

  it('geometry: first-stage default keeps the lower canonical half; second stage the full width', () => {
    const { iommu } = setup();
    expect(iommu.domainGeometry()).toEqual({
      apertureStart: 0,
      apertureLast: 2 ** 47 - 1,
      pageSizes: [K4, 2 ** 21, 2 ** 30],
    });
    const ss = ok(iommu.allocDomain({ type: 'paging', nestParent: true }));
    expect(ss.geometry.apertureLast).toBe(2 ** 48 - 1);
  });
});

describe('VtdIommu: domains', () => {
  it('paging prefers the first stage; NEST_PARENT and DIRTY_TRACKING take the second; DIDs from 2', () => {
    const { iommu } = setup();
    const fs = ok(iommu.allocDomain({ type: 'paging' }));
    const parent = ok(iommu.allocDomain({ type: 'paging', nestParent: true }));
    const dirty = ok(iommu.allocDomain({ type: 'paging', dirtyTracking: true }));
    expect(fs.pageTable?.geometry.format).toBe('x86-64');
    expect(parent.pageTable?.geometry.format).toBe('vtd-ss');
    expect(dirty.pageTable?.geometry.format).toBe('vtd-ss');
    expect([fs.tag, parent.tag, dirty.tag]).toEqual([2, 3, 4]);
    parent.free();
    expect(ok(iommu.allocDomain({ type: 'paging' })).tag).toBe(3);
    expect(ok(iommu.allocDomain({ type: 'identity' })).tag).toBe(1);
  });

  it('refuses what the hardware lacks with EOPNOTSUPP', () => {
    const { iommu } = setup({ nesting: false, dirtyTracking: false });
    expect(errno(iommu.allocDomain({ type: 'paging', nestParent: true }))).toBe(EOPNOTSUPP);
    expect(errno(iommu.allocDomain({ type: 'paging', dirtyTracking: true }))).toBe(EOPNOTSUPP);
  });

  it('a nest parent refuses read-only maps (ERRATA_772415_SPR17)', () => {
    const { iommu } = setup();
    const parent = ok(iommu.allocDomain({ type: 'paging', nestParent: true }));
    expect(parent.map(0, 0x100000, K4, IOMMU_READ)).toBe(-EINVAL);
    expect(parent.map(0, 0x100000, K4, RW)).toBe(K4);
  });
});

describe('VtdIommu: attach programs scalable-mode structures', () => {
  it('context entry, PASID entries for FS, SS, pass-through and blocked', () => {
    const { iommu, memory } = setup();
    const dev = new Device({ name: '0000:01:00.0', ats: true, pasidBits: 20 });
    iommu.addDevice(dev);
    const fs = ok(iommu.allocDomain({ type: 'paging' }));
    ok(iommu.attach(dev, fs));
    let { ctx, entry } = pasidEntry(iommu, memory, dev.rid, 0);
    expect(ctx).toMatchObject({ present: 1, dte: 1, paside: 1, pre: 0, pdts: 7, ridPasid: 0 });
    expect(entry).toMatchObject({
      present: 1,
      pgtt: 1,
      did: fs.tag,
      fsptptr: fs.pageTable?.root,
      fspm: 0,
      aw: 2,
    });
    const ss = ok(iommu.allocDomain({ type: 'paging', dirtyTracking: true }));
    ok(iommu.attach(dev, ss));
    ({ entry } = pasidEntry(iommu, memory, dev.rid, 0));
    expect(entry).toMatchObject({
      present: 1,
      pgtt: 2,
      did: ss.tag,
      ssptptr: ss.pageTable?.root,
      aw: 2,
      ssade: 0,
    });
    expect(ss.setDirtyTracking(true)).toBe(0);
    expect(pasidEntry(iommu, memory, dev.rid, 0).entry.ssade).toBe(1);
    ok(iommu.attach(dev, ok(iommu.allocDomain({ type: 'identity' }))));
    expect(pasidEntry(iommu, memory, dev.rid, 0).entry).toMatchObject({
      present: 1,
      pgtt: 4,
      did: 1,
    });
    iommu.detach(dev);
    expect(pasidEntry(iommu, memory, dev.rid, 0).entry.present).toBe(0);
  });

  it('PASID attach needs a PASID device and a PASID-capable domain', () => {
    const { iommu, dma } = setup();
    const dev = new Device({ name: '0000:01:00.0', pasidBits: 8 });
    const nopasid = new Device({ name: '0000:01:00.1' });
    iommu.addDevice(dev);
    iommu.addDevice(nopasid);
    const plain = ok(iommu.allocDomain({ type: 'paging' }));
    const capable = ok(iommu.allocDomain({ type: 'paging', pasid: true }));
    expect(errno(iommu.attach(dev, plain, 5))).toBe(EINVAL);
    expect(errno(iommu.attach(nopasid, capable, 5))).toBe(EINVAL);
    expect(errno(iommu.attach(dev, capable, 256))).toBe(EINVAL);
    ok(iommu.attach(dev, capable, 5));
    capable.map(0x10000, 0x300000, K4, RW);
    expect(
      dma.run(dev, iommu, { iova: 0x10000, data: new Uint8Array([1, 2, 3]), pasid: 5 }).status,
    ).toBe('done');
    // The RID itself is still blocked.
    const r = dma.run(dev, iommu, { iova: 0x10000, length: 4 });
    expect(r.status === 'fault' && r.fault.code).toBe(VTD_FAULT.PASID_ENTRY_NOT_PRESENT);
    // A PASID not attached faults too.
    const r2 = dma.run(dev, iommu, { iova: 0x10000, length: 4, pasid: 6 });
    expect(r2.status === 'fault' && r2.fault.code).toBe(VTD_FAULT.PASID_ENTRY_NOT_PRESENT);
  });
});

describe('VtdIommu: DMA and faults', () => {
  it('moves bytes through a first-stage domain and records every fault kind', () => {
    const { iommu, dma, memory } = setup();
    const dev = new Device({ name: '0000:00:10.0' });
    iommu.addDevice(dev);
    const d = ok(iommu.allocDomain({ type: 'paging' }));
    ok(iommu.attach(dev, d));
    expect(d.map(0x200000, 0x5000000, 2 * K4, RW)).toBe(2 * K4);
    expect(d.map(0x400000, 0x6000000, K4, IOMMU_READ)).toBe(K4);
    const w = dma.run(dev, iommu, { iova: 0x200ffe, data: new Uint8Array([9, 8, 7, 6]) });
    expect(w.status).toBe('done');
    expect([...memory.read(0x5000ffe, 4)]).toEqual([9, 8, 7, 6]);
    const r = dma.run(dev, iommu, { iova: 0x200ffe, length: 4 });
    expect(r.status === 'done' && [...r.data]).toEqual([9, 8, 7, 6]);
    expect(r.cachedPages).toBe(2);
    const cases: [number, number, number][] = [
      [0x300000, ACCESS_READ, VTD_FAULT.FS_ENTRY_NOT_PRESENT],
      [0x400000, ACCESS_WRITE, VTD_FAULT.SM_WRITE],
      [2 ** 47, ACCESS_READ, VTD_FAULT.FS_NON_CANONICAL],
    ];
    for (const [iova, access, code] of cases) {
      const t = translate(iommu, dev, iova, access);
      expect(t.ok).toBe(false);
      expect(t.fault?.code).toBe(code);
      expect(t.fault?.stage).toBe(1);
    }
    const last = iommu.faultLog.at(-1);
    const frcd = frcdLayout.decode(bytesToWords(last?.record ?? new Uint8Array(16)));
    expect(frcd).toMatchObject({
      sid: dev.rid,
      reason: VTD_FAULT.FS_NON_CANONICAL,
      read: 1,
      fault: 1,
      faultInfo: 2 ** 47,
    });
    expect(iommu.faultLog.length).toBe(3);
  });

  it('second-stage faults use the legacy reasons; config faults name the structure', () => {
    const { iommu } = setup();
    const dev = new Device({ name: '0000:00:10.0' });
    const stranger = new Device({ name: '0000:05:00.0' });
    iommu.addDevice(dev);
    const d = ok(iommu.allocDomain({ type: 'paging', dirtyTracking: true }));
    ok(iommu.attach(dev, d));
    d.map(0, 0x100000, K4, IOMMU_WRITE);
    d.map(K4, 0x101000, K4, IOMMU_READ);
    expect(translate(iommu, dev, 0, ACCESS_READ).fault?.code).toBe(VTD_FAULT.READ);
    expect(translate(iommu, dev, K4, ACCESS_WRITE).fault?.code).toBe(VTD_FAULT.WRITE);
    expect(translate(iommu, dev, 2 * K4, ACCESS_READ).fault?.code).toBe(
      VTD_FAULT.PAGING_ENTRY_NOT_PRESENT,
    );
    expect(translate(iommu, dev, 2 ** 48, ACCESS_READ).fault?.code).toBe(
      VTD_FAULT.ADDRESS_BEYOND_MGAW,
    );
    expect(translate(iommu, stranger, 0, ACCESS_READ).fault).toMatchObject({
      code: VTD_FAULT.ROOT_NOT_PRESENT,
      kind: 'no-context',
    });
    const neighbour = new Device({ name: '0000:00:11.0' });
    expect(translate(iommu, neighbour, 0, ACCESS_READ).fault?.code).toBe(
      VTD_FAULT.CONTEXT_NOT_PRESENT,
    );
    iommu.detach(dev);
    expect(translate(iommu, dev, K4, ACCESS_READ).fault).toMatchObject({
      code: VTD_FAULT.PASID_ENTRY_NOT_PRESENT,
      kind: 'blocked',
    });
  });

  it('fault recording overflows (FSTS.PFO) when software does not clear records', () => {
    const { iommu } = setup();
    iommu.driverClearsFaults = false;
    const dev = new Device({ name: '0000:00:10.0' });
    iommu.addDevice(dev);
    translate(iommu, dev, 0, ACCESS_READ);
    expect(iommu.fsts & VTD_FSTS.PPF).toBe(VTD_FSTS.PPF);
    translate(iommu, dev, K4, ACCESS_READ);
    expect(iommu.fsts & VTD_FSTS.PFO).toBe(VTD_FSTS.PFO);
    iommu.clearFaultRecord(0);
    expect(iommu.fsts & VTD_FSTS.PPF).toBe(0);
  });

  it('pass-through and the identity domain', () => {
    const { iommu, dma, memory } = setup();
    const dev = new Device({ name: '0000:00:10.0' });
    iommu.addDevice(dev);
    ok(iommu.attach(dev, ok(iommu.allocDomain({ type: 'identity' }))));
    memory.write(0x12345678, new Uint8Array([42]));
    const r = dma.run(dev, iommu, { iova: 0x12345678, length: 1 });
    expect(r.status === 'done' && r.data[0]).toBe(42);
  });
});

describe('VtdIommu: caches and invalidation', () => {
  it('a stale IOTLB entry translates until a PASID-IOTLB descriptor invalidates it (first stage)', () => {
    const { iommu } = setup();
    const dev = new Device({ name: '0000:00:10.0' });
    iommu.addDevice(dev);
    const d = ok(iommu.allocDomain({ type: 'paging' }));
    ok(iommu.attach(dev, d));
    d.map(0x10000, 0x700000, K4, RW);
    expect(translate(iommu, dev, 0x10010, ACCESS_READ)).toMatchObject({
      ok: true,
      pa: 0x700010,
      fromCache: false,
    });
    d.pageTable?.unmap(0x10000, K4); // the raw table: no flush
    expect(translate(iommu, dev, 0x10010, ACCESS_READ)).toMatchObject({
      ok: true,
      pa: 0x700010,
      fromCache: true,
    });
    const n = iommu.submitCommands(
      encodeQiDescriptor(QI_TYPE.PASID_IOTLB, {
        granularity: 3,
        did: d.tag,
        pasid: 0,
        am: 0,
        addr: 0x10000,
      }),
    );
    expect(n).toEqual({ ok: true, value: 1 });
    expect(translate(iommu, dev, 0x10010, ACCESS_READ).fault?.code).toBe(
      VTD_FAULT.FS_ENTRY_NOT_PRESENT,
    );
    // A new mapping is used at once (not-present entries are not cached).
    d.map(0x10000, 0x900000, K4, RW);
    expect(translate(iommu, dev, 0x10010, ACCESS_READ).pa).toBe(0x900010);
    // Domain.unmap flushes as the driver does.
    d.unmap(0x10000, K4);
    expect(translate(iommu, dev, 0x10010, ACCESS_READ).ok).toBe(false);
  });

  it('second stage: IOTLB by DID; device TLB of an ATS device needs its own descriptor', () => {
    const { iommu } = setup();
    const dev = new Device({ name: '0000:00:10.0', ats: true });
    iommu.addDevice(dev);
    const d = ok(iommu.allocDomain({ type: 'paging', nestParent: true }));
    ok(iommu.attach(dev, d));
    d.map(0x10000, 0x700000, K4, RW);
    translate(iommu, dev, 0x10000, ACCESS_READ);
    d.pageTable?.unmap(0x10000, K4);
    ok(iommu.submitCommands(encodeQiDescriptor(QI_TYPE.IOTLB, { granularity: 2, did: d.tag })));
    expect(translate(iommu, dev, 0x10000, ACCESS_READ)).toMatchObject({
      ok: true,
      fromCache: true,
    }); // device TLB
    ok(
      iommu.submitCommands(encodeQiDescriptor(QI_TYPE.DEVICE_TLB, { sid: dev.rid, addr: 0x10000 })),
    );
    expect(translate(iommu, dev, 0x10000, ACCESS_READ).fault?.code).toBe(
      VTD_FAULT.PAGING_ENTRY_NOT_PRESENT,
    );
  });

  it('an unknown descriptor stops the queue with IQE and the count processed', () => {
    const { iommu, memory } = setup();
    const wait = encodeQiDescriptor(QI_TYPE.WAIT, {
      statusWrite: 1,
      statusData: 0xabcd,
      statusAddress: 0x8000,
    });
    const bad = new Uint8Array(32);
    bad[0] = 0xa; // page-stream response: not executed by this model
    const queue = new Uint8Array(96);
    queue.set(wait, 0);
    queue.set(bad, 32);
    queue.set(wait, 64);
    const r = iommu.submitCommands(queue);
    expect(r.ok).toBe(false);
    expect(errno(r)).toBe(EINVAL);
    expect(iommu.qiProcessed).toBe(1);
    expect(iommu.fsts & VTD_FSTS.IQE).toBe(VTD_FSTS.IQE);
    expect(memory.readU32(0x8000)).toBe(0xabcd);
  });

  it('unmap flushes the descriptors the driver would issue', () => {
    const { iommu } = setup();
    const dev = new Device({ name: '0000:00:10.0', ats: true });
    iommu.addDevice(dev);
    const d = ok(iommu.allocDomain({ type: 'paging' }));
    ok(iommu.attach(dev, d));
    d.map(0x200000, 0x200000, 2 ** 21, RW);
    const seen: number[] = [];
    const submit = iommu.submitCommands.bind(iommu);
    iommu.submitCommands = (bytes) => {
      for (let at = 0; at < bytes.length; at += 32) seen.push(decodeQiDescriptor(bytes, at).type);
      return submit(bytes);
    };
    expect(d.unmap(0x200000, K4)).toBe(2 ** 21); // the whole 2M leaf
    expect(seen).toEqual([QI_TYPE.PASID_IOTLB, QI_TYPE.DEVICE_TLB]);
  });
});

describe('VtdIommu: dirty tracking through DMA', () => {
  it('SSADE makes DMA writes set D; harvesting clears and flushes', () => {
    const { iommu, dma } = setup();
    const dev = new Device({ name: '0000:00:10.0' });
    iommu.addDevice(dev);
    const d = ok(iommu.allocDomain({ type: 'paging', dirtyTracking: true }));
    ok(iommu.attach(dev, d));
    d.map(0, 0x1000000, 8 * K4, RW);
    const bitmap = { baseIova: 0, pageSize: K4, bits: new Uint8Array(1) };
    expect(d.readAndClearDirty(0, 8 * K4, bitmap)).toBe(-EINVAL); // tracking off
    dma.run(dev, iommu, { iova: 0, data: new Uint8Array(4) }); // before tracking: no D
    expect(d.setDirtyTracking(true)).toBe(0);
    dma.run(dev, iommu, { iova: 0, data: new Uint8Array(4) }); // cached from before, but must set D
    dma.run(dev, iommu, { iova: 3 * K4, data: new Uint8Array(4) });
    dma.run(dev, iommu, { iova: 5 * K4, length: 4 });
    expect(d.readAndClearDirty(0, 8 * K4, bitmap)).toBe(2);
    expect(bitmap.bits[0]).toBe(0b1001);
    bitmap.bits[0] = 0;
    dma.run(dev, iommu, { iova: 3 * K4, data: new Uint8Array(4) }); // flushed: walks again, sets D again
    expect(d.readAndClearDirty(0, 8 * K4, bitmap)).toBe(1);
    expect(bitmap.bits[0]).toBe(0b1000);
  });
});

describe('VtdIommu: nested translation', () => {
  const HPA = 0x40000000; // guest RAM GPA 0 is host 1 GiB
  function nestedSetup(s1: { flags?: number; pgtbl?: number; width?: number } = {}) {
    const env = setup();
    const { iommu, memory } = env;
    const dev = new Device({ name: '0000:00:10.0', pasidBits: 8 });
    iommu.addDevice(dev);
    const parent = ok(iommu.allocDomain({ type: 'paging', nestParent: true })) as VtdDomain;
    expect(parent.map(0, HPA, 0x1000000, RW)).toBe(0x1000000); // GPA [0, 16M)
    // Guest tables: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000; GVA 0x400000 -> GPA 0x800000.
    const g = (gpa: number, value: number) => memory.writeU64(HPA + gpa, BigInt(value));
    g(0x1000, 0x2000 | 0x27);
    g(0x2000, 0x3000 | 0x27);
    g(0x3000 + 2 * 8, 0x4000 | 0x27);
    g(0x4000, 0x800000 | 0x67);
    g(0x4000 + 8, 0x2000000 | 0x67); // GPA beyond what the parent maps
    const data = structs.iommu_hwpt_vtd_s1.encode({
      flags: BigInt(s1.flags ?? 0),
      pgtbl_addr: BigInt(s1.pgtbl ?? 0x1000),
      addr_width: s1.width ?? 48,
      __reserved: 0,
    });
    return { ...env, dev, parent, data };
  }

  it('walks guest tables through stage 2 and translates the output through the parent', () => {
    const { iommu, dev, parent, data, memory, dma } = nestedSetup();
    const nested = ok(
      iommu.allocDomain({ type: 'nested', parent, dataType: IOMMU_HWPT_DATA_VTD_S1, data }),
    ) as VtdDomain;
    ok(iommu.attach(dev, nested));
    const { entry } = pasidEntry(iommu, memory, dev.rid, 0);
    expect(entry).toMatchObject({
      pgtt: 3,
      did: nested.tag,
      fsptptr: 0x1000,
      ssptptr: parent.pageTable?.root,
      aw: 2,
    });
    memory.write(HPA + 0x800123, new Uint8Array([77]));
    const r = dma.run(dev, iommu, { iova: 0x400123, length: 1 });
    expect(r.status === 'done' && r.data[0]).toBe(77);
    // Stage-1 output not mapped by stage 2: a stage-2 fault.
    expect(translate(iommu, dev, 0x401000, ACCESS_READ).fault).toMatchObject({
      stage: 2,
      code: VTD_FAULT.PAGING_ENTRY_NOT_PRESENT,
    });
    // Guest unmaps its PTE; stale until the guest's invalidation arrives.
    memory.writeU64(HPA + 0x4000, 0n);
    expect(translate(iommu, dev, 0x400123, ACCESS_READ).ok).toBe(true);
    expect(errno(nested.invalidateUser(0x400001n, 1n, 0))).toBe(EINVAL);
    expect(errno(nested.invalidateUser(0x400000n, (1n << 64n) - 1n, 0))).toBe(EINVAL);
    expect(errno(nested.invalidateUser(0x400000n, 1n, 2))).toBe(EOPNOTSUPP);
    ok(nested.invalidateUser(0x400000n, 1n, 1));
    expect(translate(iommu, dev, 0x400123, ACCESS_READ).fault).toMatchObject({
      stage: 1,
      code: VTD_FAULT.FS_ENTRY_NOT_PRESENT,
    });
  });

  it('a guest table the parent does not map is a stage-2 fault; parent unmap flushes the child', () => {
    const { iommu, dev, parent, data } = nestedSetup({ pgtbl: 0x1000 });
    const nested = ok(
      iommu.allocDomain({ type: 'nested', parent, dataType: IOMMU_HWPT_DATA_VTD_S1, data }),
    ) as VtdDomain;
    ok(iommu.attach(dev, nested));
    expect(translate(iommu, dev, 0x400000, ACCESS_READ).ok).toBe(true);
    parent.unmap(0x800000, K4); // flushes the child's DID as well
    expect(translate(iommu, dev, 0x400000, ACCESS_READ).fault?.stage).toBe(2);
    parent.unmap(0x3000, K4); // the guest PD
    expect(translate(iommu, dev, 0x400000, ACCESS_READ).fault).toMatchObject({
      stage: 2,
      kind: 'not-present',
    });
  });

  it('a parent unmap whose GPA range misses the cached GVA still drops every combined entry of the nested DID', () => {
    const { iommu, dev, parent, data } = nestedSetup();
    const nested = ok(
      iommu.allocDomain({ type: 'nested', parent, dataType: IOMMU_HWPT_DATA_VTD_S1, data }),
    ) as VtdDomain;
    ok(iommu.attach(dev, nested));
    expect(translate(iommu, dev, 0x400000, ACCESS_READ).ok).toBe(true);
    expect(translate(iommu, dev, 0x400000, ACCESS_READ).fromCache).toBe(true);
    // GPA [8M, 10M) holds the data page; the page-selective flush names GPAs, not the GVA.
    expect(parent.unmap(0x800000, 0x200000)).toBe(0x200000);
    expect(translate(iommu, dev, 0x400000, ACCESS_READ).fault).toMatchObject({ stage: 2 });
  });

  it('alloc and attach errors as the driver returns them', () => {
    const { iommu, dev, parent, data } = nestedSetup({ width: 39 });
    const plain = ok(iommu.allocDomain({ type: 'paging', dirtyTracking: true }));
    expect(
      errno(
        iommu.allocDomain({ type: 'nested', parent, dataType: IOMMU_HWPT_DATA_ARM_SMMUV3, data }),
      ),
    ).toBe(EOPNOTSUPP);
    expect(
      errno(
        iommu.allocDomain({
          type: 'nested',
          parent: plain,
          dataType: IOMMU_HWPT_DATA_VTD_S1,
          data,
        }),
      ),
    ).toBe(EINVAL);
    expect(
      errno(
        iommu.allocDomain({
          type: 'nested',
          parent,
          dataType: IOMMU_HWPT_DATA_VTD_S1,
          data: data.subarray(0, 16),
        }),
      ),
    ).toBe(EINVAL);
    const long = new Uint8Array(32);
    long.set(data);
    long[30] = 1;
    expect(
      errno(
        iommu.allocDomain({ type: 'nested', parent, dataType: IOMMU_HWPT_DATA_VTD_S1, data: long }),
      ),
    ).toBe(E2BIG);
    const nested = ok(
      iommu.allocDomain({ type: 'nested', parent, dataType: IOMMU_HWPT_DATA_VTD_S1, data }),
    );
    expect(errno(iommu.attach(dev, nested))).toBe(EINVAL); // addr_width 39
  });
});

describe('VtdIommu: page requests', () => {
  it('a PRI device on an iopf domain gets a page request, answered by a page group response', () => {
    const { iommu, dma, memory } = setup();
    const dev = new Device({ name: '0000:00:10.0', ats: true, pri: true, pasidBits: 8 });
    iommu.addDevice(dev);
    const d: IommuDomain = ok(iommu.allocDomain({ type: 'paging', iopf: true, pasid: true }));
    ok(iommu.attach(dev, d, 3));
    expect(pasidEntry(iommu, memory, dev.rid, 0).ctx.pre).toBe(1);
    const seen: unknown[] = [];
    iommu.onPageRequest = (r) => seen.push(r);
    const out = dma.run(dev, iommu, {
      iova: 0x7f0000001000,
      data: new Uint8Array([1, 2]),
      pasid: 3,
    });
    expect(out.status).toBe('page-request');
    if (out.status !== 'page-request') return;
    expect(out.request).toMatchObject({
      requester: dev.rid,
      pasid: 3,
      lastPage: true,
      perm: 2,
      address: 0x7f0000001000,
      source: 'pri',
    });
    expect(seen.length).toBe(1);
    expect(iommu.faultLog.length).toBe(0);
    const prq = pageRequestLayout.decode(bytesToWords(out.request.record));
    expect(prq).toMatchObject({
      type: 1,
      pasidPresent: 1,
      rid: dev.rid,
      pasid: 3,
      write: 1,
      lastPage: 1,
      prgIndex: out.request.groupId,
    });
    d.map(0x7f0000001000, 0x300000, K4, RW);
    iommu.completePageRequest(out.request, 'success');
    expect(iommu.responses.at(-1)).toEqual({
      rid: dev.rid,
      pasid: 3,
      prgIndex: out.request.groupId,
      code: 0,
      lastPage: true,
    });
    expect(iommu.pendingPageRequests()).toEqual([]);
    expect(dma.resume(out.ticket).status).toBe('done');
    expect([...memory.read(0x300000, 2)]).toEqual([1, 2]);
    // Without an iopf domain the same fault is recorded, unrecoverable.
    iommu.detach(dev, 3);
    expect(pasidEntry(iommu, memory, dev.rid, 0).ctx.pre).toBe(0);
  });
});

describe('VtdIommu: the QEMU qtest layout (spec vector 2)', () => {
  it.each(['ss', 'fs', 'pt', 'legacy', 'legacy-pt'] as const)(
    '%s mode translates 0x10200567',
    (mode) => {
      const { iommu, memory } = setup();
      const dev = new Device({ name: '0000:00:00.0' });
      iommu.writeRtaddr(buildQemuQtestLayout(memory, mode));
      const t = translate(iommu, dev, QEMU_QTEST.IOVA, ACCESS_READ);
      expect(t.ok).toBe(true);
      expect(t.pa).toBe(mode.endsWith('pt') ? QEMU_QTEST.IOVA : QEMU_QTEST.GPA);
      if (mode === 'ss') {
        expect(memory.readU64(QEMU_QTEST.PASID_TABLE)).toBe(0x10010089n);
        expect(memory.readU64(QEMU_QTEST.PD + 0x81 * 8)).toBe(0x10013003n);
        expect(wordsToQwords(bytesToWords(memory.read(QEMU_QTEST.ROOT_TABLE, 16)))).toEqual([
          0x10001001n,
          0n,
        ]);
      }
    },
  );
});
