import { describe, expect, it } from 'vitest';
import {
  enums,
  enumValueName,
  flagNames,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
} from '../src/index.js';

describe('enum lookups', () => {
  it('names the bits of a mask and shows unknown bits in hex', () => {
    expect(
      flagNames('iommufd_ioas_map_flags', IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE),
    ).toEqual(['IOMMU_IOAS_MAP_FIXED_IOVA', 'IOMMU_IOAS_MAP_READABLE']);
    expect(
      flagNames(
        'iommufd_hwpt_alloc_flags',
        IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID | 0x80000000,
      ),
    ).toEqual(['IOMMU_HWPT_ALLOC_NEST_PARENT', 'IOMMU_HWPT_FAULT_ID_VALID', '0x80000000']);
    expect(flagNames('iommufd_ioas_map_flags', 0)).toEqual([]);
  });

  it('names a value, the first declared name winning where two share it', () => {
    expect(enumValueName('iommu_hw_info_type', 0)).toBe('IOMMU_HW_INFO_TYPE_NONE');
    expect(enumValueName('iommu_hwpt_data_type', 2)).toBe('IOMMU_HWPT_DATA_ARM_SMMUV3');
    expect(enumValueName('iommu_test_op', 17)).toBe('IOMMU_TEST_OP_TRIGGER_VEVENT');
    expect(enumValueName('iommu_hwpt_data_type', 9)).toBeUndefined();
  });

  it('refuses an enum it does not know', () => {
    expect(() => flagNames('no_such_enum', 1)).toThrow(RangeError);
  });

  it('marks bit families as flags and alternatives as values', () => {
    expect(enums.iommufd_hwpt_alloc_flags?.kind).toBe('flags');
    expect(enums.iommu_viommu_type?.kind).toBe('values');
    for (const e of Object.values(enums)) {
      if (e.kind !== 'flags') continue;
      for (const [name, bit] of Object.entries(e.constants)) {
        expect(bit > 0 && (bit & (bit - 1)) === 0, `${name} is a single bit`).toBe(true);
      }
    }
  });
});
