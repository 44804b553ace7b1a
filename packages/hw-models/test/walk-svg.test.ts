import { describe, expect, it } from 'vitest';
import {
  FrameAllocator,
  IOMMU_READ,
  IOMMU_WRITE,
  PhysicalMemory,
  VtdSecondStagePageTable,
  walkSvg,
} from '../src/index.js';

function table() {
  const allocator = new FrameAllocator(new PhysicalMemory());
  const t = new VtdSecondStagePageTable({ allocator, levels: 4, pageSizes: [4096, 2 ** 21] });
  t.map(0x4000_0000, 0x8000_0000, 0x20_0000, IOMMU_READ | IOMMU_WRITE);
  return t;
}

describe('walkSvg', () => {
  it('draws every entry the walk read and the page it reached', () => {
    const t = table();
    const steps = t.walk(0x4000_1234);
    const svg = walkSvg(steps, { title: 'VT-d <2nd stage>', iova: 0x4000_1234, pa: 0x8000_1234 });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const s of steps) {
      expect(svg).toContain(`level ${s.level} table @ 0x${s.tableAddress.toString(16)}`);
      expect(svg).toContain(`0x${s.raw.toString(16)}`);
    }
    expect(svg).toContain('leaf (2 MiB)');
    expect(svg).toContain('pa 0x80001234');
    expect(svg).toContain('VT-d &#60;2nd stage&#62;'); // escaped
    expect(svg.match(/<rect /g)?.length).toBe(1 + steps.length + 1);
  });

  it('marks a walk that ends at a missing entry as a fault', () => {
    const t = table();
    const steps = t.walk(0x1000);
    expect(steps.at(-1)?.kind).toBe('invalid');
    const svg = walkSvg(steps, { iova: 0x1000 });
    expect(svg).toContain('>fault<');
    expect(svg).toContain('entry not present');
  });
});
