import { EINVAL, EOPNOTSUPP } from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { Device } from '../src/device.js';
import { DmaEngine } from '../src/dma.js';
import {
  AMD_HT_RANGE,
  AMD_MSI_RANGE,
  AmdIommu,
  decodeDte,
  EVENT_FLAG_PR,
  EVENT_FLAG_RW,
  EVENT_ILLEGAL_COMMAND,
  EVENT_IO_PAGE_FAULT,
  encodeCompletionWait,
  encodeInvalidateDevtabEntry,
  encodeInvalidateIommuAll,
  encodeInvalidateIommuPages,
  encodeInvalidateIotlbPages,
} from '../src/iommu/amd/index.js';
import {
  type DmaContext,
  type IommuDomain,
  newDmaTranslation,
  type PageRequest,
} from '../src/iommu/iommu.js';
import { FrameAllocator, PhysicalMemory } from '../src/memory/index.js';
import { AmdV1PageTable, walkAmdV1 } from '../src/pagetable/amd-v1.js';
import {
  ACCESS_READ,
  ACCESS_UPDATE_AD,
  ACCESS_WRITE,
  IOMMU_READ,
  IOMMU_WRITE,
  newTranslation,
} from '../src/pagetable/format.js';
import { Stage2TableMemory } from '../src/pagetable/nested.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const M = 1 << 20;

function setup(overrides: Partial<ConstructorParameters<typeof AmdIommu>[0]> = {}) {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(memory, { base: 2 ** 36, size: 2 ** 30 });
  const iommu = new AmdIommu({ name: 'amd0', model: 'amd', ...overrides }, { memory, allocator });
  const dev = new Device({ name: '0000:00:02.0' });
  iommu.addDevice(dev);
  return { memory, allocator, iommu, dev, dma: new DmaEngine(memory) };
}

function paging(iommu: AmdIommu, spec: Record<string, unknown> = {}): IommuDomain {
  const r = iommu.allocDomain({ type: 'paging', ...spec });
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

function ctx(device: Device, access: number, pasid = -1): DmaContext {
  return { device, requester: device.rid, pasid, access };
}

describe('AMD-Vi: what the driver reports', () => {
  it('hw_info is type NONE with no data; DIRTY_TRACKING follows HDSUP', () => {
    const { iommu, dev } = setup();
    expect(iommu.hwInfo(dev)).toEqual({
      type: 0,
      data: new Uint8Array(0),
      capabilities: 1n,
      maxPasidLog2: 0,
    });
    const plain = setup({ dirtyTracking: false });
    expect(plain.iommu.hwInfo(plain.dev).capabilities).toBe(0n);
    expect(iommu.decodedRegisters().EFR).toMatchObject({
      HATS: 0,
      HDSUP: true,
      HASUP: true,
      PPR: true,
      IA: true,
    });
    expect(iommu.registers().EFR2).toBe(0n);
  });

  it('reserves the MSI window and the HyperTransport hole; v1 aperture is PM_LEVEL_SIZE(hpt_level)', () => {
    const { iommu, dev } = setup();
    expect(iommu.reservedRegions(dev)).toEqual([AMD_MSI_RANGE, AMD_HT_RANGE]);
    expect(AMD_HT_RANGE).toEqual({ start: 0xfd00000000, last: 0xffffffffff, kind: 'reserved' });
    const g = iommu.domainGeometry(dev);
    expect(g.apertureStart).toBe(0);
    expect(g.apertureLast).toBe(2 ** 48 - 1);
    expect(g.pageSizes[0]).toBe(4096);
    expect(g.pageSizes).not.toContain(2 ** 39);
    expect(setup({ inputBits: 57 }).iommu.domainGeometry().apertureLast).toBe(2 ** 53 - 1);
  });

  it('domain allocation follows amd_iommu_domain_alloc_paging_flags', () => {
    const { iommu } = setup();
    const no = (spec: Parameters<AmdIommu['allocDomain']>[0]) => {
      const r = iommu.allocDomain(spec);
      return r.ok ? 0 : r.errno;
    };
    expect(no({ type: 'paging', nestParent: true })).toBe(EOPNOTSUPP);
    expect(no({ type: 'paging', pasid: true })).toBe(EOPNOTSUPP);
    expect(no({ type: 'paging', dirtyTracking: true, pasid: true })).toBe(EOPNOTSUPP);
    expect(no({ type: 'paging', dirtyTracking: true })).toBe(0);
    expect(
      setup({ dirtyTracking: false }).iommu.allocDomain({ type: 'paging', dirtyTracking: true }).ok,
    ).toBe(false);
    const parent = paging(iommu);
    expect(no({ type: 'nested', parent, dataType: 3, data: new Uint8Array(32) })).toBe(EOPNOTSUPP);
    const a = paging(iommu);
    expect(a.tag).not.toBe(parent.tag);
    expect(a.pageTable?.geometry.levels).toBe(3);
  });
});

describe('AMD-Vi: DTEs and DMA', () => {
  it('attach writes the DTE the driver writes; blocked is V only; identity is Mode 0', () => {
    const { iommu, dev } = setup();
    expect(decodeDte(iommu.deviceTableEntry(dev.rid))).toMatchObject({
      valid: true,
      translationValid: true,
      mode: 0,
    });
    const d = paging(iommu);
    expect(iommu.attach(dev, d).ok).toBe(true);
    const dte = decodeDte(iommu.deviceTableEntry(dev.rid));
    expect(dte).toMatchObject({
      valid: true,
      translationValid: true,
      mode: 3,
      hostRoot: d.pageTable?.root,
      ir: true,
      iw: true,
      domainId: d.tag,
      had: 0,
      ppr: false,
      iotlb: false,
    });
    iommu.detach(dev);
    expect(iommu.deviceTableEntry(dev.rid)).toEqual([1n, 0n, 0n, 0n]);
    const id = iommu.allocDomain({ type: 'identity' });
    if (!id.ok) throw new Error('identity');
    iommu.attach(dev, id.value);
    expect(decodeDte(iommu.deviceTableEntry(dev.rid))).toMatchObject({
      mode: 0,
      translationValid: true,
      ir: true,
    });
    expect(iommu.attach(dev, d, 1).ok).toBe(false);
  });

  it('DMA through the v1 table; faults go to the event log', () => {
    const { iommu, dev, dma, memory } = setup();
    const d = paging(iommu);
    iommu.attach(dev, d);
    expect(d.map(0x100000, 0x4000_0000, 2 * M, RW)).toBe(2 * M);
    memory.write(0x4000_0010, new Uint8Array([1, 2, 3]));
    const r = dma.run(dev, iommu, { iova: 0x100010, length: 3 });
    expect(r.status).toBe('done');
    expect([...r.data]).toEqual([1, 2, 3]);
    const w = dma.run(dev, iommu, { iova: 0x8000_0000, data: new Uint8Array([9]) });
    expect(w.status).toBe('fault');
    if (w.status !== 'fault') return;
    expect(w.fault).toMatchObject({
      model: 'amd',
      name: 'IO_PAGE_FAULT',
      code: 2,
      kind: 'not-present',
    });
    const [event] = iommu.readEventLog();
    expect(event).toEqual({
      code: EVENT_IO_PAGE_FAULT,
      deviceId: dev.rid,
      tag: d.tag,
      flags: EVENT_FLAG_RW | 4,
      address: 0x8000_0000,
    });
    d.map(0x9000_0000, 0x5000_0000, 4096, IOMMU_READ);
    const p = dma.run(dev, iommu, { iova: 0x9000_0000, data: new Uint8Array([9]) });
    expect(p.status === 'fault' && p.fault.kind).toBe('permission');
    expect(iommu.readEventLog()[0]?.flags).toBe(EVENT_FLAG_PR | EVENT_FLAG_RW | 4);
    expect(iommu.faultLog.length).toBe(2);
  });

  it('a blocked device (V=1, TV=0) and a device never attached cannot DMA', () => {
    const { iommu, dev, dma } = setup();
    expect(dma.run(dev, iommu, { iova: 0, length: 4 }).status).toBe('fault');
    const d = paging(iommu);
    iommu.attach(dev, d);
    iommu.detach(dev);
    const r = dma.run(dev, iommu, { iova: 0, length: 4 });
    expect(r.status === 'fault' && r.fault.kind).toBe('blocked');
  });

  it('stale IOTLB: a raw table change is not seen until INVALIDATE_IOMMU_PAGES', () => {
    const { iommu, dev } = setup();
    const d = paging(iommu);
    iommu.attach(dev, d);
    d.map(0x200000, 0x1000_0000, 4096, RW);
    const t = newDmaTranslation();
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0x200000, t)).toBe(true);
    expect(t.fromCache).toBe(false);
    // The raw table changes without a flush: the IOTLB still answers.
    (d.pageTable as AmdV1PageTable).unmap(0x200000, 4096);
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0x200000, t)).toBe(true);
    expect(t.fromCache).toBe(true);
    expect(t.pa).toBe(0x1000_0000);
    const other = encodeInvalidateIommuPages({ domainId: d.tag + 1 });
    expect(iommu.submitCommands(other)).toEqual({ ok: true, value: 1 });
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0x200000, t)).toBe(true);
    const cmds = new Uint8Array(32);
    cmds.set(encodeInvalidateIommuPages({ domainId: d.tag, address: 0x200000, size: 4096 }), 0);
    cmds.set(encodeCompletionWait({ address: 0x2000, data: 0xfeedn, store: true }), 16);
    expect(iommu.submitCommands(cmds)).toEqual({ ok: true, value: 2 });
    expect(iommu.env.memory.readU64(0x2000)).toBe(0xfeedn);
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0x200000, t)).toBe(false);
    // Domain.unmap flushes as the driver does.
    d.map(0x300000, 0x2000_0000, 4096, RW);
    iommu.translateDma(ctx(dev, ACCESS_READ), 0x300000, t);
    d.unmap(0x300000, 4096);
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0x300000, t)).toBe(false);
    expect(
      iommu.commandLog.some((c) => c.op === 'INVALIDATE_IOMMU_PAGES' && c.domainId === d.tag),
    ).toBe(true);
  });

  it('stale DTE: the cached entry is used until INVALIDATE_DEVTAB_ENTRY', () => {
    const { iommu, dev, memory } = setup();
    const d = paging(iommu);
    iommu.attach(dev, d);
    d.map(0, 0x1000_0000, 4096, RW);
    const t = newDmaTranslation();
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0, t)).toBe(true);
    // Software clears TV behind the IOMMU's back.
    const at = iommu.deviceTableBase + dev.rid * 32;
    const good = memory.readU32(at);
    memory.writeU32(at, 1);
    iommu.submitCommands(encodeInvalidateIommuAll());
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0, t)).toBe(false);
    memory.writeU32(at, good);
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0, t)).toBe(false);
    iommu.submitCommands(encodeInvalidateDevtabEntry(dev.rid));
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0, t)).toBe(true);
  });

  it('ATS: the device TLB holds a translation until INVALIDATE_IOTLB_PAGES', () => {
    const { iommu, allocator } = setup();
    const dev = new Device({ name: '0000:00:03.0', ats: true });
    iommu.addDevice(dev);
    const d = paging(iommu);
    iommu.attach(dev, d);
    expect(decodeDte(iommu.deviceTableEntry(dev.rid)).iotlb).toBe(true);
    d.map(0x10000, 0x3000_0000, 4096, RW);
    const t = newDmaTranslation();
    iommu.translateDma(ctx(dev, ACCESS_READ), 0x10000, t);
    (d.pageTable as AmdV1PageTable).unmap(0x10000, 4096);
    iommu.submitCommands(encodeInvalidateIommuPages({ domainId: d.tag }));
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0x10000, t)).toBe(true);
    iommu.submitCommands(
      encodeInvalidateIotlbPages({ deviceId: dev.rid, address: 0x10000, size: 4096 }),
    );
    expect(iommu.translateDma(ctx(dev, ACCESS_READ), 0x10000, t)).toBe(false);
    expect(iommu.readEventLog()[0]?.flags && 0x100).toBe(0x100); // TR: a translation request
    expect(allocator.framesInUse).toBeGreaterThan(0);
  });

  it('an illegal opcode stops the command processor with an ILLEGAL_COMMAND event', () => {
    const { iommu } = setup();
    const cmds = new Uint8Array(48);
    cmds.set(encodeInvalidateIommuAll(), 0);
    cmds[16 + 7] = 0x90; // opcode 9
    cmds.set(encodeInvalidateIommuAll(), 32);
    const r = iommu.submitCommands(cmds);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errno).toBe(EINVAL);
    expect(iommu.commandsConsumed).toBe(1);
    const [event] = iommu.readEventLog();
    expect(event?.code).toBe(EVENT_ILLEGAL_COMMAND);
    expect(event?.address).toBe(iommu.rings.commandBuffer + 16);
    expect(iommu.submitCommands(new Uint8Array(8)).ok).toBe(false);
  });

  it('dirty tracking sets DTE.HAD, the walk sets D, harvesting clears it and flushes', () => {
    const { iommu, dev, dma } = setup();
    const d = paging(iommu, { dirtyTracking: true });
    iommu.attach(dev, d);
    d.map(0, 0x1000_0000, 64 * 1024, RW);
    dma.run(dev, iommu, { iova: 0x3000, data: new Uint8Array([1]) });
    const bitmap = { baseIova: 0, pageSize: 4096, bits: new Uint8Array(4) };
    expect(d.readAndClearDirty(0, 64 * 1024, bitmap)).toBe(0); // HAD was off
    expect(d.setDirtyTracking(true)).toBe(0);
    expect(decodeDte(iommu.deviceTableEntry(dev.rid)).had).toBe(3);
    dma.run(dev, iommu, { iova: 0x5000, data: new Uint8Array([1]) });
    expect(d.readAndClearDirty(0, 64 * 1024, bitmap)).toBe(1);
    expect(bitmap.bits[0]).toBe(0xff); // the 64K page covers 16 bitmap pages
    expect(d.readAndClearDirty(0, 64 * 1024, bitmap)).toBe(0);
    expect(paging(iommu).setDirtyTracking(true)).toBe(-EOPNOTSUPP);
  });

  it('a table that grows a level makes the driver rewrite the DTE', () => {
    const { iommu, dev, dma } = setup();
    const d = paging(iommu);
    iommu.attach(dev, d);
    d.map(0, 0x1000_0000, 4096, RW);
    dma.run(dev, iommu, { iova: 0, length: 1 });
    d.map(2 ** 40, 0x2000_0000, 4096, RW);
    const dte = decodeDte(iommu.deviceTableEntry(dev.rid));
    expect(dte.mode).toBe(4);
    expect(dte.hostRoot).toBe(d.pageTable?.root);
    expect(dma.run(dev, iommu, { iova: 2 ** 40, length: 1 }).status).toBe('done');
  });

  it('PRI: a fault of a PRI device on an iopf domain becomes a PPR entry and a page request', () => {
    const { iommu, dma } = setup();
    const dev = new Device({ name: '0000:00:04.0', ats: true, pri: true });
    iommu.addDevice(dev);
    const requests: PageRequest[] = [];
    iommu.onPageRequest = (r) => requests.push(r);
    const d = paging(iommu, { iopf: true });
    iommu.attach(dev, d);
    expect(decodeDte(iommu.deviceTableEntry(dev.rid)).ppr).toBe(true);
    const r = dma.run(dev, iommu, { iova: 0x7f00_1234, data: new Uint8Array([7]) });
    expect(r.status).toBe('page-request');
    if (r.status !== 'page-request') return;
    expect(requests).toHaveLength(1);
    expect(r.request).toMatchObject({
      requester: dev.rid,
      pasid: -1,
      groupId: 0,
      address: 0x7f00_1000,
      perm: 2,
      source: 'pri',
    });
    expect(iommu.readPprLog()[0]).toMatchObject({
      deviceId: dev.rid,
      tag: 0,
      type: 1,
      flags: 0x060,
      address: 0x7f00_1000,
    });
    expect(iommu.readEventLog()).toEqual([]);
    d.map(0x7f00_1000, 0x6000_0000, 4096, RW);
    iommu.completePageRequest(r.request, 'success');
    expect(iommu.commandLog.at(-1)).toEqual({
      op: 'COMPLETE_PPR_REQUEST',
      deviceId: dev.rid,
      pasid: null,
      tag: 0,
      status: 0,
    });
    expect(dma.resume(r.ticket).status).toBe('done');
  });
});

describe('AMD v1 walk through a stage-2 view (nested table fetches)', () => {
  it('reads a v1 table that lives in guest memory, and reports a table stage 2 does not map', () => {
    const memory = new PhysicalMemory();
    const allocator = new FrameAllocator(memory, { base: 2 ** 36, size: 2 ** 28 });
    const guest = new FrameAllocator(memory, { base: 2 ** 34, size: 2 ** 24 });
    const s1 = new AmdV1PageTable({ allocator: guest });
    s1.map(0x1000, 0x5000, 4096, RW);
    // Stage 2 maps the guest's memory 1:1, so its table addresses are GPAs too.
    const s2 = new AmdV1PageTable({ allocator, pageSizes: [4096] });
    s2.map(2 ** 34, 2 ** 34, 2 ** 24, RW);
    const view = new Stage2TableMemory(s2, memory);
    const t = walkAmdV1(
      view,
      s1.root,
      3,
      0x1234,
      ACCESS_WRITE | ACCESS_UPDATE_AD,
      newTranslation(),
    );
    expect(t).toMatchObject({ ok: true, pa: 0x5234, pageSize: 4096 });
    expect(s1.walk(0x1000)[2]?.raw).toBe(0x7000_0000_0000_5061n); // A and D set through the view
    const leafTable = s1.walk(0x1000)[2]?.tableAddress as number;
    s2.unmap(leafTable, 4096);
    const f = walkAmdV1(view, s1.root, 3, 0x1234, ACCESS_READ, newTranslation());
    expect(f).toMatchObject({ ok: false, fault: 'table-fetch', faultAddress: leafTable, level: 1 });
  });
});
