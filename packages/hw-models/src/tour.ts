/**
 * A short tour of the hardware models for `npm start`: build each IOMMU from
 * its defaults, attach a device to a paging domain, move bytes by DMA, fault
 * on an unmapped page, and report what each step showed.
 */
import { Device } from './device.js';
import { DmaEngine } from './dma.js';
import { createIommu, IOMMU_MODELS } from './iommu/create.js';
import type { IommuModel } from './iommu/iommu.js';
import { FrameAllocator } from './memory/frame-allocator.js';
import { PhysicalMemory } from './memory/physical-memory.js';
import { IOMMU_READ, IOMMU_WRITE } from './pagetable/format.js';

/** What the tour saw on one IOMMU model. */
export interface TourRow {
  /** The model. */
  readonly model: IommuModel;
  /** The device used (a BDF, or a platform device's name and stream id). */
  readonly device: string;
  /** hw_info type and data length. */
  readonly hwInfo: string;
  /** The paging domain's aperture and page sizes. */
  readonly domain: string;
  /** Reserved regions with their kinds. */
  readonly reserved: string;
  /** Page-table pages the 2 MiB + 4 KiB mapping needed. */
  readonly tablePages: number;
  /** The DMA write then read: bytes moved and whether they came back equal. */
  readonly dma: string;
  /** The fault an unmapped page raised, by the hardware's name, with its record size. */
  readonly fault: string;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

function sizes(list: readonly number[]): string {
  const names = list.map((s) =>
    s >= 2 ** 40
      ? `${s / 2 ** 40}T`
      : s >= 2 ** 30
        ? `${s / 2 ** 30}G`
        : s >= 2 ** 20
          ? `${s / 2 ** 20}M`
          : `${s / 1024}K`,
  );
  return names.length > 4 ? `${names.slice(0, 3).join('/')}/.../${names.at(-1)}` : names.join('/');
}

/** Run the tour on every model and return one row each. */
export function runHardwareTour(): TourRow[] {
  return IOMMU_MODELS.map((model) => {
    const memory = new PhysicalMemory();
    const allocator = new FrameAllocator(memory);
    const iommu = createIommu({ name: `${model}0`, model }, { memory, allocator });
    const device = new Device(
      model === 'smmuv3' ? { name: 'dma-engine', streamIds: [0x100] } : { name: '0000:00:03.0' },
    );
    iommu.addDevice(device);
    const info = iommu.hwInfo(device);
    const geometry = iommu.domainGeometry(device);
    const domain = iommu.allocDomain({ type: 'paging', device });
    if (!domain.ok) throw new Error(`${model}: ${domain.reason}`);
    const iova = geometry.apertureStart + 0x20_0000;
    const before = allocator.framesInUse;
    domain.value.map(iova, 0x4000_0000, 0x20_1000, IOMMU_READ | IOMMU_WRITE);
    const tablePages = allocator.framesInUse - before;
    const attached = iommu.attach(device, domain.value);
    if (!attached.ok) throw new Error(`${model}: ${attached.reason}`);

    const dma = new DmaEngine(memory);
    const data = Uint8Array.from({ length: 0x3000 }, (_, i) => (i * 31) & 0xff);
    const wrote = dma.run(device, iommu, { iova: iova + 0x1f_e000, data });
    const read = dma.run(device, iommu, { iova: iova + 0x1f_e000, length: data.length });
    const same =
      wrote.status === 'done' && read.status === 'done' && read.data.every((b, i) => b === data[i]);
    const fault = dma.run(device, iommu, { iova: iova + 0x40_0000, length: 4 });
    return {
      model,
      device: device.isPci ? device.name : `${device.name} (SID ${hex(device.streamIds[0] ?? 0)})`,
      hwInfo: `type ${hex(info.type)}, ${info.data.length} bytes`,
      domain: `[${hex(geometry.apertureStart)}, ${hex(geometry.apertureLast)}] ${sizes(geometry.pageSizes)}`,
      reserved:
        iommu
          .reservedRegions(device)
          .map((r) => `${r.kind} ${hex(r.start)}-${hex(r.last)}`)
          .join(', ') || 'none',
      tablePages,
      dma: `${wrote.bytes} bytes written, ${read.bytes} read back ${same ? 'equal' : 'DIFFERENT'}`,
      fault:
        fault.status === 'fault'
          ? `${fault.fault.name} (${fault.fault.record.length}-byte record)`
          : fault.status,
    };
  });
}

/** The tour as text, a block per model. */
export function formatHardwareTour(rows: readonly TourRow[] = runHardwareTour()): string {
  const lines = [
    'Hardware models: each IOMMU built from its defaults, one device attached to a paging domain,',
    '2 MiB + 4 KiB mapped, 12 KiB written and read back by DMA across the 2 MiB boundary, then a',
    'read of an unmapped page.',
    '',
  ];
  for (const r of rows) {
    lines.push(
      `${r.model}  device ${r.device}`,
      `  hw_info   ${r.hwInfo}`,
      `  domain    ${r.domain}`,
      `  reserved  ${r.reserved}`,
      `  tables    ${r.tablePages} page-table pages for the mapping`,
      `  DMA       ${r.dma}`,
      `  fault     ${r.fault}`,
      '',
    );
  }
  return lines.join('\n');
}
