import { describe, expect, it } from 'vitest';
import {
  ACCESS_READ,
  type ArmLpaePageTable,
  Device,
  DmaEngine,
  decodeSmmuEvent,
  encodeSmmuCommand,
  FrameAllocator,
  IOMMU_CACHE,
  IOMMU_READ,
  IOMMU_WRITE,
  newDmaTranslation,
  PhysicalMemory,
  SMMU_CD,
  SMMU_STE,
  SMMU_STE_CONFIG,
  type Smmuv3Domain,
  Smmuv3Iommu,
  type Smmuv3Options,
  smmuBytesToWords,
  smmuWordsToBytes,
} from '../src/index.js';

const RW = IOMMU_READ | IOMMU_WRITE;

function setup(
  options: Smmuv3Options = {},
  config: Partial<ConstructorParameters<typeof Smmuv3Iommu>[0]> = {},
) {
  const memory = new PhysicalMemory();
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

function commands(...list: [bigint, bigint][]): Uint8Array {
  return smmuWordsToBytes(list.flat());
}

const ctxOf = (device: Device, access = ACCESS_READ, pasid = -1) => ({
  device,
  requester: device.streamIds[0] as number,
  pasid,
  access,
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
    expect(SMMU_STE.decode(ste)).toMatchObject({
      V: 1,
      Config: 5,
      S1ContextPtr: 0x4e178fc0,
      S2T0SZ: 20,
      S2SL0: 2,
      S2PS: 5,
      S2AA64: 1,
    });
    expect(SMMU_CD.decode([0x1e206204_c0000010n, 0x4e4d0001n])).toMatchObject({
      T0SZ: 16,
      TG0: 0,
      EPD1: 1,
      V: 1,
      IPS: 4,
      AA64: 1,
      R: 1,
      A: 1,
      ASID: 0x1e20,
      TTB0: 0x4e4d0000,
      NSCFG0: 1,
    });
    smmu.streamTable.writeSte(0, ste);
    ok(smmu.submitCommands(commands(encodeSmmuCommand('CFGI_STE', { SID: 0, Leaf: 1 }))));
    const out = newDmaTranslation();
    expect(smmu.translateDma(ctxOf(dev), 0x8080604567, out)).toBe(true);
    expect(out.pa).toBe(0x4ecba567);
    expect(out.fromCache).toBe(false);
    expect(smmu.translateDma(ctxOf(dev), 0x8080604567, out)).toBe(true);
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
