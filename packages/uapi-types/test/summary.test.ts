import { describe, expect, it } from 'vitest';
import { formatUapiSummary, ioctls, structNames, TARGET_KERNEL } from '../src/index.js';

describe('the uAPI summary npm start prints', () => {
  it('names the kernel, counts what is covered and lists every ioctl and struct', () => {
    const text = formatUapiSummary();
    expect(TARGET_KERNEL).toBe('6.17');
    expect(text).toContain('Linux 6.17');
    expect(text).toContain('52 structs');
    expect(text).toContain('25 ioctl requests');
    for (const io of Object.values(ioctls)) {
      expect(text).toMatch(
        new RegExp(
          `${io.name} +0x${io.request.toString(16)} +${io.struct} +${io.minSize} +${io.size}`,
        ),
      );
    }
    for (const name of structNames) expect(text).toContain(name);
    expect(text).toMatch(/VFIO_IOMMU_MAP_DMA +0x3b71 +vfio_iommu_type1_dma_map +32/);
    expect(text).toMatch(/VFIO_CHECK_EXTENSION +0x3b65 +\(an integer\)/);
  });
});
