/**
 * The enums and flag families of the uAPI as a table, with the lookups a
 * tracer needs: the name of a value, and the names of the bits in a mask.
 */
import type { EnumInfo } from './constants/enum-info.js';
import { iommufdEnums } from './constants/iommufd.js';
import { iommufdTestEnums } from './constants/iommufd-test.js';
import { vfioEnums } from './constants/vfio.js';
import { vfioType1Enums } from './constants/vfio-type1.js';

export type { EnumInfo } from './constants/enum-info.js';

/**
 * Every enum of the modelled headers by name: the C tag where the header
 * gives one (`iommufd_hwpt_alloc_flags`), a descriptive name otherwise
 * (`iommufd_cmd`, `iommu_test_op`, `mock_device_flags`, `vfio_extension`).
 */
export const enums: Readonly<Record<string, EnumInfo>> = Object.freeze(
  Object.fromEntries(
    [...iommufdEnums, ...vfioEnums, ...iommufdTestEnums, ...vfioType1Enums].map((e) => [e.name, e]),
  ),
);

function lookup(enumName: string): EnumInfo {
  const info = enums[enumName];
  if (info === undefined) throw new RangeError(`no enum named '${enumName}'`);
  return info;
}

/**
 * The name of `value` in an enum, or undefined. Where two names share a value
 * (IOMMU_HW_INFO_TYPE_NONE and _DEFAULT) the first declared is returned.
 */
export function enumValueName(enumName: string, value: number): string | undefined {
  for (const [name, v] of Object.entries(lookup(enumName).constants)) if (v === value) return name;
  return undefined;
}

/**
 * The names of the flags set in `mask`, lowest bit first; bits the enum does
 * not define are reported as one hex string at the end, so nothing is hidden.
 *
 * @example flagNames('iommufd_ioas_map_flags', 5) // ['IOMMU_IOAS_MAP_FIXED_IOVA', 'IOMMU_IOAS_MAP_READABLE']
 */
export function flagNames(enumName: string, mask: number): string[] {
  const names: string[] = [];
  let rest = mask >>> 0;
  const flags = Object.entries(lookup(enumName).constants).sort((a, b) => a[1] - b[1]);
  for (const [name, bit] of flags) {
    if (bit !== 0 && (rest & bit) >>> 0 === bit) {
      names.push(name);
      rest = (rest & ~bit) >>> 0;
    }
  }
  if (rest !== 0) names.push(`0x${rest.toString(16)}`);
  return names;
}
