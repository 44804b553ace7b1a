import { describe, expect, it } from 'vitest';
import { formatHardwareTour, IOMMU_MODELS, runHardwareTour } from '../src/index.js';

describe('the hardware tour', () => {
  const rows = runHardwareTour();

  it('visits every model and moves the bytes intact', () => {
    expect(rows.map((r) => r.model)).toEqual([...IOMMU_MODELS]);
    for (const r of rows) expect(r.dma).toBe('12288 bytes written, 12288 read back equal');
  });

  it('reports each model as its hardware does', () => {
    const by = Object.fromEntries(rows.map((r) => [r.model, r]));
    expect(by.vtd?.hwInfo).toBe('type 0x1, 24 bytes');
    expect(by.smmuv3?.hwInfo).toBe('type 0x2, 40 bytes');
    expect(by.amd?.hwInfo).toBe('type 0x0, 0 bytes');
    expect(by.mock?.hwInfo).toBe('type 0xfeedbeef, 8 bytes');
    expect(by.smmuv3?.fault).toBe('F_TRANSLATION (32-byte record)');
    expect(by.amd?.fault).toBe('IO_PAGE_FAULT (16-byte record)');
    expect(by.vtd?.reserved).toBe('msi 0xfee00000-0xfeefffff');
    expect(by.mock?.domain).toBe('[0x1000000, 0x7fffffff] 2K');
    for (const r of rows) expect(r.tablePages).toBeGreaterThan(0);
  });

  it('prints a block per model', () => {
    const text = formatHardwareTour(rows);
    for (const m of IOMMU_MODELS) expect(text).toContain(`\n${m}  device`);
  });
});
