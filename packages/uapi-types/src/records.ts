/**
 * The fixed-size records that travel through the fault and vEVENT queue fds,
 * and the sizes a reader needs to walk them.
 */
import {
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
} from './constants/iommufd.js';
import { IOMMU_VEVENTQ_TYPE_SELFTEST } from './constants/iommufd-test.js';
import { type StructName, structs } from './structs.js';

/** `read()` on a fault fd returns these, 40 bytes each; a group shares one cookie. */
export const faultRecord = structs.iommu_hwpt_pgfault;

/** `write()` on a fault fd takes these, 8 bytes each: a group's cookie and its response code. */
export const pageResponseRecord = structs.iommu_hwpt_page_response;

/** Every vEVENT read from a vEVENTQ fd starts with this 8-byte header. */
export const veventHeader = structs.iommufd_vevent_header;

/** The payload struct that follows a vEVENT header, by vEVENTQ type (the selftest type included). */
export const veventPayloads: ReadonlyMap<number, StructName> = new Map<number, StructName>([
  [IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, 'iommu_vevent_arm_smmuv3'],
  [IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV, 'iommu_vevent_tegra241_cmdqv'],
  [IOMMU_VEVENTQ_TYPE_SELFTEST, 'iommu_viommu_event_selftest'],
]);

/**
 * The size of one vEVENT of a queue type, header included (a LOST_EVENTS
 * marker is only the 8-byte header), or undefined for an unknown type.
 */
export function veventRecordSize(type: number): number | undefined {
  const payload = veventPayloads.get(type);
  return payload === undefined ? undefined : veventHeader.sizeof + structs[payload].sizeof;
}
