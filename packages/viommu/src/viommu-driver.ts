/**
 * The driver half of a vIOMMU (the kernel's iommufd_viommu_ops and the
 * driver data around it): what each vIOMMU type does when iommufd-core asks
 * it to allocate a nested domain, take a vDEVICE, invalidate guest caches,
 * report an event or set up a HW queue. The core owns the objects, their
 * ids, references and user memory; a driver sees only the hardware model
 * and copy callbacks for the user's data, and answers with an errno and a
 * reason where the kernel would fail.
 *
 * Three types exist in 6.17: the selftest's mock vIOMMU
 * (IOMMU_VIOMMU_TYPE_SELFTEST, on the mock IOMMU), ARM SMMUv3
 * (IOMMU_VIOMMU_TYPE_ARM_SMMUV3) and Tegra241 CMDQV
 * (IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, an SMMUv3 that has a CMDQV).
 */
import type { Device, HwFault, IommuDomain, IommuInstance } from '@iommufd-sim/hw-models';
import { encodeSmmuCommand, MockIommu, Smmuv3Iommu } from '@iommufd-sim/hw-models';
import {
  EFAULT,
  EINVAL,
  EIO,
  ENOENT,
  EOPNOTSUPP,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_TEST_HW_QUEUE_MAX,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
  structs,
} from '@iommufd-sim/uapi-types';
import { HwQueueSlots } from './hw-queue-slots.js';
import { guestSmmuEvent, routeSmmuEvent, summarizeSmmuEvent } from './smmuv3-events.js';
import {
  convertGuestSmmuCommand,
  GUEST_COMMAND_BATCH,
  guestCommandBytes,
  guestCommandWords,
} from './smmuv3-invalidation.js';
import { TEGRA241_VINTF_PAGE_BYTES, type Tegra241Cmdqv, VintfSidSlots } from './tegra241-cmdqv.js';
import { type VdeviceEntry, VdeviceTable } from './vdevice-table.js';

/** Why the driver refused: the kernel's errno and a reason a person reads. */
export interface Refusal {
  readonly errno: number;
  readonly reason: string;
}

/** The user's driver data (struct iommu_user_data): its type, length and copy-in / copy-out. */
export interface UserData {
  /** The data type the user named. */
  readonly type: number;
  /** data_len. */
  readonly length: number;
  /**
   * iommu_copy_struct_from_user: `size` bytes of the kernel struct; a
   * length below `minSize` is EINVAL, non-zero bytes past `size` E2BIG, a bad
   * pointer EFAULT.
   */
  copyIn(size: number, minSize: number): Uint8Array | Refusal;
  /** iommu_copy_struct_to_user: write the struct back (0, or the refusal). */
  copyOut(bytes: Uint8Array): Refusal | undefined;
}

/** The user's invalidation array (struct iommu_user_data_array). */
export interface UserArray {
  /** data_type. */
  readonly type: number;
  /** entry_len. */
  readonly entryLength: number;
  /** entry_num. */
  readonly count: number;
  /** iommu_copy_struct_from_user_array: entry `index` as `size` bytes. */
  copyEntry(index: number, size: number): Uint8Array | Refusal;
  /** iommu_copy_struct_from_full_user_array: every entry, each `size` bytes. */
  copyAll(size: number): Uint8Array[] | Refusal;
}

/** The outcome of a cache invalidation: how many entries were handled, and the refusal that stopped it. */
export interface InvalidationOutcome {
  readonly handled: number;
  readonly refusal?: Refusal;
}

/** An event for a vEVENTQ: its type and payload. */
export interface GuestEvent {
  /** The vEVENTQ type it goes to. */
  readonly type: number;
  /** The payload after the header. */
  readonly payload: Uint8Array;
}

/** A region the driver publishes for mmap on the iommufd (iommufd_viommu_alloc_mmap). */
export interface MmapRegion {
  /** Its length in bytes (a multiple of the page size). */
  readonly length: number;
  /** What the user sees through it. */
  readonly contents: Uint8Array;
}

/** Host-wide vIOMMU settings. */
export interface ViommuSettings {
  /** The multi-SID extension (off by default: the kernel's one SID per vDEVICE). */
  readonly multiSid: boolean;
}

/** A HW queue the driver took. */
export interface DriverHwQueue {
  readonly index: number;
}

/** One vIOMMU's driver state. */
export abstract class ViommuDriver {
  /** The vDEVICEs, by virt_id. */
  readonly vdevices = new VdeviceTable<Device>();
  /** The mmap region it published at init, if any. */
  mmapRegion: MmapRegion | null = null;
  /**
   * Devices attached to one of its nested domains (the drivers' vmaster):
   * their virt_id and each physical stream id's vSID, as of the attach.
   */
  protected readonly vmasters = new Map<Device, { virtId: number; vsidOf: Map<number, number> }>();
  /** Which vmaster a physical stream id belongs to. */
  protected readonly psidOwner = new Map<number, Device>();

  constructor(
    /** enum iommu_viommu_type. */
    readonly type: number,
    /** The physical IOMMU it is a slice of. */
    readonly iommu: IommuInstance,
    /** The nesting parent's domain (stage 2). */
    readonly parent: IommuDomain,
    readonly settings: ViommuSettings,
  ) {}

  /** A name for reports. */
  abstract readonly name: string;
  /** The invalidation data type it takes (enum iommu_viommu_invalidate_data_type). */
  abstract readonly invalidationType: number;

  /** viommu_init with the user's data (null when data_len is 0). */
  abstract init(data: UserData | null): Refusal | undefined;
  /** alloc_domain_nested (flags without FAULT_ID_VALID). */
  abstract allocDomainNested(flags: number, data: UserData): IommuDomain | Refusal;
  /** cache_invalidate. */
  abstract cacheInvalidate(array: UserArray): InvalidationOutcome;

  /** The VMID its invalidations are confined to (the parent's, as 6.17 takes it). */
  get vmid(): number {
    return this.parent.tag;
  }

  /** vdevice_init: driver state for a new vDEVICE (undefined when none is needed). */
  vdeviceInit(_entry: VdeviceEntry<Device>): Refusal | undefined {
    return undefined;
  }

  /** The vDEVICE is going away. */
  vdeviceDestroy(_entry: VdeviceEntry<Device>): void {}

  /**
   * Whether `device` may attach to one of this vIOMMU's nested domains: it
   * needs a vDEVICE here (ENOENT otherwise; the mock's attach and SMMUv3's
   * arm_smmu_attach_prepare_vmaster both ask iommufd_viommu_get_vdev_id).
   */
  vmasterProblem(device: Device): Refusal | undefined {
    if (this.vdevices.ofDevice(device) !== undefined) return undefined;
    return {
      errno: ENOENT,
      reason: `${device.name} has no vDEVICE on this vIOMMU (IOMMU_VDEVICE_ALLOC it first)`,
    };
  }

  /**
   * The attach of `device` to one of this vIOMMU's nested domains went
   * through: remember its ids (the vmaster) for event reporting until the
   * next attach, as the drivers do.
   */
  attachNested(device: Device): void {
    const entry = this.vdevices.ofDevice(device);
    this.forgetMaster(device);
    if (entry === undefined) return;
    const virtId = Number(BigInt.asUintN(32, entry.virtId));
    const vsidOf = new Map<number, number>();
    // arm_smmu_find_master finds the master by any of its stream ids, and its
    // vmaster reports each with the one vSID; the multi-SID extension gives
    // endpoint i its own.
    const streams =
      device.streamIds.length > 0 ? device.streamIds : device.rid >= 0 ? [device.rid] : [];
    for (const psid of streams) vsidOf.set(psid, virtId);
    for (const ep of entry.endpoints()) {
      const psid = this.physicalId(device, ep.index);
      if (psid !== undefined) vsidOf.set(psid, Number(BigInt.asUintN(32, ep.virtId)));
    }
    for (const psid of vsidOf.keys()) this.psidOwner.set(psid, device);
    this.vmasters.set(device, { virtId, vsidOf });
  }

  /** The device left this vIOMMU's nested domains. */
  forgetMaster(device: Device): void {
    const m = this.vmasters.get(device);
    if (m === undefined) return;
    for (const psid of m.vsidOf.keys()) this.psidOwner.delete(psid);
    this.vmasters.delete(device);
  }

  /** The virt_id this driver reports for `device` (the vmaster's), if it is attached here. */
  reportedVirtId(device: Device): number | undefined {
    return this.vmasters.get(device)?.virtId;
  }

  /** The vSID a physical stream id is reported with, and its device, if it belongs to a vmaster. */
  protected vsidForStream(psid: number): number | undefined {
    const device = this.psidOwner.get(psid);
    return device === undefined ? undefined : this.vmasters.get(device)?.vsidOf.get(psid);
  }

  /** An event the hardware recorded, as the guest sees it, or null when it stays with the host. */
  guestEvent(_fault: HwFault): GuestEvent | null {
    return null;
  }

  /** get_hw_queue_size: whether it has HW queues of `type`. */
  hwQueueSupported(_type: number): boolean {
    return false;
  }

  /**
   * hw_queue_init_phys: take `index` for a queue at `basePa` (its IOVA in the
   * parent is `baseIova`). Returns the index it depends on (-1 for none).
   */
  hwQueueInit(
    index: number,
    _baseIova: number,
    _basePa: number,
    _length: number,
  ): number | Refusal {
    return { errno: EOPNOTSUPP, reason: `index ${index}: this vIOMMU has no HW queues` };
  }

  /** The queue at `index` is destroyed. */
  hwQueueDestroy(_index: number): void {}

  /** The vIOMMU is destroyed. */
  destroy(): void {
    this.vmasters.clear();
    this.psidOwner.clear();
  }

  /** The physical id behind endpoint `index` of `device` (its index-th stream id or RID). */
  protected physicalId(device: Device, index: number): number | undefined {
    if (index > 0 && !this.settings.multiSid) return undefined;
    const ids =
      device.streamIds.length > 0 ? device.streamIds : device.rid >= 0 ? [device.rid] : [];
    return ids[index];
  }
}

// ---- the selftest's mock vIOMMU ------------------------------------------------------------

/** IOMMU_VIOMMU_TYPE_SELFTEST on the selftest's mock IOMMU. */
class SelftestViommu extends ViommuDriver {
  readonly name = 'selftest';
  readonly invalidationType = IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST;
  private readonly queues = new HwQueueSlots<DriverHwQueue>(IOMMU_TEST_HW_QUEUE_MAX);

  init(data: UserData | null): Refusal | undefined {
    if (data === null) return undefined;
    const s = structs.iommu_viommu_selftest;
    // iommu_copy_struct_from_user(.., out_data): data up to out_data is enough.
    const outData = s.fields.out_data;
    const got = data.copyIn(s.sizeof, outData.offset + outData.size);
    if (!(got instanceof Uint8Array)) return got;
    const { in_data } = s.decode(got);
    // Two pages the user may mmap; the first u32 carries in_data back.
    const contents = new Uint8Array(2 * 4096);
    new DataView(contents.buffer).setUint32(0, in_data, true);
    this.mmapRegion = { length: contents.length, contents };
    return undefined;
  }

  /** The answer written back once the core knows the mmap offset. */
  respond(data: UserData, mmapOffset: bigint): Refusal | undefined {
    const s = structs.iommu_viommu_selftest;
    const inData = new DataView((this.mmapRegion as MmapRegion).contents.buffer).getUint32(0, true);
    return data.copyOut(
      s.encode({
        in_data: inData,
        out_data: inData,
        out_mmap_offset: mmapOffset,
        out_mmap_length: BigInt((this.mmapRegion as MmapRegion).length),
      }),
    );
  }

  allocDomainNested(flags: number, data: UserData): IommuDomain | Refusal {
    if ((flags & ~IOMMU_HWPT_ALLOC_PASID) !== 0) {
      return {
        errno: EOPNOTSUPP,
        reason: `flags 0x${flags.toString(16)}: the mock takes only ALLOC_PASID`,
      };
    }
    if (data.type !== IOMMU_HWPT_DATA_SELFTEST) {
      return {
        errno: EOPNOTSUPP,
        reason: `data_type ${data.type} is not IOMMU_HWPT_DATA_SELFTEST (0x${IOMMU_HWPT_DATA_SELFTEST.toString(16)})`,
      };
    }
    const s = structs.iommu_hwpt_selftest;
    const bytes = data.copyIn(s.sizeof, s.sizeof);
    if (!(bytes instanceof Uint8Array)) return bytes;
    const got = this.iommu.allocDomain({
      type: 'nested',
      parent: this.parent,
      dataType: IOMMU_HWPT_DATA_SELFTEST,
      data: bytes,
      pasid: (flags & IOMMU_HWPT_ALLOC_PASID) !== 0,
    });
    return got.ok ? got.value : { errno: got.errno, reason: got.reason };
  }

  cacheInvalidate(array: UserArray): InvalidationOutcome {
    const mock = this.iommu as MockIommu;
    if (array.type !== IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST) {
      return {
        handled: 0,
        refusal: {
          errno: EINVAL,
          reason: `data_type 0x${array.type.toString(16)} is not IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST`,
        },
      };
    }
    // A zero-length array only probes the type.
    if (array.count === 0) return { handled: 0 };
    const s = structs.iommu_viommu_invalidate_selftest;
    // iommu_copy_struct_from_full_user_array: every entry is copied before any
    // takes effect (EFAULT / E2BIG with entry_num 0; short entries zero-extended).
    const entries = array.copyAll(s.sizeof);
    if (!Array.isArray(entries)) return { handled: 0, refusal: entries };
    for (let i = 0; i < array.count; i++) {
      const inv = s.decode(entries[i] as Uint8Array);
      if ((inv.flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) {
        return {
          handled: i,
          refusal: {
            errno: EOPNOTSUPP,
            reason: `entry ${i}: unknown flags 0x${inv.flags.toString(16)}`,
          },
        };
      }
      if (inv.cache_id > 3) {
        return {
          handled: i,
          refusal: { errno: EINVAL, reason: `entry ${i}: cache_id ${inv.cache_id} is over 3` },
        };
      }
      const hit = this.vdevices.find(BigInt(inv.vdev_id));
      if (hit === undefined) {
        return {
          handled: i,
          refusal: {
            errno: EINVAL,
            reason: `entry ${i}: vdev_id 0x${inv.vdev_id.toString(16)} names no vDEVICE`,
          },
        };
      }
      mock.invalidateDeviceCache(hit.entry.device, inv.flags, inv.cache_id);
    }
    return { handled: array.count };
  }

  /** TRIGGER_VEVENT: the selftest event {virt_id} for `device`, or null when it is not bound here. */
  selftestEvent(device: Device): GuestEvent | null {
    const virtId = this.reportedVirtId(device);
    if (virtId === undefined || virtId === 0) return null;
    const payload = structs.iommu_viommu_event_selftest.encode({ virt_id: virtId });
    return { type: IOMMU_VEVENTQ_TYPE_SELFTEST, payload };
  }

  override hwQueueSupported(type: number): boolean {
    return type === IOMMU_HW_QUEUE_TYPE_SELFTEST;
  }

  override hwQueueInit(index: number, baseIova: number, basePa: number): number | Refusal {
    const slot = this.queues.check(index);
    if ('errno' in slot) return slot;
    // mock_hw_queue_init_phys checks the core's address against the parent's own translation.
    const t = this.parent.pageTable?.translate(baseIova);
    if (t === undefined || !t.ok || t.pa !== basePa) {
      return {
        errno: EFAULT,
        reason: `the parent does not translate 0x${baseIova.toString(16)} to 0x${basePa.toString(16)}`,
      };
    }
    this.queues.take(index, { index });
    return slot.prev === undefined ? -1 : slot.prev.index;
  }

  override hwQueueDestroy(index: number): void {
    this.queues.release(index);
  }
}

// ---- ARM SMMUv3 ------------------------------------------------------------------------------

/** The CMD_SYNC the host driver ends each batch of guest commands with. */
const HOST_CMD_SYNC = encodeSmmuCommand('CMD_SYNC', { CS: 2, MSH: 3, MSIAttr: 0xf });

/** IOMMU_VIOMMU_TYPE_ARM_SMMUV3: a guest's vSMMU over a stage-2 parent. */
class Smmuv3Viommu extends ViommuDriver {
  readonly name: string = 'arm-smmuv3';
  readonly invalidationType = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3;

  init(_data: UserData | null): Refusal | undefined {
    return undefined;
  }

  allocDomainNested(flags: number, data: UserData): IommuDomain | Refusal {
    if (flags !== 0) {
      return {
        errno: EOPNOTSUPP,
        reason: `flags 0x${flags.toString(16)}: an SMMUv3 nested domain takes no allocation flags`,
      };
    }
    const s = structs.iommu_hwpt_arm_smmuv3;
    if (data.type !== IOMMU_HWPT_DATA_ARM_SMMUV3) {
      return {
        errno: EINVAL,
        reason: `data_type ${data.type} is not IOMMU_HWPT_DATA_ARM_SMMUV3 (${IOMMU_HWPT_DATA_ARM_SMMUV3})`,
      };
    }
    const bytes = data.copyIn(s.sizeof, s.sizeof);
    if (!(bytes instanceof Uint8Array)) return bytes;
    const got = this.iommu.allocDomain({
      type: 'nested',
      parent: this.parent,
      dataType: IOMMU_HWPT_DATA_ARM_SMMUV3,
      data: bytes,
    });
    return got.ok ? got.value : { errno: got.errno, reason: got.reason };
  }

  cacheInvalidate(array: UserArray): InvalidationOutcome {
    if (array.type !== IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3) {
      return {
        handled: 0,
        refusal: {
          errno: EINVAL,
          reason: `data_type ${array.type} is not IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 (${IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3})`,
        },
      };
    }
    const entries = array.copyAll(structs.iommu_viommu_arm_smmuv3_invalidate.sizeof);
    if (!Array.isArray(entries)) return { handled: 0, refusal: entries };
    const lookup = (vsid: number): number | undefined => {
      const hit = this.vdevices.find(BigInt(vsid));
      return hit === undefined ? undefined : this.physicalId(hit.entry.device, hit.endpoint);
    };
    // Convert one by one; issue every GUEST_COMMAND_BATCH and at the end, as the kernel does.
    let batch: Uint8Array[] = [];
    for (let i = 0; i < entries.length; i++) {
      const r = convertGuestSmmuCommand(
        guestCommandWords(entries[i] as Uint8Array),
        this.vmid,
        lookup,
      );
      if (!r.ok) return { handled: i, refusal: { errno: EIO, reason: `entry ${i}: ${r.reason}` } };
      batch.push(guestCommandBytes(r.words));
      if (batch.length === GUEST_COMMAND_BATCH || i === entries.length - 1) {
        // A failed issue counts up to the entry before the batch's last, as the kernel's cur-- does.
        const refusal = this.issue(batch);
        if (refusal !== undefined) return { handled: i, refusal };
        batch = [];
      }
    }
    return { handled: entries.length };
  }

  // arm_smmu_cmdq_issue_cmdlist with sync = true: the host SMMU runs them, then
  // the driver's own CMD_SYNC (arm_smmu_cmdq_build_sync_cmd: SEV, inner shareable).
  private issue(batch: Uint8Array[]): Refusal | undefined {
    const bytes = new Uint8Array((batch.length + 1) * 16);
    batch.forEach((b, i) => {
      bytes.set(b, i * 16);
    });
    bytes.set(guestCommandBytes(HOST_CMD_SYNC), batch.length * 16);
    const r = this.iommu.submitCommands(bytes);
    return r.ok ? undefined : { errno: r.errno, reason: r.reason };
  }

  override guestEvent(fault: HwFault): GuestEvent | null {
    if (fault.model !== 'smmuv3' || fault.record.length < 32) return null;
    const summary = summarizeSmmuEvent(fault.record);
    const vsid = this.vsidForStream(summary.streamId);
    if (vsid === undefined || routeSmmuEvent(summary) !== 'guest') return null;
    return { type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, payload: guestSmmuEvent(fault.record, vsid) };
  }
}

// ---- Tegra241 CMDQV ----------------------------------------------------------------------------

/** IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV: a vSMMU with a VINTF of the CMDQV. */
class Tegra241Viommu extends Smmuv3Viommu {
  override readonly name = 'tegra241-cmdqv';
  private vintf = -1;
  private sids: VintfSidSlots;
  private readonly sidSlot = new Map<VdeviceEntry<Device>, number>();
  private readonly queues: HwQueueSlots<DriverHwQueue>;

  constructor(
    type: number,
    iommu: IommuInstance,
    parent: IommuDomain,
    settings: ViommuSettings,
    private readonly cmdqv: Tegra241Cmdqv,
  ) {
    super(type, iommu, parent, settings);
    this.sids = new VintfSidSlots(cmdqv.sidsPerVintf);
    this.queues = new HwQueueSlots<DriverHwQueue>(cmdqv.lvcmdqsPerVintf);
  }

  override init(data: UserData | null): Refusal | undefined {
    if (data === null)
      return {
        errno: EINVAL,
        reason: 'a Tegra241 CMDQV vIOMMU needs iommu_viommu_tegra241_cmdqv data',
      };
    const s = structs.iommu_viommu_tegra241_cmdqv;
    const got = data.copyIn(s.sizeof, s.sizeof);
    if (!(got instanceof Uint8Array)) return got;
    const vintf = this.cmdqv.allocVintf();
    if (typeof vintf !== 'number') return vintf;
    this.vintf = vintf;
    this.mmapRegion = {
      length: TEGRA241_VINTF_PAGE_BYTES,
      contents: new Uint8Array(TEGRA241_VINTF_PAGE_BYTES),
    };
    return undefined;
  }

  /** The answer written back once the core knows the mmap offset. */
  respond(data: UserData, mmapOffset: bigint): Refusal | undefined {
    return data.copyOut(
      structs.iommu_viommu_tegra241_cmdqv.encode({
        out_vintf_mmap_offset: mmapOffset,
        out_vintf_mmap_length: BigInt(TEGRA241_VINTF_PAGE_BYTES),
      }),
    );
  }

  override vdeviceInit(entry: VdeviceEntry<Device>): Refusal | undefined {
    const slot = this.sids.alloc(entry.virtId);
    if (typeof slot !== 'number') return slot;
    this.sidSlot.set(entry, slot);
    return undefined;
  }

  override vdeviceDestroy(entry: VdeviceEntry<Device>): void {
    const slot = this.sidSlot.get(entry);
    if (slot === undefined) return;
    this.sids.release(slot);
    this.sidSlot.delete(entry);
  }

  override hwQueueSupported(type: number): boolean {
    return type === IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV;
  }

  override hwQueueInit(
    index: number,
    _baseIova: number,
    basePa: number,
    length: number,
  ): number | Refusal {
    const slot = this.queues.check(index);
    if ('errno' in slot) return slot;
    const cmdqs = Number(this.iommu.decodedRegisters().IDR1?.CMDQS ?? 8);
    const bad = this.cmdqv.lvcmdqProblem(length, basePa, cmdqs);
    if (bad !== undefined) return bad;
    this.queues.take(index, { index });
    return slot.prev === undefined ? -1 : slot.prev.index;
  }

  override hwQueueDestroy(index: number): void {
    this.queues.release(index);
  }

  override destroy(): void {
    super.destroy();
    if (this.vintf >= 0) this.cmdqv.releaseVintf(this.vintf);
    this.vintf = -1;
  }
}

/** What a host offers for vIOMMUs on one IOMMU. */
export interface ViommuHostSupport {
  readonly settings: ViommuSettings;
  /** The CMDQV of this IOMMU, if it is a Tegra241 SMMU. */
  readonly cmdqv: Tegra241Cmdqv | null;
}

/**
 * get_viommu_size: EOPNOTSUPP when the IOMMU's driver has no vIOMMU of
 * `type` (VT-d and AMD have none in 6.17; SMMUv3 needs stage 2; Tegra241
 * needs a CMDQV), else undefined.
 */
export function viommuTypeProblem(
  type: number,
  iommu: IommuInstance,
  support: ViommuHostSupport,
): Refusal | undefined {
  const unsupported = (why: string): Refusal => ({
    errno: EOPNOTSUPP,
    reason: `${iommu.name}: ${why}`,
  });
  if (iommu instanceof MockIommu) {
    if (type === IOMMU_VIOMMU_TYPE_SELFTEST) return undefined;
    return unsupported(
      `the mock IOMMU has only vIOMMU type SELFTEST (0xdeadbeef), not 0x${type.toString(16)}`,
    );
  }
  if (iommu instanceof Smmuv3Iommu) {
    if (!iommu.features.stage2) return unsupported('this SMMU has no stage 2, so no nesting');
    if (type === IOMMU_VIOMMU_TYPE_ARM_SMMUV3) return undefined;
    if (type === IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV) {
      return support.cmdqv === null ? unsupported('this SMMU has no Tegra241 CMDQV') : undefined;
    }
    return unsupported(`vIOMMU type ${type} is not one the SMMUv3 driver has`);
  }
  return unsupported(`the ${iommu.model} driver has no vIOMMU in Linux 6.17`);
}

/**
 * get_viommu_size + viommu_init: a driver for a vIOMMU of `type` on
 * `iommu` over `parent` (checked with {@link viommuTypeProblem}), or EINVAL
 * when the parent belongs to another IOMMU.
 */
export function createViommuDriver(
  type: number,
  iommu: IommuInstance,
  parent: IommuDomain,
  support: ViommuHostSupport,
): ViommuDriver | Refusal {
  const bad = viommuTypeProblem(type, iommu, support);
  if (bad !== undefined) return bad;
  if (parent.iommu !== iommu) {
    return {
      errno: EINVAL,
      reason: `the nesting parent belongs to ${parent.iommu.name}, not ${iommu.name}`,
    };
  }
  if (type === IOMMU_VIOMMU_TYPE_SELFTEST)
    return new SelftestViommu(type, iommu, parent, support.settings);
  if (type === IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV) {
    return new Tegra241Viommu(
      type,
      iommu,
      parent,
      support.settings,
      support.cmdqv as Tegra241Cmdqv,
    );
  }
  return new Smmuv3Viommu(type, iommu, parent, support.settings);
}

/** The selftest vIOMMU, for TRIGGER_VEVENT (null for another type). */
export function asSelftestViommu(
  driver: ViommuDriver,
): { selftestEvent(device: Device): GuestEvent | null } | null {
  return driver instanceof SelftestViommu ? driver : null;
}

/** Write the driver's answer to the user's vIOMMU data once the mmap offset is known (mock and Tegra241). */
export function respondViommuData(
  driver: ViommuDriver,
  data: UserData,
  mmapOffset: bigint,
): Refusal | undefined {
  if (driver instanceof SelftestViommu || driver instanceof Tegra241Viommu)
    return driver.respond(data, mmapOffset);
  return undefined;
}
