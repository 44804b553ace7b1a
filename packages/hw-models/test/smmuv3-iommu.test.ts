// The SMMUv3 instance as iommufd-core sees it: the QEMU qtest stage-1 chain,
// DMA through the driver model, domain allocation rules,
// attach/detach and PASIDs, nested translation, every fault kind, caches and
// their invalidation, stalls, PRI, ATS, the command queue and the event queue.
import {
  EBUSY,
  EINVAL,
  EIO,
  EOPNOTSUPP,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_READ,
  ACCESS_UPDATE_AD,
  ACCESS_WRITE,
  type ArmLpaePageTable,
  Device,
  DmaEngine,
  decodeSmmuEvent,
  encodeSmmuCommand,
  FrameAllocator,
  IOMMU_CACHE,
  IOMMU_READ,
  IOMMU_WRITE,
  type IommuConfig,
  type IommuDomain,
  newDmaTranslation,
  PhysicalMemory,
  SMMU_CD,
  SMMU_PRI_ENTRY,
  SMMU_STE,
  SMMU_STE_CONFIG,
  type Smmuv3Domain,
  Smmuv3Iommu,
  type Smmuv3Options,
  smmuBytesToWords,
  smmuWordsToBytes,
} from '../src/index.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const K4 = 4096;

function setup(config: Partial<IommuConfig> = {}, options: Smmuv3Options = {}, addressBits = 52) {
  const memory = new PhysicalMemory({ addressBits });
  const allocator = new FrameAllocator(memory);
  const smmu = new Smmuv3Iommu(
    { name: 'smmu0', model: 'smmuv3', ...config },
    { memory, allocator },
    options,
  );
  return { memory, allocator, smmu, dma: new DmaEngine(memory) };
}

function ok<T>(r: { ok: true; value: T } | { ok: false; reason: string }): T {
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

function paging(smmu: Smmuv3Iommu, spec: Record<string, boolean> = {}): Smmuv3Domain {
  return ok(smmu.allocDomain({ type: 'paging', ...spec })) as Smmuv3Domain;
}

function cmds(...list: [bigint, bigint][]): Uint8Array {
  return smmuWordsToBytes(list.flat());
}

const sync = (): [bigint, bigint] => encodeSmmuCommand('CMD_SYNC');

function translate(
  smmu: Smmuv3Iommu,
  dev: Device,
  iova: number,
  access = ACCESS_READ,
  pasid = -1,
  requester?: number,
) {
  const out = newDmaTranslation();
  smmu.translateDma(
    { device: dev, requester: requester ?? (dev.streamIds[0] as number), pasid, access },
    iova,
    out,
  );
  return out;
}

function eventFields(record: Uint8Array) {
  return decodeSmmuEvent(smmuBytesToWords(record));
}

describe('domain allocation (arm_smmu_domain_alloc_paging_flags)', () => {
  it('stage 1 by default, stage 2 for a nesting parent, stage 1 for dirty tracking', () => {
    const { smmu } = setup();
    const s1 = paging(smmu);
    expect(s1).toMatchObject({ stage: 1, nestParent: false });
    expect(s1.asid).toBeGreaterThan(0);
    expect(s1.geometry).toEqual({
      apertureStart: 0,
      apertureLast: 2 ** 48 - 1,
      pageSizes: [K4, 2 ** 21, 2 ** 30],
    });
    const s2 = paging(smmu, { nestParent: true });
    expect(s2).toMatchObject({ stage: 2, nestParent: true });
    expect(s2.tag).toBe(s2.vmid);
    expect(s2.vmid).toBeGreaterThan(0);
    expect(paging(smmu, { dirtyTracking: true })).toMatchObject({ stage: 1, dirtyCapable: true });
    expect(paging(smmu, { pasid: true })).toMatchObject({ stage: 1, pasidCapable: true });
    expect(
      smmu.allocDomain({ type: 'paging', nestParent: true, dirtyTracking: true }),
    ).toMatchObject({ ok: false, errno: EOPNOTSUPP });
    expect(smmu.allocDomain({ type: 'paging', nestParent: true, pasid: true })).toMatchObject({
      ok: false,
      errno: EOPNOTSUPP,
    });
    const noHttu = setup({ dirtyTracking: false, nesting: false }).smmu;
    expect(noHttu.allocDomain({ type: 'paging', dirtyTracking: true })).toMatchObject({
      ok: false,
      errno: EOPNOTSUPP,
    });
    expect(noHttu.allocDomain({ type: 'paging', nestParent: true })).toMatchObject({
      ok: false,
      errno: EOPNOTSUPP,
    });
    expect(smmu.reservedRegions(new Device({ name: '00:01.0' }))).toEqual([
      { start: 0x8000000, last: 0x80fffff, kind: 'sw-msi' },
    ]);
    // Tags are released with the domain.
    const asid = s1.asid;
    s1.free();
    expect(paging(smmu).asid).toBe(asid);
  });

  it('nested domains: the parent, the data type, the size and the vSTE are checked', () => {
    const { smmu } = setup();
    const parent = paging(smmu, { nestParent: true });
    const data = structs.iommu_hwpt_arm_smmuv3.encode({ ste: [0x4e178fcbn, 0n] });
    const nested = (over: object) =>
      smmu.allocDomain({
        type: 'nested',
        parent,
        dataType: IOMMU_HWPT_DATA_ARM_SMMUV3,
        data,
        ...over,
      } as never);
    expect(ok(nested({}))).toMatchObject({ type: 'nested', tag: parent.vmid, pageTable: null });
    expect(nested({ parent: paging(smmu) })).toMatchObject({ ok: false, errno: EINVAL });
    expect(nested({ dataType: IOMMU_HWPT_DATA_NONE })).toMatchObject({ ok: false, errno: EINVAL });
    expect(nested({ data: data.subarray(0, 8) })).toMatchObject({ ok: false, errno: EINVAL });
    expect(nested({ pasid: true })).toMatchObject({ ok: false, errno: EOPNOTSUPP });
    const bad = structs.iommu_hwpt_arm_smmuv3.encode({ ste: [0x4e178fcbn | (1n << 58n), 0n] });
    expect(nested({ data: bad })).toMatchObject({ ok: false, errno: EIO });
  });
});

describe('attach, detach and PASIDs', () => {
  it('a device with several stream ids gets every STE; detach leaves abort STEs that fault silently', () => {
    const { smmu, memory } = setup();
    const dev = new Device({ name: 'dma-engine', streamIds: [0x100, 0x101] });
    smmu.addDevice(dev);
    const d = paging(smmu);
    d.map(0, 0x300000, K4, RW);
    ok(smmu.attach(dev, d));
    for (const sid of dev.streamIds)
      expect(SMMU_STE.decode(smmu.streamTable.readSte(sid)).Config).toBe(5);
    memory.write(0x300010, new Uint8Array([7]));
    expect(translate(smmu, dev, 0x10, ACCESS_READ, -1, 0x101)).toMatchObject({
      ok: true,
      pa: 0x300010,
    });
    smmu.detach(dev);
    for (const sid of dev.streamIds)
      expect(SMMU_STE.decode(smmu.streamTable.readSte(sid)).Config).toBe(0);
    const out = translate(smmu, dev, 0x10);
    expect(out.ok).toBe(false);
    expect(out.fault).toMatchObject({ kind: 'blocked', code: 0 });
    expect(smmu.faultLog).toHaveLength(0);
  });

  it('identity is a bypass STE', () => {
    const { smmu } = setup();
    const dev = new Device({ name: '0000:02:00.0' });
    smmu.addDevice(dev);
    ok(smmu.attach(dev, ok(smmu.allocDomain({ type: 'identity' }))));
    expect(SMMU_STE.decode(smmu.streamTable.readSte(dev.rid)).Config).toBe(SMMU_STE_CONFIG.BYPASS);
    expect(translate(smmu, dev, 0x1234567)).toMatchObject({ ok: true, pa: 0x1234567 });
  });

  it('PASIDs: substream CDs with S1CDMax, S1DSS for the RID, and the rules around them', () => {
    const { smmu } = setup();
    const dev = new Device({ name: '0000:03:00.0', pasidBits: 8 });
    smmu.addDevice(dev);
    const rid = paging(smmu);
    const pasidDomain = paging(smmu, { pasid: true });
    rid.map(0, 0x100000, K4, RW);
    pasidDomain.map(0, 0x200000, K4, RW);
    ok(smmu.attach(dev, rid));
    ok(smmu.attach(dev, pasidDomain, 5));
    const ste = SMMU_STE.decode(smmu.streamTable.readSte(dev.rid));
    expect(ste).toMatchObject({ Config: 5, S1CDMax: 8, S1DSS: 2, S1Fmt: 0 });
    expect(translate(smmu, dev, 0x10).pa).toBe(0x100010);
    expect(translate(smmu, dev, 0x10, ACCESS_READ, 5).pa).toBe(0x200010);
    // A PASID without a CD: C_BAD_CD; beyond S1CDMax: C_BAD_SUBSTREAMID.
    expect(translate(smmu, dev, 0x10, ACCESS_READ, 6).fault).toMatchObject({
      name: 'C_BAD_CD',
      kind: 'bad-config',
    });
    expect(translate(smmu, dev, 0x10, ACCESS_READ, 300).fault).toMatchObject({
      name: 'C_BAD_SUBSTREAMID',
    });
    // Stage 2 cannot take PASIDs, and the RID cannot move to stage 2 while PASIDs are attached.
    expect(smmu.attach(dev, paging(smmu, { nestParent: true }), 7)).toMatchObject({
      ok: false,
      errno: EINVAL,
    });
    expect(smmu.attach(dev, paging(smmu, { nestParent: true }))).toMatchObject({
      ok: false,
      errno: EBUSY,
    });
    // RID blocked with a PASID attached: S1DSS terminate -> F_STREAM_DISABLED for no-PASID traffic.
    smmu.detach(dev);
    expect(SMMU_STE.decode(smmu.streamTable.readSte(dev.rid))).toMatchObject({
      Config: 5,
      S1DSS: 0,
    });
    expect(translate(smmu, dev, 0x10).fault).toMatchObject({
      name: 'F_STREAM_DISABLED',
      kind: 'blocked',
    });
    expect(translate(smmu, dev, 0x10, ACCESS_READ, 5).ok).toBe(true);
    // RID identity with a PASID: S1DSS bypass.
    ok(smmu.attach(dev, ok(smmu.allocDomain({ type: 'identity' }))));
    expect(SMMU_STE.decode(smmu.streamTable.readSte(dev.rid)).S1DSS).toBe(1);
    expect(translate(smmu, dev, 0x10).pa).toBe(0x10);
    // The last PASID goes: back to the plain bypass STE.
    smmu.detach(dev, 5);
    expect(SMMU_STE.decode(smmu.streamTable.readSte(dev.rid)).Config).toBe(SMMU_STE_CONFIG.BYPASS);
    expect(translate(smmu, dev, 0x10, ACCESS_READ, 5).fault).toMatchObject({
      name: 'C_BAD_SUBSTREAMID',
    });
  });

  it('a 20-bit PASID device gets a two-level CD table', () => {
    const { smmu } = setup();
    const dev = new Device({ name: '0000:04:00.0', pasidBits: 20 });
    smmu.addDevice(dev);
    const d = paging(smmu, { pasid: true });
    d.map(0, 0x500000, K4, RW);
    ok(smmu.attach(dev, d, 0xabcde));
    expect(SMMU_STE.decode(smmu.streamTable.readSte(dev.rid))).toMatchObject({
      S1Fmt: 2,
      S1CDMax: 20,
      S1DSS: 0,
    });
    expect(translate(smmu, dev, 0x40, ACCESS_READ, 0xabcde).pa).toBe(0x500040);
  });
});

describe('granules and stage 2 alone', () => {
  it('a 64K-granule SMMU: CD TG0 64K for stage 1, S2TG/S2SL0 for stage 2, DMA through both', () => {
    const { smmu, memory } = setup({ pageSizes: [65536, 2 ** 29] });
    const a = new Device({ name: '0000:0c:00.0' });
    const b = new Device({ name: '0000:0c:00.1' });
    smmu.addDevice(a);
    smmu.addDevice(b);
    const s1 = paging(smmu);
    expect(s1.geometry.pageSizes).toEqual([65536, 2 ** 29]);
    s1.map(0x10000, 0x400000, 65536, RW);
    ok(smmu.attach(a, s1));
    const cdPtr = SMMU_STE.decode(smmu.streamTable.readSte(a.rid)).S1ContextPtr as number;
    expect(SMMU_CD.decode(smmuBytesToWords(memory.read(cdPtr, 64)))).toMatchObject({
      TG0: 1,
      T0SZ: 16,
    });
    expect(translate(smmu, a, 0x1abcd).pa).toBe(0x40abcd);
    const s2 = paging(smmu, { nestParent: true });
    s2.map(0x20000000, 0x60000000, 2 ** 29, RW);
    ok(smmu.attach(b, s2));
    expect(SMMU_STE.decode(smmu.streamTable.readSte(b.rid))).toMatchObject({
      Config: 6,
      S2TG: 1,
      S2SL0: 2,
      S2T0SZ: 16,
      S2VMID: s2.vmid,
    });
    const out = translate(smmu, b, 0x20001234, ACCESS_WRITE | ACCESS_UPDATE_AD);
    expect(out).toMatchObject({ ok: true, pa: 0x60001234 });
    expect(smmu.iotlb.entries()).toContainEqual(
      expect.objectContaining({ tag: s2.vmid, pageSize: 2 ** 29 }),
    );
    const f = translate(smmu, b, 0x1000).fault;
    expect(f).toMatchObject({ name: 'F_TRANSLATION', stage: 2 });
    expect(eventFields(f?.record as Uint8Array).fields).toMatchObject({
      S2: 1,
      CLASS: 2,
      IPA: 0x1000,
    });
    expect(smmu.attach(a, ok(smmu.allocDomain({ type: 'identity' })), 1)).toMatchObject({
      ok: false,
    });
  });
});

describe('configuration faults', () => {
  it('C_BAD_STREAMID, F_STE_FETCH and C_BAD_STE', () => {
    const { smmu, memory } = setup({}, {}, 48);
    const dev = new Device({ name: 'p', streamIds: [0x10] });
    smmu.addDevice(dev);
    const stranger = new Device({ name: 'q', streamIds: [0x2000] });
    expect(translate(smmu, stranger, 0).fault).toMatchObject({
      name: 'C_BAD_STREAMID',
      code: 0x02,
      kind: 'no-context',
    });
    expect(translate(smmu, new Device({ name: 'r', streamIds: [2 ** 20] }), 0).fault?.name).toBe(
      'C_BAD_STREAMID',
    );
    // An L1 descriptor whose leaf lies past the end of memory.
    memory.writeU64(smmu.streamTable.base + 0x30 * 8, BigInt(2 ** 48) | 9n);
    const far = new Device({ name: 's', streamIds: [0x3001] });
    expect(translate(smmu, far, 0).fault).toMatchObject({ name: 'F_STE_FETCH', code: 0x03 });
    smmu.streamTable.writeSte(0x10, SMMU_STE.encode({ V: 0, Config: 4 }));
    ok(smmu.submitCommands(cmds(encodeSmmuCommand('CFGI_STE', { SID: 0x10, Leaf: 1 }), sync())));
    const f = translate(smmu, dev, 0).fault;
    expect(f).toMatchObject({ name: 'C_BAD_STE', code: 0x04, kind: 'bad-config' });
    expect(eventFields(f?.record as Uint8Array).fields).toMatchObject({ SID: 0x10 });
    smmu.streamTable.writeSte(0x10, SMMU_STE.encode({ V: 1, Config: 2 }));
    ok(smmu.submitCommands(cmds(encodeSmmuCommand('CFGI_STE', { SID: 0x10 }))));
    expect(translate(smmu, dev, 0).fault?.name).toBe('C_BAD_STE');
    expect(smmu.faultLog.map((x) => x.name)).toEqual([
      'C_BAD_STREAMID',
      'C_BAD_STREAMID',
      'F_STE_FETCH',
      'C_BAD_STE',
      'C_BAD_STE',
    ]);
  });

  it('the STE cache holds a stale STE until CFGI_STE', () => {
    const { smmu } = setup();
    const dev = new Device({ name: 'p', streamIds: [7] });
    smmu.addDevice(dev);
    ok(smmu.attach(dev, ok(smmu.allocDomain({ type: 'identity' }))));
    expect(translate(smmu, dev, 0x5000).ok).toBe(true);
    smmu.streamTable.writeSte(7, SMMU_STE.encode({ V: 0 }));
    expect(translate(smmu, dev, 0x5000).ok).toBe(true);
    ok(
      smmu.submitCommands(cmds(encodeSmmuCommand('CFGI_STE_RANGE', { SID: 0, Range: 31 }), sync())),
    );
    expect(translate(smmu, dev, 0x5000).fault?.name).toBe('C_BAD_STE');
  });

  it('F_CD_FETCH when the CD lies outside memory', () => {
    const { smmu } = setup({}, {}, 48);
    const dev = new Device({ name: 'p', streamIds: [9] });
    smmu.addDevice(dev);
    smmu.streamTable.writeSte(9, SMMU_STE.encode({ V: 1, Config: 5, S1ContextPtr: 2 ** 48 }));
    ok(smmu.submitCommands(cmds(encodeSmmuCommand('CFGI_STE', { SID: 9 }))));
    expect(translate(smmu, dev, 0).fault).toMatchObject({ name: 'F_CD_FETCH', code: 0x09 });
  });
});

describe('translation faults and the event queue', () => {
  it('F_PERMISSION, F_ACCESS, F_ADDR_SIZE and F_TRANSLATION with RnW/S2/CLASS as the hardware sets them', () => {
    const { smmu, memory } = setup({ outputBits: 40 });
    const dev = new Device({ name: '0000:05:00.0' });
    smmu.addDevice(dev);
    const d = paging(smmu);
    d.map(0x1000, 0x10000, K4, IOMMU_READ);
    d.map(0x2000, 0x20000, K4, RW);
    d.map(0x3000, 0x30000, K4, RW);
    ok(smmu.attach(dev, d));
    const perm = translate(smmu, dev, 0x1008, ACCESS_WRITE);
    expect(perm.fault).toMatchObject({
      name: 'F_PERMISSION',
      code: 0x13,
      kind: 'permission',
      stage: 1,
    });
    expect(eventFields(perm.fault?.record as Uint8Array).fields).toMatchObject({
      RnW: 0,
      S2: 0,
      InputAddr: 0x1008,
    });
    const table = d.pageTable as ArmLpaePageTable;
    const entry = table.walk(0x2000).at(-1)?.entryAddress as number;
    memory.writeU32(entry, memory.readU32(entry) & ~(1 << 10));
    expect(translate(smmu, dev, 0x2000).fault).toMatchObject({ name: 'F_ACCESS', code: 0x12 });
    const e3 = table.walk(0x3000).at(-1)?.entryAddress as number;
    memory.writeU32(e3 + 4, 0x100); // PA bit 40: beyond the 40-bit output size
    expect(translate(smmu, dev, 0x3000).fault).toMatchObject({ name: 'F_ADDR_SIZE', code: 0x11 });
    expect(translate(smmu, dev, 0x9000).fault).toMatchObject({ name: 'F_TRANSLATION', code: 0x10 });
    // Input beyond the CD's T0SZ range is a translation fault too.
    expect(translate(smmu, dev, 2 ** 48).fault?.name).toBe('F_TRANSLATION');
    expect(smmu.evtq.count).toBe(0); // the driver drained it
    expect(BigInt(smmu.evtq.prod)).toBe(smmu.controlRegisters().EVTQ_PROD);
  });

  it('the event queue overflows when nobody drains it', () => {
    const { smmu } = setup({}, { eventQueueLog2: 1 });
    smmu.autoDrainEvents = false;
    const ghost = new Device({ name: 'ghost', streamIds: [0x4000] });
    for (let i = 0; i < 3; i++) translate(smmu, ghost, i * K4);
    expect(smmu.evtq.count).toBe(2);
    expect(smmu.evtq.overflowed).toBe(true);
    expect(smmu.faultLog).toHaveLength(2);
    const first = smmu.evtq.pop() as bigint[];
    expect(decodeSmmuEvent(first)).toMatchObject({
      name: 'C_BAD_STREAMID',
      fields: { SID: 0x4000 },
    });
    smmu.evtq.acknowledgeOverflow();
    expect(smmu.evtq.overflowed).toBe(false);
  });
});

describe('IOTLB and device TLB', () => {
  it('a stale IOTLB entry serves DMA until TLBI; the driver unmap flushes by itself', () => {
    const { smmu, memory, dma } = setup();
    const dev = new Device({ name: '0000:06:00.0' });
    smmu.addDevice(dev);
    const d = paging(smmu);
    d.map(0x4000, 0x40000, K4, RW);
    ok(smmu.attach(dev, d));
    memory.write(0x40000, new Uint8Array([0xaa]));
    memory.write(0x50000, new Uint8Array([0xbb]));
    expect(dma.run(dev, smmu, { iova: 0x4000, length: 1 }).status).toBe('done');
    const table = d.pageTable as ArmLpaePageTable;
    expect(table.unmap(0x4000, K4)).toBe(K4); // raw table change, no flush
    const stale = dma.run(dev, smmu, { iova: 0x4000, length: 1 });
    expect(stale).toMatchObject({ status: 'done', cachedPages: 1 });
    expect(table.map(0x4000, 0x50000, K4, RW)).toBe(K4);
    expect([...dma.run(dev, smmu, { iova: 0x4000, length: 1 }).data]).toEqual([0xaa]);
    ok(
      smmu.submitCommands(
        cmds(
          encodeSmmuCommand('TLBI_NH_VA', { ASID: d.asid, VMID: 0, Leaf: 1, Address: 0x4000 }),
          sync(),
        ),
      ),
    );
    expect([...dma.run(dev, smmu, { iova: 0x4000, length: 1 }).data]).toEqual([0xbb]);
    // A range TLBI (TG 4K, NUM 1, SCALE 1 = 4 pages) and NH_ASID.
    table.unmap(0x4000, K4);
    ok(
      smmu.submitCommands(
        cmds(
          encodeSmmuCommand('TLBI_NH_VA', {
            ASID: d.asid,
            TG: 1,
            NUM: 1,
            SCALE: 1,
            Address: 0x2000,
          }),
        ),
      ),
    );
    expect(dma.run(dev, smmu, { iova: 0x4000, length: 1 }).status).toBe('fault');
    // The domain's own unmap flushes: no stale hit.
    d.map(0x8000, 0x60000, K4, RW);
    expect(dma.run(dev, smmu, { iova: 0x8000, length: 1 }).status).toBe('done');
    expect(d.unmap(0x8000, K4)).toBe(K4);
    expect(dma.run(dev, smmu, { iova: 0x8000, length: 1 }).status).toBe('fault');
    expect(smmu.recentCommands().map((c) => c.name)).toContain('TLBI_NH_VA');
  });

  it('ATS: the device TLB keeps a translation until ATC_INV; the driver invalidates it on unmap', () => {
    const { smmu, dma } = setup();
    const dev = new Device({ name: '0000:07:00.0', ats: true });
    smmu.addDevice(dev);
    const d = paging(smmu);
    d.map(0x4000, 0x40000, 2 * K4, RW);
    ok(smmu.attach(dev, d));
    expect(SMMU_STE.decode(smmu.streamTable.readSte(dev.rid)).EATS).toBe(1);
    dma.run(dev, smmu, { iova: 0x4000, length: 8 });
    expect(smmu.deviceTlb.entries()).toHaveLength(1);
    (d.pageTable as ArmLpaePageTable).unmap(0x4000, K4);
    ok(smmu.submitCommands(cmds(encodeSmmuCommand('TLBI_NH_ASID', { ASID: d.asid }), sync())));
    expect(translate(smmu, dev, 0x4000)).toMatchObject({ ok: true, fromCache: true }); // the ATC still has it
    ok(smmu.submitCommands(cmds(encodeSmmuCommand('ATC_INV', { SID: dev.rid, Size: 52 }), sync())));
    expect(translate(smmu, dev, 0x4000).ok).toBe(false);
    dma.run(dev, smmu, { iova: 0x5000, length: 8 });
    expect(d.unmap(0x5000, K4)).toBe(K4);
    expect(translate(smmu, dev, 0x5000).ok).toBe(false);
    const names = smmu.recentCommands().map((c) => c.name);
    expect(names.slice(-4)).toEqual(['TLBI_NH_VA', 'CMD_SYNC', 'ATC_INV', 'CMD_SYNC']);
  });

  it('dirty tracking: DMA writes mark pages dirty; harvesting clears and flushes', () => {
    const { smmu, dma } = setup();
    const dev = new Device({ name: '0000:08:00.0' });
    smmu.addDevice(dev);
    const d = paging(smmu, { dirtyTracking: true });
    expect(d.setDirtyTracking(true)).toBe(0);
    d.map(0, 0x100000, 4 * K4, RW);
    ok(smmu.attach(dev, d));
    expect(
      SMMU_CD.decode(
        smmuBytesToWords(
          smmu.env.memory.read(
            SMMU_STE.decode(smmu.streamTable.readSte(dev.rid)).S1ContextPtr as number,
            64,
          ),
        ),
      ),
    ).toMatchObject({ HA: 1, HD: 1 });
    const bitmap = () => ({ baseIova: 0, pageSize: K4, bits: new Uint8Array(1) });
    const b0 = bitmap();
    expect(d.readAndClearDirty(0, 4 * K4, b0)).toBe(4); // freshly mapped writable pages start dirty
    dma.run(dev, smmu, { iova: K4, length: 4 }); // a read keeps it clean
    dma.run(dev, smmu, { iova: 2 * K4, data: new Uint8Array(4) });
    const b1 = bitmap();
    expect(d.readAndClearDirty(0, 4 * K4, b1)).toBe(1);
    expect(b1.bits[0]).toBe(0b100);
    dma.run(dev, smmu, { iova: 2 * K4, data: new Uint8Array(4) }); // walks again after the flush
    const b2 = bitmap();
    expect(d.readAndClearDirty(0, 4 * K4, b2)).toBe(1);
    expect(paging(smmu).setDirtyTracking(true)).toBe(-EOPNOTSUPP);
  });
});

describe('nested translation (stage 1 in guest memory over a stage-2 parent)', () => {
  // Guest RAM at IPA 0x80000000 backed by host PA 0x200000000.
  const IPA = 0x8000_0000;
  const HPA = 0x2_0000_0000;

  function guest() {
    const env = setup();
    const { smmu, memory } = env;
    const parent = paging(smmu, { nestParent: true });
    // 4K stage-2 leaves (a 2M block could not be unmapped a page at a time).
    expect(parent.map(IPA, HPA, 2 ** 21 - K4, RW)).toBe(2 ** 21 - K4);
    const g = (ipa: number, v: bigint) => memory.writeU64(HPA + (ipa - IPA), v);
    // Guest stage 1: TTB0 at IPA+0x1000, tables at +0x2000.., 4K, 48-bit; IOVA 0x8080604567 -> IPA+0x10567.
    g(IPA + 0x1000 + 1 * 8, BigInt(IPA + 0x2000) | 3n);
    g(IPA + 0x2000 + 2 * 8, BigInt(IPA + 0x3000) | 3n);
    g(IPA + 0x3000 + 3 * 8, BigInt(IPA + 0x4000) | 3n);
    g(IPA + 0x4000 + 4 * 8, BigInt(IPA + 0x10000) | 0x743n); // page, AP[1], SH, AF
    const cd = SMMU_CD.encode({
      T0SZ: 16,
      TG0: 0,
      IPS: 5,
      EPD1: 1,
      V: 1,
      AA64: 1,
      R: 1,
      A: 1,
      ASID: 0x42,
      TTB0: IPA + 0x1000,
    });
    for (let i = 0; i < cd.length; i++) g(IPA + 0x800 + i * 8, cd[i] as bigint);
    const vste = (w0: bigint, w1 = 0n) =>
      ok(
        smmu.allocDomain({
          type: 'nested',
          parent,
          dataType: IOMMU_HWPT_DATA_ARM_SMMUV3,
          data: structs.iommu_hwpt_arm_smmuv3.encode({ ste: [w0, w1] }),
        }),
      ) as IommuDomain;
    const dev = new Device({ name: '0000:09:00.0', ats: true });
    smmu.addDevice(dev);
    return { ...env, parent, vste, dev, g };
  }

  it('builds the nested STE (Config 7, MEV, parent S2 and VMID) and translates through both stages', () => {
    const { smmu, parent, vste, dev, memory } = guest();
    const nested = vste(
      SMMU_STE.encode({ V: 1, Config: 5, S1ContextPtr: IPA + 0x800 })[0] as bigint,
      1n << 28n,
    );
    ok(smmu.attach(dev, nested));
    const ste = SMMU_STE.decode(smmu.streamTable.readSte(dev.rid));
    expect(ste).toMatchObject({
      V: 1,
      Config: 7,
      MEV: 1,
      EATS: 1,
      S1ContextPtr: IPA + 0x800,
      S2VMID: parent.vmid,
      S2T0SZ: 16,
      S2SL0: 2,
      S2AA64: 1,
      S2PTW: 1,
      S2R: 1,
      S2FWB: 1,
      S2TTB: (parent.pageTable as ArmLpaePageTable).root,
    });
    memory.write(HPA + 0x10567, new Uint8Array([0x5a]));
    const out = translate(smmu, dev, 0x8080604567);
    expect(out).toMatchObject({ ok: true, pa: HPA + 0x10567 });
    expect(smmu.iotlb.entries()).toContainEqual(
      expect.objectContaining({ tag: parent.vmid, asid: 0x42, pageSize: K4 }),
    );
    // The parent's unmap issues TLBI_S2_IPA and TLBI_NH_ALL for its VMID.
    parent.unmap(IPA + 0x10000, K4);
    const names = smmu.recentCommands().map((c) => c.name);
    expect(names).toContain('TLBI_S2_IPA');
    expect(names).toContain('TLBI_NH_ALL');
    smmu.deviceTlb.invalidateAll();
    const f = translate(smmu, dev, 0x8080604567).fault;
    expect(f).toMatchObject({ name: 'F_TRANSLATION', stage: 2 });
    expect(eventFields(f?.record as Uint8Array).fields).toMatchObject({
      S2: 1,
      CLASS: 2,
      IPA: IPA + 0x10000,
      InputAddr: 0x8080604567,
    });
  });

  it('stage-2 faults on a stage-1 table fetch (CLASS TT) and on the CD fetch (CLASS CD)', () => {
    const { smmu, parent, vste, dev } = guest();
    ok(
      smmu.attach(
        dev,
        vste(SMMU_STE.encode({ V: 1, Config: 5, S1ContextPtr: IPA + 0x800 })[0] as bigint),
      ),
    );
    // Move the L2 table out of the stage-2 window.
    const { g } = { g: (ipa: number, v: bigint) => smmu.env.memory.writeU64(HPA + (ipa - IPA), v) };
    g(IPA + 0x2000 + 2 * 8, BigInt(IPA + 0x40_0000) | 3n);
    const tt = translate(smmu, dev, 0x8080604567).fault;
    expect(tt).toMatchObject({ name: 'F_TRANSLATION', stage: 2 });
    expect(eventFields(tt?.record as Uint8Array).fields).toMatchObject({
      S2: 1,
      CLASS: 1,
      IPA: IPA + 0x40_0000,
    });
    // The CD itself beyond stage 2.
    const other = new Device({ name: '0000:0a:00.0' });
    smmu.addDevice(other);
    ok(
      smmu.attach(
        other,
        vste(SMMU_STE.encode({ V: 1, Config: 5, S1ContextPtr: 0x1000_0000 })[0] as bigint),
      ),
    );
    const cdf = translate(smmu, other, 0x1000).fault;
    expect(eventFields(cdf?.record as Uint8Array).fields).toMatchObject({
      S2: 1,
      CLASS: 0,
      IPA: 0x1000_0000,
    });
    expect(parent.vmid).toBeGreaterThan(0);
  });

  it('vSTE bypass is the parent stage 2 alone; vSTE V=0 aborts', () => {
    const { smmu, vste, dev } = guest();
    ok(smmu.attach(dev, vste(1n | (4n << 1n))));
    expect(SMMU_STE.decode(smmu.streamTable.readSte(dev.rid))).toMatchObject({
      Config: 6,
      EATS: 0,
    });
    expect(translate(smmu, dev, IPA + 0x123).pa).toBe(HPA + 0x123);
    ok(smmu.attach(dev, vste(0n)));
    expect(SMMU_STE.decode(smmu.streamTable.readSte(dev.rid)).Config).toBe(0);
    expect(translate(smmu, dev, IPA).fault?.kind).toBe('blocked');
  });
});

describe('stalls and PRI', () => {
  it('a stalling platform device: stall event, page request with STAG, RESUME retry, DMA resumes', () => {
    const { smmu, dma, memory } = setup();
    const dev = new Device({ name: 'accel', streamIds: [0x40], stall: true });
    smmu.addDevice(dev);
    const d = paging(smmu, { iopf: true });
    ok(smmu.attach(dev, d));
    const cd = SMMU_CD.decode(
      smmuBytesToWords(
        memory.read(SMMU_STE.decode(smmu.streamTable.readSte(0x40)).S1ContextPtr as number, 64),
      ),
    );
    expect(cd.S).toBe(1);
    expect(SMMU_STE.decode(smmu.streamTable.readSte(0x40)).S1STALLD).toBe(0);
    const requests: unknown[] = [];
    smmu.onPageRequest = (r) => requests.push(r);
    const r = dma.run(dev, smmu, { iova: 0x7000, data: new Uint8Array([1, 2]) });
    expect(r.status).toBe('page-request');
    if (r.status !== 'page-request') return;
    expect(r.request).toMatchObject({
      source: 'stall',
      requester: 0x40,
      pasid: -1,
      lastPage: true,
      perm: IOMMU_PGFAULT_PERM_WRITE,
      address: 0x7000,
    });
    expect(requests).toHaveLength(1);
    const evt = eventFields(r.fault.record);
    expect(evt.fields).toMatchObject({ Stall: 1, STAG: r.request.groupId, RnW: 0 });
    expect(smmu.pendingStallTags()).toEqual([r.request.groupId]);
    d.map(0x7000, 0x90000, K4, RW);
    smmu.completePageRequest(r.request, 'success');
    expect(smmu.recentCommands().at(-1)).toMatchObject({
      name: 'RESUME',
      fields: { Resp: 1, STAG: r.request.groupId, SID: 0x40 },
    });
    expect(smmu.pendingStallTags()).toEqual([]);
    expect(dma.resume(r.ticket).status).toBe('done');
    expect([...memory.read(0x90000, 2)]).toEqual([1, 2]);
  });

  it('a stall nobody handles is terminated by the driver (RESUME abort)', () => {
    const { smmu, dma } = setup();
    const dev = new Device({ name: 'accel', streamIds: [0x41], stall: true });
    smmu.addDevice(dev);
    ok(smmu.attach(dev, paging(smmu)));
    const r = dma.run(dev, smmu, { iova: 0x7000, length: 4 });
    expect(r.status).toBe('fault');
    expect(smmu.recentCommands().at(-1)).toMatchObject({ name: 'RESUME', fields: { Resp: 2 } });
    expect(smmu.pendingStallTags()).toEqual([]);
  });

  it('PCI PRI: a PRI queue entry, denied by the 6.17 driver with PRI_RESP', () => {
    const { smmu, dma } = setup({}, { priQueueLog2: 2 });
    smmu.autoDrainEvents = false;
    const dev = new Device({ name: '0000:0b:00.0', ats: true, pri: true, pasidBits: 4 });
    smmu.addDevice(dev);
    const d = paging(smmu, { iopf: true });
    ok(smmu.attach(dev, d, 3));
    const r = dma.run(dev, smmu, { iova: 0x7f0000001000, length: 4, pasid: 3 });
    expect(r.status).toBe('fault');
    const entry = SMMU_PRI_ENTRY.decode(smmu.priq.pop() as bigint[]);
    expect(entry).toMatchObject({
      SID: dev.rid,
      SSID: 3,
      SSV: 1,
      Read: 1,
      Write: 0,
      Last: 1,
      Address: 0x7f0000001000,
    });
    expect(smmu.recentCommands().at(-1)).toMatchObject({
      name: 'PRI_RESP',
      fields: { Resp: 0, PRGIndex: entry.PRGIndex, SID: dev.rid },
    });
    expect(r.status === 'fault' && r.fault.name).toBe('PRI page request denied');
    expect(IOMMU_PGFAULT_PERM_READ).toBe(1);
  });
});

describe('command queue', () => {
  it('an illegal command stops the queue with CERROR_ILL: EIO and the number consumed', () => {
    const { smmu } = setup();
    const r = smmu.submitCommands(cmds(sync(), [0x7fn, 0n], sync()));
    expect(r).toMatchObject({ ok: false, errno: EIO, consumed: 1 });
    expect((Number(smmu.controlRegisters().CMDQ_CONS) >> 24) & 0x7f).toBe(1);
    expect(smmu.submitCommands(new Uint8Array(8))).toMatchObject({ ok: false, errno: EINVAL });
    const all = [
      encodeSmmuCommand('PREFETCH_CONFIG', { SID: 1 }),
      encodeSmmuCommand('PREFETCH_ADDR', { SID: 1 }),
      encodeSmmuCommand('CFGI_CD_ALL', { SID: 1 }),
      encodeSmmuCommand('TLBI_NH_ALL', { VMID: 0 }),
      encodeSmmuCommand('TLBI_NH_VAA', { VMID: 0, Address: 0x1000 }),
      encodeSmmuCommand('TLBI_EL2_ALL'),
      encodeSmmuCommand('TLBI_EL2_ASID', { ASID: 1 }),
      encodeSmmuCommand('TLBI_EL2_VA', { ASID: 1, Address: 0x1000 }),
      encodeSmmuCommand('TLBI_EL2_VAA', { Address: 0x1000 }),
      encodeSmmuCommand('TLBI_S12_VMALL', { VMID: 1 }),
      encodeSmmuCommand('TLBI_S2_IPA', { VMID: 1, Address: 0x1000 }),
      encodeSmmuCommand('TLBI_NSNH_ALL'),
      encodeSmmuCommand('STALL_TERM', { SID: 1 }),
      encodeSmmuCommand('PRI_RESP', { SID: 1 }),
      sync(),
    ];
    expect(smmu.submitCommands(cmds(...all))).toEqual({ ok: true, value: all.length });
    expect((Number(smmu.controlRegisters().CMDQ_CONS) >> 24) & 0x7f).toBe(0);
  });
});

describe('QEMU qtest stage-1 chain (vector 3)', () => {
  it('translates 0x8080604567 to 0x4ecba567 through STE, CD and four levels in memory', () => {
    const { memory, smmu } = setup();
    const dev = new Device({ name: 'qtest', streamIds: [0] });
    smmu.addDevice(dev);
    const q = (pa: number, v: bigint) => memory.writeU64(pa, v);
    q(0x4e4d0000 + 1 * 8, 0x8000_0000_4e4d_1003n);
    q(0x4e4d1000 + 2 * 8, 0x8000_0000_4e4d_2003n);
    q(0x4e4d2000 + 3 * 8, 0x8000_0000_4e4d_3003n);
    q(0x4e4d3000 + 4 * 8, 0x0400_0000_4ecb_a763n);
    q(0x4e178fc0, 0x1e206204_c0000010n);
    q(0x4e178fc8, 0x4e4d0001n);
    const ste = [0x4e178fcbn, 0n, 0x000d0094_00000000n, 0x4e4d0000n, 0n, 0n, 0n, 0n];
    smmu.streamTable.writeSte(0, ste);
    ok(smmu.submitCommands(cmds(encodeSmmuCommand('CFGI_STE', { SID: 0, Leaf: 1 }))));
    const out = newDmaTranslation();
    expect(
      smmu.translateDma(
        { device: dev, requester: 0, pasid: -1, access: ACCESS_READ },
        0x8080604567,
        out,
      ),
    ).toBe(true);
    expect(out.pa).toBe(0x4ecba567);
    expect(out.fromCache).toBe(false);
    expect(
      smmu.translateDma(
        { device: dev, requester: 0, pasid: -1, access: ACCESS_READ },
        0x8080604567,
        out,
      ),
    ).toBe(true);
    expect(out.fromCache).toBe(true);
    expect(smmu.iotlb.entries()).toContainEqual(
      expect.objectContaining({ tag: 0, asid: 0x1e20, pageSize: 4096 }),
    );
  });
});

describe('paging domains through the driver model', () => {
  it('stage-1 domain: STE and CD as Linux writes them, DMA through DmaEngine', () => {
    const { memory, smmu, dma } = setup();
    const dev = new Device({ name: '0000:01:00.0' });
    smmu.addDevice(dev);
    const domain = ok(smmu.allocDomain({ type: 'paging' })) as Smmuv3Domain;
    expect(domain.stage).toBe(1);
    expect(domain.tag).toBe(domain.asid);
    expect(domain.map(0x10000, 0x2000000, 0x2000, RW | IOMMU_CACHE)).toBe(0x2000);
    ok(smmu.attach(dev, domain));
    const ste = SMMU_STE.decode(smmu.streamTable.readSte(dev.rid));
    expect(ste).toMatchObject({
      V: 1,
      Config: SMMU_STE_CONFIG.S1_TRANS,
      S1DSS: 2,
      S1CIR: 1,
      S1COR: 1,
      S1CSH: 3,
      EATS: 0,
    });
    const cdWords = smmuBytesToWords(memory.read(ste.S1ContextPtr as number, 64));
    expect(SMMU_CD.decode(cdWords)).toMatchObject({
      V: 1,
      T0SZ: 16,
      TG0: 0,
      IPS: 5,
      AA64: 1,
      R: 1,
      A: 1,
      ASET: 1,
      EPD1: 1,
      ASID: domain.asid,
      TTB0: (domain.pageTable as ArmLpaePageTable).root,
      MAIR_LO: 0xf404ff44,
    });
    memory.write(0x2000000 + 0x10, new Uint8Array([1, 2, 3]));
    const read = dma.run(dev, smmu, { iova: 0x10010, length: 3 });
    expect(read).toMatchObject({ status: 'done', bytes: 3 });
    expect([...read.data]).toEqual([1, 2, 3]);
    const write = dma.run(dev, smmu, { iova: 0x11ffe, data: new Uint8Array([9, 9]) });
    expect(write.status).toBe('done');
    expect([...memory.read(0x2001ffe, 2)]).toEqual([9, 9]);
    const fault = dma.run(dev, smmu, { iova: 0x20000, length: 4 });
    expect(fault.status).toBe('fault');
    if (fault.status === 'fault') {
      expect(fault.fault).toMatchObject({
        name: 'F_TRANSLATION',
        code: 0x10,
        stage: 1,
        requester: dev.rid,
      });
      const evt = decodeSmmuEvent(smmuBytesToWords(fault.fault.record));
      expect(evt.fields).toMatchObject({ SID: dev.rid, RnW: 1, S2: 0, InputAddr: 0x20000 });
    }
    expect(smmu.faultLog).toHaveLength(1);
  });
});
