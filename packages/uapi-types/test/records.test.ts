import { describe, expect, it } from 'vitest';
import {
  faultRecord,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
  pageResponseRecord,
  veventHeader,
  veventRecordSize,
} from '../src/index.js';

describe('queue records', () => {
  it('have the sizes a queue reader walks by', () => {
    expect(faultRecord.sizeof).toBe(40);
    expect(pageResponseRecord.sizeof).toBe(8);
    expect(veventHeader.sizeof).toBe(8);
    expect(veventRecordSize(IOMMU_VEVENTQ_TYPE_ARM_SMMUV3)).toBe(40);
    expect(veventRecordSize(IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV)).toBe(24);
    expect(veventRecordSize(IOMMU_VEVENTQ_TYPE_SELFTEST)).toBe(12);
    expect(veventRecordSize(0)).toBeUndefined();
  });

  it('a fault record decodes from the bytes a fault fd returns', () => {
    const bytes = faultRecord.encode({
      flags: IOMMU_PGFAULT_FLAGS_LAST_PAGE,
      dev_id: 3,
      pasid: 1,
      grpid: 2,
      perm: 3,
      addr: 0xdeadbeafn,
      cookie: 1,
    });
    expect(bytes.length).toBe(40);
    expect(faultRecord.decode(bytes)).toMatchObject({
      dev_id: 3,
      addr: 0xdeadbeafn,
      cookie: 1,
      length: 0,
    });
  });
});
