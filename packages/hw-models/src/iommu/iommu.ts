/**
 * What every IOMMU model offers the layer above (iommufd-core) and the DMA
 * engine: a configuration, capability registers, hw_info, reserved regions,
 * domains with their page tables, attach and detach (which program the
 * hardware's context structures in simulated memory), translation of a DMA
 * access through caches and tables, fault records in the hardware's format,
 * page requests, and a raw command interface for invalidations.
 *
 * Results that the kernel would turn into an errno are {@link HwResult}s, with
 * the reason a person can read; programming errors throw.
 */
import type { Device } from '../device.js';
import type { FrameAllocator } from '../memory/frame-allocator.js';
import type { PhysicalMemory } from '../memory/physical-memory.js';
import type { DirtyBitmap, PageTable, TranslationFault } from '../pagetable/format.js';
import type { Iotlb } from './iotlb.js';

/** The IOMMU models. */
export type IommuModel = 'vtd' | 'smmuv3' | 'amd' | 'mock';

/** How an IOMMU is described in a host configuration. Unset fields take the model's defaults. */
export interface IommuConfig {
  /** A name for reports ('vtd0'). */
  readonly name: string;
  /** Which hardware. */
  readonly model: IommuModel;
  /** IOVA (input) width of the domains it builds, in bits. */
  readonly inputBits?: number;
  /** Physical (output) address width, in bits. */
  readonly outputBits?: number;
  /** Leaf sizes its page tables may use, in bytes. */
  readonly pageSizes?: readonly number[];
  /** PASID width the IOMMU supports (0 = none). */
  readonly pasidBits?: number;
  /** Nested (two-stage) translation. */
  readonly nesting?: boolean;
  /** Hardware dirty tracking. */
  readonly dirtyTracking?: boolean;
  /** Device TLBs (ATS) are supported. */
  readonly ats?: boolean;
  /** Page requests (PRI / stall) are supported. */
  readonly pri?: boolean;
}

/** Where an IOMMU keeps its tables. */
export interface IommuEnvironment {
  /** The host's physical memory (tables, queues and DMA targets live here). */
  readonly memory: PhysicalMemory;
  /** Where its page-table pages, context tables and queues come from. */
  readonly allocator: FrameAllocator;
}

/** An errno-bearing result: the value, or the kernel's errno with a reason. */
export type HwResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errno: number; readonly reason: string };

/** The kernel's reserved-region kinds (enum iommu_resv_type). */
export type ReservedRegionKind = 'direct' | 'direct-relaxable' | 'reserved' | 'msi' | 'sw-msi';

/** An IOVA range a device cannot use for DMA. */
export interface ReservedRegion {
  /** First IOVA of the range. */
  readonly start: number;
  /** Last IOVA of the range (inclusive). */
  readonly last: number;
  /** Why it is reserved. */
  readonly kind: ReservedRegionKind;
}

/** What IOMMU_GET_HW_INFO reports for a device behind this IOMMU. */
export interface HwInfo {
  /** enum iommu_hw_info_type (0 = NONE for a model with no data). */
  readonly type: number;
  /** The vendor struct, encoded with uapi-types (empty for NONE). */
  readonly data: Uint8Array;
  /** IOMMU_HW_CAP_* bits (out_capabilities). */
  readonly capabilities: bigint;
  /** out_max_pasid_log2 (0 = the device has no PASID). */
  readonly maxPasidLog2: number;
}

/** The IOVA window and page sizes of a domain. */
export interface DomainGeometry {
  /** First usable IOVA. */
  readonly apertureStart: number;
  /** Last usable IOVA (inclusive). */
  readonly apertureLast: number;
  /** Leaf sizes the domain maps with, ascending (the kernel's pgsize_bitmap). */
  readonly pageSizes: readonly number[];
}

/** The kinds of domain. */
export type DomainType = 'blocked' | 'identity' | 'paging' | 'nested';

/** What {@link IommuInstance.allocDomain} is asked for. */
export type DomainSpec =
  | { readonly type: 'blocked' }
  | { readonly type: 'identity' }
  | {
      readonly type: 'paging';
      /** The device the domain is first made for (some models size domains per device). */
      readonly device?: Device;
      /** Usable as the stage 2 of nested domains (IOMMU_HWPT_ALLOC_NEST_PARENT). */
      readonly nestParent?: boolean;
      /** Able to track dirty pages (IOMMU_HWPT_ALLOC_DIRTY_TRACKING). */
      readonly dirtyTracking?: boolean;
      /** Attachable to PASIDs (IOMMU_HWPT_ALLOC_PASID). */
      readonly pasid?: boolean;
      /** Faults become page requests for the layer above (IOMMU_HWPT_FAULT_ID_VALID). */
      readonly iopf?: boolean;
    }
  | {
      readonly type: 'nested';
      /** The nesting parent (a paging domain allocated with nestParent). */
      readonly parent: IommuDomain;
      /** The vendor's user data type (enum iommu_hwpt_data_type). */
      readonly dataType: number;
      /** The vendor's user data, as the struct's bytes. */
      readonly data: Uint8Array;
      /** Attachable to PASIDs. */
      readonly pasid?: boolean;
      /** Faults become page requests for the layer above (IOMMU_HWPT_FAULT_ID_VALID). */
      readonly iopf?: boolean;
    };

/** A translation context: blocked, identity, a page table, or a stage 1 over a parent. */
export interface IommuDomain {
  /** The IOMMU that owns it. */
  readonly iommu: IommuInstance;
  /** Its kind. */
  readonly type: DomainType;
  /** The hardware tag of its cache entries (VT-d DID, SMMUv3 VMID or ASID, AMD DomainID). */
  readonly tag: number;
  /** Its page table (paging domains; the guest's stage 1 cannot be built here, so nested domains have none). */
  readonly pageTable: PageTable | null;
  /** IOVA window and page sizes. */
  readonly geometry: DomainGeometry;
  /** The parent of a nested domain. */
  readonly parent: IommuDomain | null;
  /** Allocated as a nesting parent. */
  readonly nestParent: boolean;
  /** Allocated with dirty tracking. */
  readonly dirtyCapable: boolean;
  /** Dirty tracking is on. */
  readonly dirtyTracking: boolean;
  /** Attachable to PASIDs. */
  readonly pasidCapable: boolean;
  /** Its faults are delivered as page requests (allocated with a fault object). */
  readonly iopfCapable: boolean;

  /** Map as the driver does (the page table, then whatever flush the hardware needs). Bytes mapped or -errno. */
  map(iova: number, pa: number, length: number, prot: number): number;
  /** Unmap as the driver does, flushing the IOTLB and device TLBs. Bytes removed. */
  unmap(iova: number, length: number): number;
  /** Turn dirty tracking on or off (0 or -errno). */
  setDirtyTracking(enable: boolean): number;
  /** Harvest dirty bits (see {@link PageTable.readAndClearDirty}) and flush what was cleared. */
  readAndClearDirty(iova: number, length: number, bitmap: DirtyBitmap, noClear?: boolean): number;
  /** Release its table pages and tag. */
  free(): void;
}

/** A fault the hardware recorded, with its record in the hardware's own format. */
export interface HwFault {
  /** The model that raised it. */
  readonly model: IommuModel;
  /** The hardware's name for it ('F_TRANSLATION', 'IO_PAGE_FAULT', 'reason 0x6 read denied'). */
  readonly name: string;
  /** The hardware code (VT-d fault reason, SMMUv3 EventID, AMD event code). */
  readonly code: number;
  /** What went wrong, in general terms. */
  readonly kind: TranslationFault | 'blocked' | 'bad-config' | 'no-context';
  /** The stage that faulted (1 or 2), or 0 outside a page-table walk. */
  readonly stage: number;
  /** The requester: PCI RID or SMMUv3 stream id. */
  readonly requester: number;
  /** PASID / SubstreamID, or -1. */
  readonly pasid: number;
  /** The faulting input address. */
  readonly iova: number;
  /** ACCESS_* bits of the faulting access. */
  readonly access: number;
  /** The record as the hardware writes it (VT-d fault recording register, SMMUv3 event, AMD event log entry). */
  readonly record: Uint8Array;
  /** A person's explanation. */
  readonly reason: string;
}

/** A recoverable fault for the layer above to deliver (PRI page request or SMMUv3 stall). */
export interface PageRequest {
  /** The requesting device. */
  readonly device: Device;
  /** Its RID or stream id. */
  readonly requester: number;
  /** PASID, or -1 when none was carried. */
  readonly pasid: number;
  /** Page request group index (PRI) or stall tag (SMMUv3). */
  readonly groupId: number;
  /** Last request of its group. */
  readonly lastPage: boolean;
  /** IOMMU_PGFAULT_PERM_* bits (READ 1, WRITE 2, EXEC 4, PRIV 8). */
  readonly perm: number;
  /** Page address (4 KiB aligned for PRI; the input address for a stall). */
  readonly address: number;
  /** How the hardware raised it. */
  readonly source: 'pri' | 'stall';
  /** The hardware record (VT-d page request descriptor, SMMUv3 stall event, AMD PPR log entry). */
  readonly record: Uint8Array;
}

/** The answer to a {@link PageRequest}: SUCCESS lets the device retry, INVALID / FAILURE abort. */
export type PageResponseCode = 'success' | 'invalid' | 'failure';

/** Who a DMA access comes from. */
export interface DmaContext {
  readonly device: Device;
  /** The stream id or RID the access carries (one of the device's). */
  readonly requester: number;
  /** PASID, or -1. */
  readonly pasid: number;
  /** ACCESS_* bits. */
  readonly access: number;
}

/** The outcome of translating one page of a DMA access; reused across calls. */
export interface DmaTranslation {
  ok: boolean;
  /** Output physical address. */
  pa: number;
  /** Bytes from `pa` to the end of the leaf that mapped it. */
  contiguous: number;
  /** Served by the IOTLB or a device TLB. */
  fromCache: boolean;
  /** The fault, when not ok. */
  fault: HwFault | null;
  /** The page request raised with the fault, when the device and hardware make it recoverable. */
  pageRequest: PageRequest | null;
}

/** A fresh {@link DmaTranslation}. */
export function newDmaTranslation(): DmaTranslation {
  return { ok: false, pa: 0, contiguous: 0, fromCache: false, fault: null, pageRequest: null };
}

/** An IOMMU instance. */
export interface IommuInstance {
  /** Its name. */
  readonly name: string;
  /** Its model. */
  readonly model: IommuModel;
  /** Its configuration with defaults applied. */
  readonly config: Required<IommuConfig>;
  /** Where its tables live. */
  readonly env: IommuEnvironment;
  /** Its IOTLB. */
  readonly iotlb: Iotlb;
  /** Faults recorded so far, oldest first (the hardware log's contents). */
  readonly faultLog: readonly HwFault[];
  /** Called for every fault as it is recorded (the vEVENTQ path hooks here). */
  onFault: ((fault: HwFault) => void) | null;
  /** Called for every page request (the IOPF path hooks here). */
  onPageRequest: ((request: PageRequest) => void) | null;

  /** The raw capability registers by the hardware's names (CAP, ECAP / IDR0..IDR5, IIDR, AIDR / EFR, EFR2). */
  registers(): Readonly<Record<string, bigint>>;
  /** The capability registers decoded into named fields. */
  decodedRegisters(): Readonly<Record<string, Readonly<Record<string, number | boolean>>>>;
  /** What IOMMU_GET_HW_INFO reports for `device`. */
  hwInfo(device: Device): HwInfo;
  /** IOVA ranges `device` cannot use. */
  reservedRegions(device: Device): readonly ReservedRegion[];
  /** The geometry a paging domain for `device` would get. */
  domainGeometry(device?: Device): DomainGeometry;
  /** Add a device behind this IOMMU (it starts blocked). */
  addDevice(device: Device): void;
  /** Build a domain, or say why the driver refuses. */
  allocDomain(spec: DomainSpec): HwResult<IommuDomain>;
  /** Point `device` (or one of its PASIDs) at `domain`, programming the context structures. */
  attach(device: Device, domain: IommuDomain, pasid?: number): HwResult<void>;
  /** Return `device` (or a PASID of it) to blocked. */
  detach(device: Device, pasid?: number): void;
  /** Translate one page of a DMA access through caches and tables, recording a fault when it fails. */
  translateDma(ctx: DmaContext, iova: number, out: DmaTranslation): boolean;
  /** Answer a page request as the driver does (the hardware's response command). */
  completePageRequest(request: PageRequest, code: PageResponseCode): void;
  /**
   * Feed raw commands to the hardware's invalidation queue (VT-d QI
   * descriptors, SMMUv3 CMDQ entries, AMD command buffer entries). Returns the
   * number consumed, stopping at the first it rejects.
   */
  submitCommands(commands: Uint8Array): HwResult<number>;
}
