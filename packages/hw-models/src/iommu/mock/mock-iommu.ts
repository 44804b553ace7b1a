/**
 * The iommufd selftest mock IOMMU (Linux 6.17 drivers/iommu/iommufd/selftest.c):
 * mock devices with their MOCK_DOMAIN_FLAGS and four cache words, mock
 * paging and nested domains, the selftest hw_info, and the operations the
 * IOMMU_TEST_CMD ops perform on them (check a mapping, mark pages dirty,
 * check and invalidate IOTLB / device-cache words, inject a page request).
 *
 * The mock has no hardware: no registers, no command queue, no IOTLB it
 * uses, no fault records. DMA through it (translateDma) is a convenience of
 * this model; its faults carry a small record of our own (see {@link encodeMockFault}).
 */
import {
  E2BIG,
  EINVAL,
  ENODEV,
  ENOMEM,
  EOPNOTSUPP,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_PASID_WIDTH,
  structs,
} from '@iommufd-sim/uapi-types';
import type { Device } from '../../device.js';
import { MOCK_HUGE_PAGE_SIZE, MOCK_IO_PAGE_SIZE, MockPageTable } from '../../pagetable/mock.js';
import type {
  DmaContext,
  DmaTranslation,
  DomainGeometry,
  DomainSpec,
  HwFault,
  HwInfo,
  HwResult,
  IommuConfig,
  IommuDomain,
  IommuEnvironment,
  IommuInstance,
  PageRequest,
  PageResponseCode,
  ReservedRegion,
} from '../iommu.js';
import { Iotlb } from '../iotlb.js';
import { MockBlockedDomain, MockNestedDomain, MockPagingDomain } from './mock-domain.js';

/** The device flags MOCK_DOMAIN_FLAGS accepts. */
export const MOCK_DEVICE_FLAGS_VALID =
  MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_HUGE_IOVA | MOCK_FLAGS_DEVICE_PASID;
/** The PASID whose attach fails every other time (the mock's built-in fault for rollback tests). */
export const MOCK_PASID_FAKE_ERROR = 1024;

/** Codes of {@link encodeMockFault} records. */
export const MOCK_FAULT_BLOCKED = 1;
/** The IO page has no slot. */
export const MOCK_FAULT_NOT_PRESENT = 2;
/** The IOVA is beyond the table. */
export const MOCK_FAULT_ADDRESS = 3;
/** The device is not behind the mock. */
export const MOCK_FAULT_NO_DEVICE = 4;

/**
 * The record of a mock fault (ours: the mock has none): 24 bytes, u32
 * requester, u32 PASID (0xffffffff for none), u32 ACCESS_* bits, u32 code,
 * u64 IOVA, little-endian.
 */
export function encodeMockFault(
  requester: number,
  pasid: number,
  access: number,
  code: number,
  iova: number,
): Uint8Array {
  const bytes = new Uint8Array(24);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, requester >>> 0, true);
  v.setUint32(4, pasid >>> 0, true);
  v.setUint32(8, access >>> 0, true);
  v.setUint32(12, code >>> 0, true);
  v.setBigUint64(16, BigInt(iova), true);
  return bytes;
}

/** IOMMU_TEST_OP_TRIGGER_IOPF's payload. */
export interface MockIopf {
  /** 0 (IOMMU_NO_PASID) for none. */
  readonly pasid: number;
  readonly grpid: number;
  /** IOMMU_PGFAULT_PERM_* bits. */
  readonly perm: number;
  readonly addr: number;
}

/** One entry of an IOMMU_HWPT_INVALIDATE for a mock nested domain. */
export interface MockIotlbInvalidation {
  readonly flags: number;
  readonly iotlbId: number;
}

interface MockDeviceState {
  flags: number;
  readonly cache: Uint32Array;
  domain: IommuDomain;
  readonly pasids: Map<number, IommuDomain>;
  pasid1024Error: boolean;
  iopfRefcount: number;
}

/** The selftest mock IOMMU. */
export class MockIommu implements IommuInstance {
  readonly name: string;
  readonly model = 'mock' as const;
  readonly config: Required<IommuConfig>;
  readonly env: IommuEnvironment;
  /** Present for the interface; the mock caches nothing. */
  readonly iotlb = new Iotlb({ sets: 1, ways: 1 });
  readonly faultLog: HwFault[] = [];
  onFault: ((fault: HwFault) => void) | null = null;
  onPageRequest: ((request: PageRequest) => void) | null = null;
  /** Page responses received (the mock's page_response does nothing else). */
  readonly pageResponses: { request: PageRequest; code: PageResponseCode }[] = [];
  private readonly devices = new Map<Device, MockDeviceState>();
  private readonly blocked: MockBlockedDomain;
  private nextTag = 1;

  constructor(config: IommuConfig, env: IommuEnvironment) {
    this.config = {
      name: config.name,
      model: 'mock',
      inputBits: config.inputBits ?? 56,
      outputBits: config.outputBits ?? 52,
      pageSizes: config.pageSizes ?? [MOCK_IO_PAGE_SIZE],
      pasidBits: config.pasidBits ?? MOCK_PASID_WIDTH,
      nesting: config.nesting ?? true,
      dirtyTracking: config.dirtyTracking ?? true,
      ats: config.ats ?? false,
      pri: config.pri ?? true,
    };
    this.name = config.name;
    this.env = env;
    this.blocked = new MockBlockedDomain(this, this.domainGeometry());
  }

  /** True for a MOCK_DOMAIN_FLAGS dev_flags value the kernel accepts. */
  static validMockFlags(flags: number): boolean {
    return Number.isInteger(flags) && flags >= 0 && (flags & ~MOCK_DEVICE_FLAGS_VALID) === 0;
  }

  registers(): Readonly<Record<string, bigint>> {
    return {};
  }

  decodedRegisters(): Readonly<Record<string, Readonly<Record<string, number | boolean>>>> {
    return {};
  }

  /** mock_domain_hw_info and capable(): SELFTEST data, DIRTY_TRACKING unless NO_DIRTY, 20 PASID bits for PASID devices. */
  hwInfo(device: Device): HwInfo {
    const flags = this.mockFlags(device);
    return {
      type: IOMMU_HW_INFO_TYPE_SELFTEST,
      data: structs.iommu_test_hw_info.encode({
        flags: 0,
        test_reg: IOMMU_HW_INFO_SELFTEST_REGVAL,
      }),
      capabilities:
        (flags & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0 ? 0n : BigInt(IOMMU_HW_CAP_DIRTY_TRACKING),
      maxPasidLog2:
        (flags & MOCK_FLAGS_DEVICE_PASID) !== 0
          ? MOCK_PASID_WIDTH
          : Math.min(device.pasidBits, MOCK_PASID_WIDTH),
    };
  }

  reservedRegions(_device: Device): readonly ReservedRegion[] {
    return [];
  }

  domainGeometry(device?: Device): DomainGeometry {
    const huge =
      device !== undefined && (this.mockFlags(device) & MOCK_FLAGS_DEVICE_HUGE_IOVA) !== 0;
    return {
      apertureStart: MOCK_APERTURE_START,
      apertureLast: MOCK_APERTURE_LAST,
      pageSizes: huge ? [MOCK_IO_PAGE_SIZE, MOCK_HUGE_PAGE_SIZE] : [MOCK_IO_PAGE_SIZE],
    };
  }

  /** Add a mock device with MOCK_DOMAIN_FLAGS `mockFlags` (throws RangeError for flags the kernel rejects). */
  addDevice(device: Device, mockFlags = 0): void {
    if (!MockIommu.validMockFlags(mockFlags))
      throw new RangeError(`invalid mock device flags 0x${mockFlags.toString(16)}`);
    if (this.devices.has(device)) {
      (this.devices.get(device) as MockDeviceState).flags = mockFlags;
      return;
    }
    this.devices.set(device, {
      flags: mockFlags,
      cache: new Uint32Array(4).fill(IOMMU_TEST_DEV_CACHE_DEFAULT),
      domain: this.blocked,
      pasids: new Map(),
      pasid1024Error: false,
      iopfRefcount: 0,
    });
  }

  /** Set a device's MOCK_DOMAIN_FLAGS (EINVAL outside NO_DIRTY | HUGE_IOVA | PASID, ENODEV for an unknown device). */
  setMockFlags(device: Device, flags: number): HwResult<void> {
    const state = this.devices.get(device);
    if (state === undefined) return fail(ENODEV, `${device.name} is not a mock device`);
    if (!MockIommu.validMockFlags(flags))
      return fail(EINVAL, `invalid mock device flags 0x${flags.toString(16)}`);
    state.flags = flags;
    return { ok: true, value: undefined };
  }

  /** A device's MOCK_DOMAIN_FLAGS (0 for an unknown device). */
  mockFlags(device: Device): number {
    return this.devices.get(device)?.flags ?? 0;
  }

  allocDomain(spec: DomainSpec): HwResult<IommuDomain> {
    switch (spec.type) {
      case 'blocked':
        return { ok: true, value: this.blocked };
      case 'identity':
        return fail(EOPNOTSUPP, 'the mock has no identity domain');
      case 'paging': {
        const flags = spec.device === undefined ? 0 : this.mockFlags(spec.device);
        if (spec.dirtyTracking === true && (flags & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0) {
          return fail(EOPNOTSUPP, 'a NO_DIRTY mock device cannot track dirty pages');
        }
        const hugeIova = (flags & MOCK_FLAGS_DEVICE_HUGE_IOVA) !== 0;
        let table: MockPageTable;
        try {
          table = new MockPageTable({
            allocator: this.env.allocator,
            hugeIova,
            inputBits: this.config.inputBits,
          });
        } catch {
          return fail(ENOMEM, 'no memory for the mock table');
        }
        return {
          ok: true,
          value: new MockPagingDomain(
            this,
            this.nextTag++,
            table,
            this.domainGeometry(spec.device),
            spec.nestParent === true,
            spec.dirtyTracking === true,
            spec.pasid === true,
            spec.iopf === true,
          ),
        };
      }
      case 'nested': {
        const parent = spec.parent;
        // The core refuses a parent that is not a nest parent before the driver sees it.
        if (!(parent instanceof MockPagingDomain) || parent.iommu !== this) {
          return fail(EINVAL, 'the parent is not a mock paging domain');
        }
        if (!parent.nestParent)
          return fail(EINVAL, 'the parent was not allocated as a nest parent');
        if (spec.dataType === IOMMU_HWPT_DATA_NONE)
          return fail(EINVAL, 'nested allocation needs user data');
        if (spec.dataType !== IOMMU_HWPT_DATA_SELFTEST)
          return fail(EOPNOTSUPP, 'the mock only takes IOMMU_HWPT_DATA_SELFTEST');
        if (spec.data.length < 4) return fail(EINVAL, 'struct iommu_hwpt_selftest is 4 bytes');
        if (spec.data.subarray(4).some((b) => b !== 0))
          return fail(E2BIG, 'bytes past iommu_hwpt_selftest must be zero');
        const iotlb = structs.iommu_hwpt_selftest.decode(spec.data).iotlb;
        return {
          ok: true,
          value: new MockNestedDomain(
            this,
            this.nextTag++,
            parent,
            iotlb,
            spec.pasid === true,
            spec.iopf === true,
          ),
        };
      }
    }
  }

  attach(device: Device, domain: IommuDomain, pasid?: number): HwResult<void> {
    const state = this.devices.get(device);
    if (state === undefined) return fail(ENODEV, `${device.name} is not a mock device`);
    if (domain.iommu !== this) return fail(EINVAL, 'the domain belongs to another IOMMU');
    if (pasid === undefined) {
      // mock_domain_nop_attach
      if (domain.dirtyCapable && (state.flags & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0) {
        return fail(EINVAL, 'a NO_DIRTY device cannot use a dirty-tracking domain');
      }
      this.iopfSwitch(state, domain, state.domain);
      state.domain = domain;
      return { ok: true, value: undefined };
    }
    if (!this.pasidCapableDevice(device)) return fail(EINVAL, `${device.name} has no PASID`);
    if (domain.type !== 'blocked' && !domain.pasidCapable) {
      return fail(EINVAL, 'the domain was not allocated with IOMMU_HWPT_ALLOC_PASID');
    }
    // mock_domain_set_dev_pasid_nop: pasid 1024 fails every second non-blocking call.
    if (pasid === MOCK_PASID_FAKE_ERROR) {
      if (domain.type === 'blocked') state.pasid1024Error = false;
      else if (state.pasid1024Error) {
        state.pasid1024Error = false;
        return fail(ENOMEM, 'the mock fakes an error for pasid 1024');
      } else state.pasid1024Error = true;
    }
    const old = state.pasids.get(pasid) ?? this.blocked;
    this.iopfSwitch(state, domain, old);
    if (domain.type === 'blocked') state.pasids.delete(pasid);
    else state.pasids.set(pasid, domain);
    return { ok: true, value: undefined };
  }

  detach(device: Device, pasid?: number): void {
    if (this.devices.has(device)) this.attach(device, this.blocked, pasid);
  }

  /** The domain at `device`'s RID, or at one of its PASIDs (null when none). */
  attachedDomain(device: Device, pasid?: number): IommuDomain | null {
    const state = this.devices.get(device);
    if (state === undefined) return null;
    return pasid === undefined ? state.domain : (state.pasids.get(pasid) ?? null);
  }

  /** How many attachments of `device` have an iopf handler (its membership of "mock-iopfq"). */
  iopfRefcount(device: Device): number {
    return this.devices.get(device)?.iopfRefcount ?? 0;
  }

  translateDma(ctx: DmaContext, iova: number, out: DmaTranslation): boolean {
    out.ok = false;
    out.fault = null;
    out.pageRequest = null;
    out.fromCache = false;
    out.pa = 0;
    out.contiguous = 0;
    const state = this.devices.get(ctx.device);
    if (state === undefined) {
      return this.fault(out, ctx, iova, MOCK_FAULT_NO_DEVICE, 'no-context', 'not a mock device');
    }
    const domain = ctx.pasid >= 0 ? (state.pasids.get(ctx.pasid) ?? this.blocked) : state.domain;
    let table: MockPageTable | null = null;
    if (domain instanceof MockPagingDomain) table = domain.pageTable;
    else if (domain instanceof MockNestedDomain) table = domain.parent.pageTable;
    if (table === null)
      return this.fault(out, ctx, iova, MOCK_FAULT_BLOCKED, 'blocked', 'blocked domain');
    const t = table.translate(iova);
    if (t.ok) {
      out.ok = true;
      out.pa = t.pa;
      out.contiguous = MOCK_IO_PAGE_SIZE - (iova % MOCK_IO_PAGE_SIZE);
      return true;
    }
    const code = t.fault === 'address-size' ? MOCK_FAULT_ADDRESS : MOCK_FAULT_NOT_PRESENT;
    if (domain.iopfCapable && t.fault === 'not-present') {
      const record = encodeMockFault(ctx.requester, ctx.pasid, ctx.access, code, iova);
      out.fault = this.makeFault(ctx, iova, code, 'not-present', 'no slot', record);
      out.pageRequest = this.report({
        device: ctx.device,
        requester: ctx.requester,
        pasid: ctx.pasid,
        groupId: 0,
        lastPage: true,
        perm: ctx.access & 0xf,
        address: iova - (iova % 4096),
        source: 'pri',
        record,
      });
      return false;
    }
    return this.fault(out, ctx, iova, code, t.fault ?? 'not-present', 'no slot');
  }

  /** The mock's page_response does nothing; the answer is only recorded. */
  completePageRequest(request: PageRequest, code: PageResponseCode): void {
    this.pageResponses.push({ request, code });
  }

  submitCommands(_commands: Uint8Array): HwResult<number> {
    return fail(EOPNOTSUPP, 'the mock IOMMU has no command queue');
  }

  // ---- what the IOMMU_TEST_CMD ops do -------------------------------------------------

  /**
   * MD_CHECK_MAP: every 2 KiB step of [iova, iova+length) must hold the
   * physical address `expectedPa(step)`. -EINVAL when unaligned, not a mock
   * paging domain, or any step differs.
   */
  checkMap(
    domain: IommuDomain,
    iova: number,
    length: number,
    expectedPa: (iova: number) => number,
  ): number {
    if (iova % MOCK_IO_PAGE_SIZE !== 0 || length % MOCK_IO_PAGE_SIZE !== 0) return -EINVAL;
    if (!(domain instanceof MockPagingDomain) || domain.iommu !== this) return -EINVAL;
    for (let at = iova; at < iova + length; at += MOCK_IO_PAGE_SIZE) {
      const slot = domain.pageTable.slot(at);
      if (slot === null || slot.pa !== expectedPa(at)) return -EINVAL;
    }
    return 0;
  }

  /** The four IOTLB words of a mock nested domain (null for anything else). */
  iotlbWords(domain: IommuDomain): readonly number[] | null {
    return domain instanceof MockNestedDomain ? [...domain.iotlb] : null;
  }

  /** MD_CHECK_IOTLB: 0 when word `id` of the nested domain is `value`, else -EINVAL. */
  checkIotlb(domain: IommuDomain, id: number, value: number): number {
    if (!(domain instanceof MockNestedDomain) || domain.iommu !== this) return -EINVAL;
    if (!(id >= 0 && id <= 3) || domain.iotlb[id] !== value >>> 0) return -EINVAL;
    return 0;
  }

  /**
   * IOMMU_HWPT_INVALIDATE on a mock nested domain
   * (mock_domain_cache_invalidate_user): the array type must be
   * IOMMU_HWPT_INVALIDATE_DATA_SELFTEST (EINVAL); each entry's flags may only
   * be FLAG_ALL (EOPNOTSUPP) and its iotlb_id at most 3 (EINVAL); FLAG_ALL
   * zeroes every word, otherwise the one named. Stops at the first bad entry;
   * `done` is the entry_num written back.
   */
  invalidateNested(
    domain: IommuDomain,
    entries: readonly MockIotlbInvalidation[],
    dataType: number = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  ): { errno: number; done: number } {
    if (!(domain instanceof MockNestedDomain) || domain.iommu !== this)
      return { errno: EINVAL, done: 0 };
    if (dataType !== IOMMU_HWPT_INVALIDATE_DATA_SELFTEST) return { errno: EINVAL, done: 0 };
    let done = 0;
    for (const e of entries) {
      if ((e.flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) return { errno: EOPNOTSUPP, done };
      if (!(e.iotlbId >= 0 && e.iotlbId <= 3)) return { errno: EINVAL, done };
      if ((e.flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) domain.iotlb.fill(0);
      else domain.iotlb[e.iotlbId] = 0;
      done++;
    }
    return { errno: 0, done };
  }

  /** The four cache words of a mock device (empty for an unknown one). */
  deviceCacheWords(device: Device): readonly number[] {
    const state = this.devices.get(device);
    return state === undefined ? [] : [...state.cache];
  }

  /** DEV_CHECK_CACHE: 0 when word `id` is `value`; -EINVAL otherwise; -ENODEV for an unknown device. */
  checkDeviceCache(device: Device, id: number, value: number): number {
    const state = this.devices.get(device);
    if (state === undefined) return -ENODEV;
    if (!(id >= 0 && id <= 3) || state.cache[id] !== value >>> 0) return -EINVAL;
    return 0;
  }

  /**
   * One vIOMMU cache invalidation entry for `device` (mock_viommu_cache_invalidate
   * after the vdev_id lookup): flags other than FLAG_ALL give -EOPNOTSUPP,
   * cache_id over 3 -EINVAL; FLAG_ALL zeroes all four words.
   */
  invalidateDeviceCache(device: Device, flags: number, cacheId: number): number {
    const state = this.devices.get(device);
    if (state === undefined) return -EINVAL;
    if ((flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) return -EOPNOTSUPP;
    if (!(cacheId >= 0 && cacheId <= 3)) return -EINVAL;
    if ((flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) state.cache.fill(0);
    else state.cache[cacheId] = 0;
    return 0;
  }

  /**
   * IOMMU_TEST_OP_DIRTY on a mock paging domain: see
   * {@link MockPageTable.setDirty}. -EINVAL for a bad size, a domain that is
   * not mock paging, or dirty tracking off. Returns out_nr_dirty.
   */
  setDirty(
    domain: IommuDomain,
    iova: number,
    length: number,
    pageSize: number,
    bits?: Uint8Array,
  ): number {
    if (!(pageSize > 0 && length > 0) || iova % pageSize !== 0 || length % pageSize !== 0)
      return -EINVAL;
    if (!(domain instanceof MockPagingDomain) || domain.iommu !== this) return -EINVAL;
    if (!domain.dirtyTracking) return -EINVAL;
    return domain.pageTable.setDirty(iova, length, pageSize, bits);
  }

  /**
   * TRIGGER_IOPF: a PRI page request from `device` with LAST_PAGE always set
   * and a PASID when `pasid` is not 0, delivered through {@link onPageRequest}.
   * Null for an unknown device (the op's ENOENT).
   */
  triggerIopf(device: Device, iopf: MockIopf): PageRequest | null {
    if (!this.devices.has(device)) return null;
    const pasid = iopf.pasid !== 0 ? iopf.pasid : -1;
    const record = new Uint8Array(24);
    const v = new DataView(record.buffer);
    v.setUint32(0, pasid >>> 0, true);
    v.setUint32(4, iopf.grpid >>> 0, true);
    v.setUint32(8, iopf.perm >>> 0, true);
    v.setBigUint64(16, BigInt(iopf.addr), true);
    return this.report({
      device,
      requester: device.rid,
      pasid,
      groupId: iopf.grpid,
      lastPage: true,
      perm: iopf.perm,
      address: iopf.addr,
      source: 'pri',
      record,
    });
  }

  // ---- internals --------------------------------------------------------------------

  private pasidCapableDevice(device: Device): boolean {
    return (this.mockFlags(device) & MOCK_FLAGS_DEVICE_PASID) !== 0 || device.pasidBits > 0;
  }

  /** mock_dev_enable_iopf for the new domain, then mock_dev_disable_iopf for the old. */
  private iopfSwitch(state: MockDeviceState, next: IommuDomain, old: IommuDomain): void {
    if (next.iopfCapable) state.iopfRefcount++;
    if (old.iopfCapable && state.iopfRefcount > 0) state.iopfRefcount--;
  }

  private report(request: PageRequest): PageRequest {
    this.onPageRequest?.(request);
    return request;
  }

  private makeFault(
    ctx: DmaContext,
    iova: number,
    code: number,
    kind: HwFault['kind'],
    reason: string,
    record: Uint8Array,
  ): HwFault {
    return {
      model: 'mock',
      name: kind === 'blocked' ? 'MOCK_BLOCKED' : 'MOCK_NO_SLOT',
      code,
      kind,
      stage: kind === 'blocked' || kind === 'no-context' ? 0 : 1,
      requester: ctx.requester,
      pasid: ctx.pasid,
      iova,
      access: ctx.access,
      record,
      reason,
    };
  }

  private fault(
    out: DmaTranslation,
    ctx: DmaContext,
    iova: number,
    code: number,
    kind: HwFault['kind'],
    reason: string,
  ): false {
    const record = encodeMockFault(ctx.requester, ctx.pasid, ctx.access, code, iova);
    const fault = this.makeFault(ctx, iova, code, kind, reason, record);
    this.faultLog.push(fault);
    out.fault = fault;
    this.onFault?.(fault);
    return false;
  }
}

function fail(errno: number, reason: string): { ok: false; errno: number; reason: string } {
  return { ok: false, errno, reason };
}
