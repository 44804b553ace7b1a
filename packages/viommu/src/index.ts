/**
 * @packageDocumentation
 * @iommufd-sim/viommu: the vIOMMU layer of iommufd. The vDEVICE table
 * (virt_id ↔ device, unique per vIOMMU, with an opt-in multi-SID extension),
 * the drivers of the three 6.17 vIOMMU types (the selftest mock, ARM SMMUv3,
 * Tegra241 CMDQV): nested domains, guest cache invalidation (SMMUv3 CMDQ
 * entries rewritten with the VMID and vSID → pSID), hardware events turned
 * into vEVENTs (pSID → vSID), and the HW queue index rules. iommufd-core
 * owns the objects and calls these.
 */
export { HwQueueSlots, type SlotRefusal } from './hw-queue-slots.js';
export {
  decodeExtVdeviceSids,
  decodeExtVdeviceVsid,
  EXT_VDEVICE_SIDS_SIZE,
  EXT_VDEVICE_VSID_SIZE,
  type ExtVdeviceSids,
  type ExtVdeviceVsid,
  encodeExtVdeviceSids,
  encodeExtVdeviceVsid,
  IOMMUFD_EXT_VDEVICE_GET_SIDS,
  IOMMUFD_EXT_VDEVICE_SET_VSID,
} from './multi-sid.js';
export {
  FORWARDED_SMMU_EVENT_IDS,
  guestSmmuEvent,
  routeSmmuEvent,
  type SmmuEventRoute,
  type SmmuEventSummary,
  summarizeSmmuEvent,
} from './smmuv3-events.js';
export {
  convertGuestSmmuCommand,
  GUEST_COMMAND_BATCH,
  GUEST_SMMU_OPCODES,
  type GuestCommandResult,
  guestCommandBytes,
  guestCommandWords,
} from './smmuv3-invalidation.js';
export {
  TEGRA241_VINTF_PAGE_BYTES,
  Tegra241Cmdqv,
  type Tegra241CmdqvConfig,
  VintfSidSlots,
} from './tegra241-cmdqv.js';
export {
  VdeviceEntry,
  VdeviceTable,
  type VirtualEndpoint,
  type VirtualIdHit,
} from './vdevice-table.js';
export {
  asSelftestViommu,
  createViommuDriver,
  type DriverHwQueue,
  type GuestEvent,
  type InvalidationOutcome,
  type MmapRegion,
  type Refusal,
  respondViommuData,
  type UserArray,
  type UserData,
  ViommuDriver,
  type ViommuHostSupport,
  type ViommuSettings,
  viommuTypeProblem,
} from './viommu-driver.js';
