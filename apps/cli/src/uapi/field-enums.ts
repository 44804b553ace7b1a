/**
 * Which enum or flag family each struct field takes its values from. The
 * uAPI headers say it in comments only, so this table says it once for the
 * tracer (flags by name) and for scenario files (`flags: [READABLE]`).
 */
import { type EnumInfo, enums, enumValueName, flagNames } from '@iommufd-sim/uapi-types';
import { closest } from '../util/suggest.js';

/** `struct.field` (dotted for union members) → enum name in uapi-types' `enums`. */
export const FIELD_ENUMS: Readonly<Record<string, string>> = {
  'iommu_ioas_map.flags': 'iommufd_ioas_map_flags',
  'iommu_ioas_map_file.flags': 'iommufd_ioas_map_flags',
  'iommu_ioas_copy.flags': 'iommufd_ioas_map_flags',
  'iommu_option.option_id': 'iommufd_option',
  'iommu_option.op': 'iommufd_option_ops',
  'iommu_vfio_ioas.op': 'iommufd_vfio_ioas_op',
  'iommu_hwpt_alloc.flags': 'iommufd_hwpt_alloc_flags',
  'iommu_hwpt_alloc.data_type': 'iommu_hwpt_data_type',
  'iommu_hwpt_vtd_s1.flags': 'iommu_hwpt_vtd_s1_flags',
  'iommu_hw_info_vtd.flags': 'iommu_hw_info_vtd_flags',
  'iommu_hw_info.flags': 'iommufd_hw_info_flags',
  'iommu_hw_info.in_data_type': 'iommu_hw_info_type',
  'iommu_hw_info.out_data_type': 'iommu_hw_info_type',
  'iommu_hw_info.out_capabilities': 'iommufd_hw_capabilities',
  'iommu_hwpt_set_dirty_tracking.flags': 'iommufd_hwpt_set_dirty_tracking_flags',
  'iommu_hwpt_get_dirty_bitmap.flags': 'iommufd_hwpt_get_dirty_bitmap_flags',
  'iommu_hwpt_invalidate.data_type': 'iommu_hwpt_invalidate_data_type',
  'iommu_hwpt_vtd_s1_invalidate.flags': 'iommu_hwpt_vtd_s1_invalidate_flags',
  'iommu_hwpt_pgfault.flags': 'iommu_hwpt_pgfault_flags',
  'iommu_hwpt_pgfault.perm': 'iommu_hwpt_pgfault_perm',
  'iommu_hwpt_page_response.code': 'iommufd_page_response_code',
  'iommu_viommu_alloc.type': 'iommu_viommu_type',
  'iommufd_vevent_header.flags': 'iommu_veventq_flag',
  'iommu_veventq_alloc.type': 'iommu_veventq_type',
  'iommu_hw_queue_alloc.type': 'iommu_hw_queue_type',
  'vfio_device_bind_iommufd.flags': 'vfio_device_bind_iommufd_flags',
  'vfio_device_attach_iommufd_pt.flags': 'vfio_device_attach_iommufd_pt_flags',
  'vfio_device_detach_iommufd_pt.flags': 'vfio_device_detach_iommufd_pt_flags',
  'iommu_test_cmd.op': 'iommu_test_op',
  'iommu_test_cmd.mock_domain_flags.dev_flags': 'mock_device_flags',
  'iommu_test_cmd.create_access.flags': 'mock_access_create_flags',
  'iommu_test_cmd.access_pages.flags': 'mock_access_flags',
  'iommu_test_cmd.access_rw.flags': 'mock_access_rw_flags',
  'vfio_iommu_type1_info.flags': 'vfio_iommu_type1_info_flags',
  'vfio_iommu_type1_dma_map.flags': 'vfio_iommu_type1_dma_map_flags',
  'vfio_iommu_type1_dma_unmap.flags': 'vfio_iommu_type1_dma_unmap_flags',
};

/** poll(2) event bits, which are not part of the iommufd uAPI but appear in its traces. */
const POLL_EVENTS: EnumInfo = {
  name: 'poll_events',
  header: 'include/uapi/asm-generic/poll.h',
  kind: 'flags',
  constants: {
    POLLIN: 0x1,
    POLLPRI: 0x2,
    POLLOUT: 0x4,
    POLLERR: 0x8,
    POLLHUP: 0x10,
    POLLNVAL: 0x20,
    POLLRDNORM: 0x40,
    POLLWRNORM: 0x100,
  },
};

/** An enum by name: uapi-types' `enums`, or `poll_events`. */
export function enumInfo(name: string): EnumInfo | undefined {
  if (name === POLL_EVENTS.name) return POLL_EVENTS;
  return Object.hasOwn(enums, name) ? enums[name] : undefined;
}

/** The enum of `struct.field`, if it has one. */
export function fieldEnum(structName: string, fieldPath: string): EnumInfo | undefined {
  const name = FIELD_ENUMS[`${structName}.${fieldPath}`];
  return name === undefined ? undefined : enumInfo(name);
}

/**
 * The value of a constant of `info` named in full (`IOMMU_IOAS_MAP_READABLE`)
 * or by its distinctive tail (`READABLE`); a message when there is no such
 * name or the tail matches several.
 */
export function enumConstant(info: EnumInfo, word: string): number | string {
  const exact = info.constants[word];
  if (exact !== undefined) return exact;
  const matches = Object.entries(info.constants).filter(([name]) => name.endsWith(`_${word}`));
  const first = matches[0];
  if (first !== undefined && matches.every(([, v]) => v === first[1])) return first[1];
  const names = Object.keys(info.constants)
    .map((n) => shortName(info, n))
    .join(', ');
  if (matches.length > 1) return `'${word}' is ambiguous in ${info.name} (${names})`;
  const guess = closest(
    word,
    Object.keys(info.constants).map((n) => shortName(info, n)),
  );
  return `'${word}' is not one of ${info.name}: ${names}${guess === undefined ? '' : ` (did you mean '${guess}'?)`}`;
}

/** The constant's name without the prefix all of `info`'s names share (`READABLE`). */
export function shortName(info: EnumInfo, name: string): string {
  const names = Object.keys(info.constants);
  let prefix = names[0] ?? '';
  for (const n of names) while (!n.startsWith(prefix)) prefix = prefix.slice(0, -1);
  prefix = prefix.slice(0, prefix.lastIndexOf('_') + 1);
  const short = name.slice(prefix.length);
  return short === '' || /^[0-9]/.test(short) ? name : short;
}

/** A field's value as the tracer prints it: flag names joined by `|`, an enum's name, or the number. */
export function formatEnumValue(info: EnumInfo, value: number | bigint): string {
  const n = Number(value);
  if (info.kind === 'flags') {
    if (n === 0) return '0';
    if (info.name === POLL_EVENTS.name) {
      const names = Object.entries(info.constants)
        .filter(([, bit]) => (n & bit) !== 0)
        .map(([name]) => name);
      return names.join('|');
    }
    return flagNames(info.name, n).join('|');
  }
  return enumValueName(info.name, n) ?? String(value);
}
