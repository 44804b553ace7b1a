// The DMA engine's own logic (page stepping, stopping at a fault, resuming a
// page request) over a minimal IOMMU stand-in; every real IOMMU model has
// its own DMA tests.
import { describe, expect, it } from 'vitest';
import {
  ACCESS_WRITE,
  Device,
  type DmaContext,
  DmaEngine,
  type DmaTranslation,
  type HwFault,
  type IommuInstance,
  type PageRequest,
  PhysicalMemory,
} from '../src/index.js';

/** Maps iova -> iova + 0x100000 except pages listed as holes; holes raise page requests when asked. */
function offsetIommu(holes: Set<number>, recoverable: boolean) {
  const seen: DmaContext[] = [];
  const iommu = {
    translateDma(ctx: DmaContext, iova: number, out: DmaTranslation): boolean {
      seen.push(ctx);
      const page = Math.floor(iova / 4096);
      out.fromCache = false;
      if (holes.has(page)) {
        const fault = {
          model: 'mock',
          name: 'hole',
          iova,
          access: ctx.access,
        } as unknown as HwFault;
        out.ok = false;
        out.fault = fault;
        out.pageRequest = recoverable ? ({ address: page * 4096 } as PageRequest) : null;
        return false;
      }
      out.ok = true;
      out.pa = iova + 0x100000;
      out.contiguous = 4096 - (iova % 4096);
      out.fault = null;
      out.pageRequest = null;
      return true;
    },
  };
  return { iommu: iommu as unknown as IommuInstance, seen };
}

describe('DmaEngine', () => {
  const device = new Device({ name: '0000:00:04.0', pasidBits: 8 });

  it('moves bytes page by page through the translation', () => {
    const mem = new PhysicalMemory();
    const { iommu, seen } = offsetIommu(new Set(), false);
    const dma = new DmaEngine(mem);
    const data = Uint8Array.from({ length: 9000 }, (_, i) => i & 0xff);
    const w = dma.run(device, iommu, { iova: 0x2ff0, data, pasid: 3 });
    expect(w).toMatchObject({ status: 'done', bytes: 9000 });
    expect(Buffer.from(mem.read(0x102ff0, 9000)).equals(data)).toBe(true);
    expect(seen.length).toBe(4); // 0x2ff0.., 0x3000, 0x4000, 0x5000 pages
    expect(seen[0]).toMatchObject({ requester: 0x20, pasid: 3 });
    expect((seen[0]?.access ?? 0) & ACCESS_WRITE).toBe(ACCESS_WRITE);
    const r = dma.run(device, iommu, { iova: 0x2ff0n, length: 9000 });
    expect(r.status === 'done' && Buffer.from(r.data).equals(data)).toBe(true);
  });

  it('stops at an unrecoverable fault with the bytes done so far', () => {
    const mem = new PhysicalMemory();
    const { iommu } = offsetIommu(new Set([5]), false);
    const out = new DmaEngine(mem).run(device, iommu, { iova: 0x4000, length: 0x3000 });
    expect(out.status).toBe('fault');
    expect(out.bytes).toBe(0x1000);
    expect(out.status === 'fault' && out.fault.iova).toBe(0x5000);
  });

  it('resumes after a page request is answered', () => {
    const mem = new PhysicalMemory();
    const holes = new Set([5]);
    const { iommu } = offsetIommu(holes, true);
    const dma = new DmaEngine(mem);
    const data = new Uint8Array(0x3000).fill(0x5a);
    const first = dma.run(device, iommu, { iova: 0x4000, data });
    expect(first.status).toBe('page-request');
    if (first.status !== 'page-request') return;
    expect(first.request.address).toBe(0x5000);
    holes.clear(); // the handler mapped the page
    const second = dma.resume(first.ticket);
    expect(second).toMatchObject({ status: 'done', bytes: 0x3000 });
    expect(Buffer.from(mem.read(0x104000, 0x3000)).equals(data)).toBe(true);
  });

  it('rejects a write whose data is shorter than its length', () => {
    const { iommu } = offsetIommu(new Set(), false);
    expect(() =>
      new DmaEngine(new PhysicalMemory()).run(device, iommu, {
        iova: 0,
        length: 10,
        data: new Uint8Array(4),
      }),
    ).toThrow(RangeError);
  });
});
