// Every model through the one interface the layer above uses: build it from a
// config, attach a device to a paging domain, DMA through it, fault when the
// page goes away, and report hw_info, reserved regions and geometry.
import {
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HW_INFO_TYPE_NONE,
  IOMMU_HW_INFO_TYPE_SELFTEST,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import {
  createIommu,
  Device,
  DmaEngine,
  FrameAllocator,
  IOMMU_MODELS,
  IOMMU_READ,
  IOMMU_WRITE,
  type IommuModel,
  PhysicalMemory,
} from '../src/index.js';

const hwInfoType: Record<IommuModel, number> = {
  vtd: IOMMU_HW_INFO_TYPE_INTEL_VTD,
  smmuv3: IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  amd: IOMMU_HW_INFO_TYPE_NONE,
  mock: IOMMU_HW_INFO_TYPE_SELFTEST,
};

function setup(model: IommuModel) {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(memory, { base: 2 ** 36, size: 2 ** 30 });
  const iommu = createIommu({ name: `${model}0`, model }, { memory, allocator });
  const device = new Device(
    model === 'smmuv3' ? { name: 'dma0', streamIds: [0x42] } : { name: '0000:00:03.0' },
  );
  iommu.addDevice(device);
  return { memory, allocator, iommu, device, dma: new DmaEngine(memory) };
}

describe.each(IOMMU_MODELS.map((m) => [m]))('%s through the common interface', (model) => {
  it('reports hw_info, reserved regions and a geometry', () => {
    const { iommu, device } = setup(model);
    const info = iommu.hwInfo(device);
    expect(info.type).toBe(hwInfoType[model]);
    expect(info.data.length === 0).toBe(model === 'amd');
    const geometry = iommu.domainGeometry(device);
    expect(geometry.apertureLast).toBeGreaterThan(geometry.apertureStart);
    expect(geometry.pageSizes.length).toBeGreaterThan(0);
    const msi = iommu.reservedRegions(device).map((r) => r.kind);
    if (model === 'vtd' || model === 'amd') expect(msi).toContain('msi');
    if (model === 'smmuv3') expect(msi).toEqual(['sw-msi']);
    if (model === 'mock') expect(msi).toEqual([]);
    expect(Object.keys(iommu.registers()).length > 0 || model === 'mock').toBe(true);
  });

  it('translates DMA through an attached paging domain and faults once it is unmapped', () => {
    const { memory, iommu, device, dma } = setup(model);
    const domain = iommu.allocDomain({ type: 'paging', device });
    expect(domain.ok).toBe(true);
    if (!domain.ok) return;
    const iova = domain.value.geometry.apertureStart + 0x40_0000;
    const pa = 0x1234_5000;
    expect(domain.value.map(iova, pa, 0x2000, IOMMU_READ | IOMMU_WRITE)).toBe(0x2000);
    expect(iommu.attach(device, domain.value).ok).toBe(true);

    const data = Uint8Array.from({ length: 0x1800 }, (_, i) => (i * 13) & 0xff);
    expect(dma.run(device, iommu, { iova: iova + 0x400, data })).toMatchObject({ status: 'done' });
    expect(Buffer.from(memory.read(pa + 0x400, data.length)).equals(data)).toBe(true);
    const back = dma.run(device, iommu, { iova: iova + 0x400, length: data.length });
    expect(back.status === 'done' && Buffer.from(back.data).equals(data)).toBe(true);

    expect(domain.value.unmap(iova, 0x2000)).toBeGreaterThanOrEqual(0x2000);
    const after = dma.run(device, iommu, { iova, length: 16 });
    expect(after.status).toBe('fault');
    if (after.status === 'fault') {
      expect(after.fault.model).toBe(model);
      expect(after.fault.iova).toBe(iova);
    }
    iommu.detach(device);
    domain.value.free();
  });

  it('blocks DMA from a device attached to nothing', () => {
    const { iommu, device, dma } = setup(model);
    const blocked = iommu.allocDomain({ type: 'blocked' });
    expect(blocked.ok).toBe(true);
    if (blocked.ok) expect(iommu.attach(device, blocked.value).ok).toBe(true);
    expect(dma.run(device, iommu, { iova: 0x100_0000, length: 8 }).status).toBe('fault');
  });
});

it('names the models it knows when asked for another', () => {
  const memory = new PhysicalMemory();
  const env = { memory, allocator: new FrameAllocator(memory) };
  expect(() => createIommu({ name: 'x', model: 'riscv' as IommuModel }, env)).toThrow(
    /vtd, smmuv3, amd, mock/,
  );
});
