import {
  E2BIG,
  EINVAL,
  ENOMEM,
  EOPNOTSUPP,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { Device } from '../src/device.js';
import { DmaEngine } from '../src/dma.js';
import type { DomainSpec, IommuDomain, PageRequest } from '../src/iommu/iommu.js';
import { MockIommu, MockNestedDomain, type MockPagingDomain } from '../src/iommu/mock/index.js';
import { FrameAllocator, PhysicalMemory } from '../src/memory/index.js';

const S = 2048;
const M = 1 << 20;

function setup() {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(memory, { base: 2 ** 36, size: 2 ** 28 });
  const iommu = new MockIommu({ name: 'mock', model: 'mock' }, { memory, allocator });
  const dev = new Device({ name: 'iommufd_mock0' });
  iommu.addDevice(dev);
  return { memory, allocator, iommu, dev };
}

function alloc(iommu: MockIommu, spec: DomainSpec): IommuDomain {
  const r = iommu.allocDomain(spec);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

function errno(r: { ok: boolean } & ({ ok: true } | { ok: false; errno: number })): number {
  return r.ok ? 0 : r.errno;
}

const selftest = (iotlb: number) => structs.iommu_hwpt_selftest.encode({ iotlb });

describe('mock IOMMU: what GET_HW_INFO and the core see', () => {
  it('reports SELFTEST hw_info, DIRTY_TRACKING unless NO_DIRTY, 20 PASID bits for PASID devices', () => {
    const { iommu, dev } = setup();
    const info = iommu.hwInfo(dev);
    expect(info.type).toBe(0xfeedbeef);
    expect(structs.iommu_test_hw_info.decode(info.data)).toEqual({
      flags: 0,
      test_reg: 0xdeadbeef,
    });
    expect(info.capabilities).toBe(1n);
    expect(info.maxPasidLog2).toBe(0);
    const other = new Device({ name: 'iommufd_mock1' });
    iommu.addDevice(other, MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_PASID);
    expect(iommu.hwInfo(other)).toMatchObject({ capabilities: 0n, maxPasidLog2: 20 });
    expect(iommu.reservedRegions(dev)).toEqual([]);
    expect(iommu.registers()).toEqual({});
  });

  it('has the mock aperture and 2 KiB pages (+1 MiB for HUGE_IOVA)', () => {
    const { iommu, dev } = setup();
    expect(iommu.domainGeometry(dev)).toEqual({
      apertureStart: 16 * M,
      apertureLast: 2 ** 31 - 1,
      pageSizes: [S],
    });
    expect(iommu.setMockFlags(dev, MOCK_FLAGS_DEVICE_HUGE_IOVA).ok).toBe(true);
    expect(iommu.domainGeometry(dev).pageSizes).toEqual([S, M]);
    expect(errno(iommu.setMockFlags(dev, 8))).toBe(EINVAL);
    expect(() => iommu.addDevice(new Device({ name: 'x' }), 1 << 5)).toThrow(RangeError);
    const d = alloc(iommu, { type: 'paging', device: dev });
    expect(d.pageTable?.geometry.pageSizes).toEqual([S, M]);
  });
});

describe('mock IOMMU: domains', () => {
  it('paging: NO_DIRTY devices cannot get dirty-tracking domains; identity does not exist', () => {
    const { iommu, dev } = setup();
    iommu.setMockFlags(dev, MOCK_FLAGS_DEVICE_NO_DIRTY);
    expect(errno(iommu.allocDomain({ type: 'paging', device: dev, dirtyTracking: true }))).toBe(
      EOPNOTSUPP,
    );
    expect(
      errno(
        iommu.allocDomain({ type: 'paging', dirtyTracking: true, nestParent: true, pasid: true }),
      ),
    ).toBe(0);
    expect(errno(iommu.allocDomain({ type: 'identity' }))).toBe(EOPNOTSUPP);
  });

  it('nested: SELFTEST data sets the four IOTLB words; the selftest.c errnos', () => {
    const { iommu } = setup();
    const parent = alloc(iommu, { type: 'paging', nestParent: true });
    const plain = alloc(iommu, { type: 'paging' });
    const data = selftest(0xbadbeef);
    expect(
      errno(
        iommu.allocDomain({
          type: 'nested',
          parent: plain,
          dataType: IOMMU_HWPT_DATA_SELFTEST,
          data,
        }),
      ),
    ).toBe(EINVAL);
    expect(errno(iommu.allocDomain({ type: 'nested', parent, dataType: 1, data }))).toBe(
      EOPNOTSUPP,
    );
    expect(errno(iommu.allocDomain({ type: 'nested', parent, dataType: 0, data }))).toBe(EINVAL);
    const short = new Uint8Array(2);
    expect(
      errno(
        iommu.allocDomain({
          type: 'nested',
          parent,
          dataType: IOMMU_HWPT_DATA_SELFTEST,
          data: short,
        }),
      ),
    ).toBe(EINVAL);
    const long = new Uint8Array(8);
    long[6] = 1;
    expect(
      errno(
        iommu.allocDomain({
          type: 'nested',
          parent,
          dataType: IOMMU_HWPT_DATA_SELFTEST,
          data: long,
        }),
      ),
    ).toBe(E2BIG);
    const nested = alloc(iommu, {
      type: 'nested',
      parent,
      dataType: IOMMU_HWPT_DATA_SELFTEST,
      data,
    });
    expect(nested).toBeInstanceOf(MockNestedDomain);
    expect(iommu.iotlbWords(nested)).toEqual([0xbadbeef, 0xbadbeef, 0xbadbeef, 0xbadbeef]);
    expect(iommu.checkIotlb(nested, 3, 0xbadbeef)).toBe(0);
    expect(iommu.checkIotlb(nested, 4, 0xbadbeef)).toBe(-EINVAL);
    expect(iommu.checkIotlb(parent, 0, 0)).toBe(-EINVAL);
    const ALL = IOMMU_TEST_INVALIDATE_FLAG_ALL;
    expect(iommu.invalidateNested(nested, [{ flags: 0, iotlbId: 1 }])).toEqual({
      errno: 0,
      done: 1,
    });
    expect(iommu.iotlbWords(nested)).toEqual([0xbadbeef, 0, 0xbadbeef, 0xbadbeef]);
    const batch = [
      { flags: 0, iotlbId: 0 },
      { flags: 0, iotlbId: 4 },
      { flags: ALL, iotlbId: 0 },
    ];
    expect(iommu.invalidateNested(nested, batch)).toEqual({ errno: EINVAL, done: 1 });
    expect(iommu.invalidateNested(nested, [{ flags: 2, iotlbId: 0 }])).toEqual({
      errno: EOPNOTSUPP,
      done: 0,
    });
    expect(iommu.invalidateNested(nested, [], 0x1234)).toEqual({ errno: EINVAL, done: 0 });
    expect(iommu.invalidateNested(parent, [])).toEqual({ errno: EINVAL, done: 0 });
    expect(iommu.invalidateNested(nested, [{ flags: ALL, iotlbId: 9 }])).toEqual({
      errno: EINVAL,
      done: 0,
    });
    expect(iommu.invalidateNested(nested, [{ flags: ALL, iotlbId: 2 }])).toEqual({
      errno: 0,
      done: 1,
    });
    expect(iommu.iotlbWords(nested)).toEqual([0, 0, 0, 0]);
  });
});

describe('mock IOMMU: attach rules', () => {
  it('a NO_DIRTY device cannot attach to a dirty-tracking domain', () => {
    const { iommu, dev } = setup();
    const dirty = alloc(iommu, { type: 'paging', dirtyTracking: true });
    expect(iommu.attach(dev, dirty).ok).toBe(true);
    const nd = new Device({ name: 'iommufd_mock1' });
    iommu.addDevice(nd, MOCK_FLAGS_DEVICE_NO_DIRTY);
    expect(errno(iommu.attach(nd, dirty))).toBe(EINVAL);
    expect(iommu.attachedDomain(nd)?.type).toBe('blocked');
  });

  it('PASID attach needs a PASID device and domain; pasid 1024 fails every other time', () => {
    const { iommu, dev } = setup();
    const d = alloc(iommu, { type: 'paging', pasid: true });
    const plain = alloc(iommu, { type: 'paging' });
    expect(errno(iommu.attach(dev, d, 5))).toBe(EINVAL);
    iommu.setMockFlags(dev, MOCK_FLAGS_DEVICE_PASID);
    expect(errno(iommu.attach(dev, plain, 5))).toBe(EINVAL);
    expect(iommu.attach(dev, d, 5).ok).toBe(true);
    expect(iommu.attachedDomain(dev, 5)).toBe(d);
    expect(iommu.attach(dev, d, 1024).ok).toBe(true);
    const d2 = alloc(iommu, { type: 'paging', pasid: true });
    expect(errno(iommu.attach(dev, d2, 1024))).toBe(ENOMEM);
    expect(iommu.attach(dev, d2, 1024).ok).toBe(true);
    iommu.detach(dev, 1024);
    expect(iommu.attachedDomain(dev, 1024)).toBeNull();
    expect(iommu.attach(dev, d, 1024).ok).toBe(true);
  });

  it('iopf domains put the device on the iopf queue while attached', () => {
    const { iommu, dev } = setup();
    const f = alloc(iommu, { type: 'paging', iopf: true });
    iommu.attach(dev, f);
    expect(iommu.iopfRefcount(dev)).toBe(1);
    iommu.detach(dev);
    expect(iommu.iopfRefcount(dev)).toBe(0);
  });
});

describe('mock IOMMU: test ops and DMA', () => {
  it('MD_CHECK_MAP compares every 2 KiB step', () => {
    const { iommu } = setup();
    const d = alloc(iommu, { type: 'paging' });
    d.map(16 * M, 0x4000_0000, 8 * S, 3);
    expect(iommu.checkMap(d, 16 * M, 8 * S, (iova) => 0x4000_0000 + iova - 16 * M)).toBe(0);
    expect(iommu.checkMap(d, 16 * M, 9 * S, (iova) => 0x4000_0000 + iova - 16 * M)).toBe(-EINVAL);
    expect(iommu.checkMap(d, 16 * M + 1, S, () => 0)).toBe(-EINVAL);
  });

  it('DIRTY needs tracking on; GET_DIRTY_BITMAP reports and clears', () => {
    const { iommu } = setup();
    const d = alloc(iommu, { type: 'paging', dirtyTracking: true }) as MockPagingDomain;
    d.map(16 * M, 0, 4 * S, 3);
    const bits = new Uint8Array([0b1010]);
    expect(iommu.setDirty(d, 16 * M, 4 * S, S, bits)).toBe(-EINVAL);
    const bitmap = { baseIova: 16 * M, pageSize: S, bits: new Uint8Array(1) };
    expect(d.readAndClearDirty(16 * M, 4 * S, bitmap)).toBe(-EINVAL);
    expect(d.setDirtyTracking(true)).toBe(0);
    expect(iommu.setDirty(d, 16 * M, 4 * S, S, bits)).toBe(2);
    expect(iommu.setDirty(d, 16 * M, 4 * S, 0, bits)).toBe(-EINVAL);
    expect(d.readAndClearDirty(16 * M, 4 * S, bitmap)).toBe(2);
    expect(bitmap.bits[0]).toBe(0b1010);
    expect(d.readAndClearDirty(16 * M, 4 * S, bitmap)).toBe(0);
    expect(alloc(iommu, { type: 'paging' }).setDirtyTracking(true)).toBe(-EOPNOTSUPP);
  });

  it('device cache words start at 0xbaddad and are invalidated one by one or all', () => {
    const { iommu, dev } = setup();
    expect(iommu.deviceCacheWords(dev)).toEqual([0xbaddad, 0xbaddad, 0xbaddad, 0xbaddad]);
    expect(iommu.checkDeviceCache(dev, 0, 0xbaddad)).toBe(0);
    expect(iommu.invalidateDeviceCache(dev, 0, 2)).toBe(0);
    expect(iommu.checkDeviceCache(dev, 2, 0)).toBe(0);
    expect(iommu.invalidateDeviceCache(dev, 0, 4)).toBe(-EINVAL);
    expect(iommu.invalidateDeviceCache(dev, 4, 0)).toBe(-EOPNOTSUPP);
    expect(iommu.invalidateDeviceCache(dev, IOMMU_TEST_INVALIDATE_FLAG_ALL, 0)).toBe(0);
    expect(iommu.deviceCacheWords(dev)).toEqual([0, 0, 0, 0]);
    expect(iommu.checkDeviceCache(dev, 4, 0)).toBe(-EINVAL);
  });

  it('TRIGGER_IOPF reports a last-page request, with a PASID only when not 0', () => {
    const { iommu, dev } = setup();
    const seen: PageRequest[] = [];
    iommu.onPageRequest = (r) => seen.push(r);
    iommu.triggerIopf(dev, { pasid: 0, grpid: 3, perm: 1, addr: 0xdeadbeef000 });
    iommu.triggerIopf(dev, { pasid: 2048, grpid: 4, perm: 2, addr: 0x1000 });
    expect(seen.map((r) => [r.pasid, r.groupId, r.perm, r.address, r.lastPage])).toEqual([
      [-1, 3, 1, 0xdeadbeef000, true],
      [2048, 4, 2, 0x1000, true],
    ]);
    iommu.completePageRequest(seen[0] as PageRequest, 'success');
    expect(iommu.pageResponses).toHaveLength(1);
    expect(
      iommu.triggerIopf(new Device({ name: 'stranger' }), { pasid: 0, grpid: 0, perm: 0, addr: 0 }),
    ).toBeNull();
  });

  it('DMA goes through the slots; blocked and unmapped accesses fault; iopf domains ask for the page', () => {
    const { iommu, dev, memory } = setup();
    const dma = new DmaEngine(memory);
    expect(dma.run(dev, iommu, { iova: 16 * M, length: 4 }).status).toBe('fault');
    const d = alloc(iommu, { type: 'paging', iopf: true });
    iommu.attach(dev, d);
    d.map(16 * M, 0x1000_0000, 2 * S, 3);
    memory.write(0x1000_0000 + S - 2, new Uint8Array([1, 2, 3, 4]));
    const r = dma.run(dev, iommu, { iova: 16 * M + S - 2, length: 4 });
    expect(r.status === 'done' && [...r.data]).toEqual([1, 2, 3, 4]);
    const miss = dma.run(dev, iommu, { iova: 32 * M, length: 4 });
    expect(miss.status).toBe('page-request');
    const parent = alloc(iommu, { type: 'paging', nestParent: true });
    parent.map(16 * M, 0x1000_0000, S, 3);
    const nested = alloc(iommu, {
      type: 'nested',
      parent,
      dataType: IOMMU_HWPT_DATA_SELFTEST,
      data: selftest(1),
    });
    iommu.attach(dev, nested);
    expect(dma.run(dev, iommu, { iova: 16 * M + S - 2, length: 2 }).status).toBe('done');
    const f = dma.run(dev, iommu, { iova: 64 * M, length: 2 });
    expect(f.status === 'fault' && f.fault.record.length).toBe(24);
    expect(iommu.submitCommands(new Uint8Array(16)).ok).toBe(false);
  });
});
