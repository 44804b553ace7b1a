/**
 * An Intel VT-d unit in scalable mode, as the Linux 6.17 driver programs it:
 * a root table, scalable-mode context entries, PASID directories and PASID
 * tables in simulated memory; DMA translated by reading those structures
 * (root -> context -> PASID directory -> PASID entry -> page tables) through
 * a PASID-entry cache, the IOTLB (tagged DID + PASID) and device TLBs; fault
 * recording registers; page requests for PRI devices; and a queued
 * invalidation interface executing 256-bit descriptors.
 *
 * Defaults (documented choices): 48-bit input (QEMU's aw-bits default since
 * 9.0, 4-level tables), 48-bit output (QEMU uses aw-bits as the host address
 * width too), 4K/2M/1G pages, 20-bit PASIDs, nesting, dirty tracking (SSADS),
 * ATS and PRI on.
 */
import {
  E2BIG,
  EINVAL,
  ENODEV,
  ENOMEM,
  ENOSPC,
  EOPNOTSUPP,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_VTD_S1_EAFE,
  IOMMU_VTD_S1_SRE,
  IOMMU_VTD_S1_WPE,
  structs,
} from '@iommufd-sim/uapi-types';
import type { Device } from '../../device.js';
import { FRAME_SIZE } from '../../memory/physical-memory.js';
import {
  ACCESS_EXEC,
  ACCESS_PRIV,
  ACCESS_READ,
  ACCESS_WRITE,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  newTranslation,
  type PageTable,
  type TranslationFault,
} from '../../pagetable/format.js';
import { Stage2TableMemory } from '../../pagetable/nested.js';
import { VtdSecondStagePageTable } from '../../pagetable/vtd-second-stage.js';
import { X86PageTable } from '../../pagetable/x86-64.js';
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
import { Iotlb, NO_ASID, newTlbHit } from '../iotlb.js';
import { wordsToBytes } from './bits.js';
import {
  awOfLevels,
  CONTEXT_TT,
  contextEntryLayout,
  PGTT,
  pasidDirEntryLayout,
  pasidEntryLayout,
  rootEntryLayout,
  smContextEntryLayout,
  smRootEntryLayout,
} from './context.js';
import { VtdDomain, type VtdStage1Config } from './domain.js';
import {
  decodeQiDescriptor,
  deviceTlbRange,
  encodeQiDescriptor,
  PRQ_RESPONSE,
  QI_DESCRIPTOR_BYTES,
  QI_TYPE,
} from './invalidation.js';
import {
  firstStageReason,
  frcdLayout,
  pageRequestLayout,
  secondStageReason,
  VTD_FAULT,
  vtdFaultName,
} from './records.js';
import { decodeCap, decodeEcap, VTD_FSTS, VTD_RTADDR_SMT, vtdCapabilities } from './registers.js';

const K4 = 4096;
const M2 = 2 ** 21;
const G1 = 2 ** 30;
/** DID used by pass-through and blocked entries (the driver's FLPT_DEFAULT_DID). */
export const VTD_DEFAULT_DID = 1;
/** First DID the driver hands to paging and nested domains (DIDs 0 and 1 are reserved). */
export const VTD_FIRST_DID = 2;
// Cached with an IOTLB entry: the walk that filled it saw a write (D is set).
const CACHED_DIRTY = 0x80;

/** The page group response the queue executed (type 9 descriptors), for reports and tests. */
export interface VtdPageResponse {
  readonly rid: number;
  readonly pasid: number;
  readonly prgIndex: number;
  readonly code: number;
  readonly lastPage: boolean;
}

// What the PASID-entry cache holds for one (requester, PASID): the decoded
// configuration and ready-made walkers over the tables it points at.
interface PasidConfig {
  rid: number;
  pasid: number; // effective PASID (RID_PASID for requests without one)
  did: number;
  pgtt: number;
  fpd: boolean;
  dte: boolean;
  pre: boolean;
  sre: boolean;
  fs: PageTable | null;
  ss: PageTable | null;
  s2memory: Stage2TableMemory | null;
}

interface DeviceState {
  readonly device: Device;
  readonly pasidDir: number;
  readonly pasidDirBytes: number;
  readonly pdts: number;
  readonly pasidTables: Map<number, number>; // directory index -> PASID table address
  readonly attached: Map<number, VtdDomain>; // pasid (-1 for the RID) -> domain
  nextPrg: number;
}

type Resolved =
  | { ok: true; cfg: PasidConfig }
  | { ok: false; code: number; fpd: boolean; kind: HwFault['kind']; why: string };

/** An Intel VT-d IOMMU. */
export class VtdIommu implements IommuInstance {
  readonly name: string;
  readonly model = 'vtd' as const;
  readonly config: Required<IommuConfig>;
  readonly env: IommuEnvironment;
  /** The IOTLB: tag = DID, asid = PASID (RID_PASID for requests without one). */
  readonly iotlb = new Iotlb();
  /** Every device TLB (ATS): tag = requester id, asid = PASID or NO_ASID. */
  readonly deviceTlb = new Iotlb({ sets: 256 });
  readonly faultLog: HwFault[] = [];
  onFault: ((fault: HwFault) => void) | null = null;
  onPageRequest: ((request: PageRequest) => void) | null = null;
  /** CAP_REG. */
  readonly cap: bigint;
  /** ECAP_REG. */
  readonly ecap: bigint;
  /** RTADDR_REG: root table address | TTM (bit 10 = scalable mode). */
  rtaddr: number;
  /** FSTS_REG. */
  fsts = 0;
  /** Fault recording registers: NFR+1 records of four words. */
  readonly faultRecords: Uint32Array;
  /**
   * Clear each fault record once it is logged, as the driver's fault
   * interrupt handler does; false leaves them for {@link clearFaultRecord}
   * (and later faults overflow: FSTS.PFO).
   */
  driverClearsFaults = true;
  /** Page requests raised, oldest first (the page request queue's contents). */
  readonly pageRequests: PageRequest[] = [];
  /** Page group responses executed. */
  readonly responses: VtdPageResponse[] = [];
  /** Descriptors the last {@link submitCommands} call processed. */
  qiProcessed = 0;

  private readonly capFields: ReturnType<typeof decodeCap>;
  private readonly ecapFields: ReturnType<typeof decodeEcap>;
  private readonly devices = new Map<number, DeviceState>();
  private readonly contextTables = new Map<number, number>(); // bus*2 + upper -> table address
  private readonly usedDids = new Set<number>();
  /** DIDs of nested domains: their IOTLB entries are combined, tagged by stage-1 input address. */
  private readonly nestedDids = new Set<number>();
  private readonly pasidCache = new Map<number, PasidConfig>();
  private readonly pending = new Map<string, PageRequest>();
  private readonly hit = newTlbHit();
  private readonly scratch = newTranslation();
  private readonly scratch2 = newTranslation();
  private readonly words = new Uint32Array(16);
  private fri = 0;
  private readonly blocked: VtdDomain;
  private readonly identity: VtdDomain;

  constructor(config: IommuConfig, env: IommuEnvironment) {
    const inputBits = config.inputBits ?? 48;
    if (inputBits !== 39 && inputBits !== 48 && inputBits !== 57) {
      throw new RangeError(`${config.name}: VT-d input width must be 39, 48 or 57 bits`);
    }
    const pageSizes = [...(config.pageSizes ?? [K4, M2, G1])].sort((a, b) => a - b);
    if (pageSizes[0] !== K4 || pageSizes.some((s) => s !== K4 && s !== M2 && s !== G1)) {
      throw new RangeError(`${config.name}: VT-d page sizes are 4K (required), 2M and 1G`);
    }
    this.config = {
      name: config.name,
      model: 'vtd',
      inputBits,
      outputBits: config.outputBits ?? 48,
      pageSizes,
      pasidBits: config.pasidBits ?? 20,
      nesting: config.nesting ?? true,
      dirtyTracking: config.dirtyTracking ?? true,
      ats: config.ats ?? true,
      pri: config.pri ?? true,
    };
    this.name = config.name;
    this.env = env;
    const { cap, ecap } = vtdCapabilities(this.config);
    this.cap = cap;
    this.ecap = ecap;
    this.capFields = decodeCap(cap);
    this.ecapFields = decodeEcap(ecap);
    this.faultRecords = new Uint32Array((this.capFields.NFR + 1) * 4);
    const root = this.allocate(K4);
    this.rtaddr = root + VTD_RTADDR_SMT;
    const none = this.pagingGeometry('second');
    this.blocked = new VtdDomain(
      this,
      'blocked',
      'blocked',
      0,
      null,
      none,
      null,
      false,
      false,
      true,
      false,
    );
    this.identity = new VtdDomain(
      this,
      'identity',
      'pass-through',
      VTD_DEFAULT_DID,
      null,
      none,
      null,
      false,
      false,
      true,
      false,
    );
  }

  // ---- registers and reports -----------------------------------------------------

  registers(): Readonly<Record<string, bigint>> {
    return {
      VER: 0x10n,
      CAP: this.cap,
      ECAP: this.ecap,
      RTADDR: BigInt(this.rtaddr),
      FSTS: BigInt(this.fsts),
    };
  }

  decodedRegisters(): Readonly<Record<string, Readonly<Record<string, number | boolean>>>> {
    return { CAP: { ...this.capFields }, ECAP: { ...this.ecapFields } };
  }

  hwInfo(device: Device): HwInfo {
    const data = structs.iommu_hw_info_vtd.encode({
      flags: IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
      __reserved: 0,
      cap_reg: this.cap,
      ecap_reg: this.ecap,
    });
    // iommufd_get_hw_info: DIRTY_TRACKING from the driver's capability (SSADS in
    // scalable mode); max_pasid_log2 from the PASIDs both sides support. The
    // device model has no PASID EXEC/PRIV capability bits, so those stay clear.
    const pasidLog2 =
      this.ecapFields.PASID === 1 && device.pasidBits > 0
        ? Math.min(device.pasidBits, this.ecapFields.PSS + 1)
        : 0;
    return {
      type: IOMMU_HW_INFO_TYPE_INTEL_VTD,
      data,
      capabilities: this.ssadsSupported() ? BigInt(IOMMU_HW_CAP_DIRTY_TRACKING) : 0n,
      maxPasidLog2: pasidLog2,
    };
  }

  reservedRegions(_device: Device): readonly ReservedRegion[] {
    // The interrupt (MSI) window the driver reserves for every device.
    return [{ start: 0xfee00000, last: 0xfeefffff, kind: 'msi' }];
  }

  domainGeometry(_device?: Device): DomainGeometry {
    return this.pagingGeometry(this.ecapFields.FSTS === 1 ? 'first' : 'second');
  }

  private ssadsSupported(): boolean {
    return this.ecapFields.SMTS === 1 && this.ecapFields.SSADS === 1;
  }

  // First-stage domains lose the top input bit (canonical addresses: the lower half only).
  private pagingGeometry(stage: 'first' | 'second'): DomainGeometry {
    const bits = this.config.inputBits;
    const pageSizes = [K4];
    if (stage === 'first') {
      pageSizes.push(M2);
      if (this.capFields.FS1GP === 1) pageSizes.push(G1);
    } else {
      if ((this.capFields.SSLPS & 1) !== 0) pageSizes.push(M2);
      if ((this.capFields.SSLPS & 2) !== 0) pageSizes.push(G1);
    }
    return {
      apertureStart: 0,
      apertureLast: 2 ** (stage === 'first' ? bits - 1 : bits) - 1,
      pageSizes,
    };
  }

  // ---- memory helpers ---------------------------------------------------------------

  private allocate(bytes: number): number {
    const pa = this.env.allocator.allocate(bytes);
    if (pa < 0) throw new RangeError(`${this.name}: no memory for VT-d structures`);
    return pa;
  }

  // Read `n` words at `addr` (an entry never crosses a frame) into the scratch words.
  private read(addr: number, n: number): Uint32Array {
    const frame = this.env.memory.readFrame(Math.floor(addr / FRAME_SIZE));
    const at = (addr % FRAME_SIZE) >>> 2;
    const w = this.words;
    for (let i = 0; i < n; i++) w[i] = frame[at + i] as number;
    return w;
  }

  private write(addr: number, words: Uint32Array): void {
    const frame = this.env.memory.writeFrame(Math.floor(addr / FRAME_SIZE));
    frame.set(words, (addr % FRAME_SIZE) >>> 2);
  }

  /** Load RTADDR_REG and latch it (SRTP), dropping every cached context and translation. */
  writeRtaddr(value: number): void {
    this.rtaddr = value;
    this.pasidCache.clear();
    this.iotlb.invalidateAll();
    this.deviceTlb.invalidateAll();
  }

  // ---- devices and context entries ----------------------------------------------

  addDevice(device: Device): void {
    if (!device.isPci || device.rid < 0) {
      throw new TypeError(`${device.name}: a VT-d unit translates PCI devices (with a RID)`);
    }
    if (this.devices.has(device.rid)) return;
    // PASID directory sized as intel_pasid_alloc_table does: at least one page,
    // PDTS = log2(entries) - 7.
    const pasidBits =
      this.ecapFields.PASID === 1 ? Math.min(device.pasidBits, this.ecapFields.PSS + 1) : 0;
    const entries = Math.max(512, 2 ** Math.max(0, pasidBits - 6));
    const bytes = entries * 8;
    const pasidDir = this.allocate(bytes);
    const state: DeviceState = {
      device,
      pasidDir,
      pasidDirBytes: bytes,
      pdts: Math.log2(entries) - 7,
      pasidTables: new Map(),
      attached: new Map(),
      nextPrg: 0,
    };
    this.devices.set(device.rid, state);
    this.writeContext(state, false);
  }

  private contextEntryAddress(rid: number): number {
    const bus = rid >>> 8;
    const devfn = rid & 0xff;
    const upper = devfn >= 128 ? 1 : 0;
    const key = bus * 2 + upper;
    let table = this.contextTables.get(key);
    const root = this.rtaddr - (this.rtaddr % FRAME_SIZE);
    if (table === undefined) {
      table = this.allocate(K4);
      this.contextTables.set(key, table);
      const entry = smRootEntryLayout.decode(this.read(root + bus * 16, 4));
      if (upper === 1) {
        entry.upperPresent = 1;
        entry.upperContextTable = table;
      } else {
        entry.lowerPresent = 1;
        entry.lowerContextTable = table;
      }
      this.write(root + bus * 16, smRootEntryLayout.encode(entry));
    }
    return table + (devfn & 0x7f) * 32;
  }

  // The SM context entry of a probed device: PASID directory, RID_PASID 0,
  // DTE for ATS devices, PASIDE when PASIDs are usable, PRE while an
  // iopf-capable domain is attached to a PRI device.
  private writeContext(state: DeviceState, pre: boolean): void {
    const { device } = state;
    const addr = this.contextEntryAddress(device.rid);
    this.write(
      addr,
      smContextEntryLayout.encode({
        present: 1,
        dte: device.ats && this.ecapFields.DT === 1 ? 1 : 0,
        paside: device.pasidBits > 0 && this.ecapFields.PASID === 1 ? 1 : 0,
        pre: pre ? 1 : 0,
        pdts: state.pdts,
        pasidDir: state.pasidDir,
        ridPasid: 0,
      }),
    );
  }

  private pasidEntryAddress(state: DeviceState, pasid: number, create: boolean): number {
    const dirIndex = pasid >>> 6;
    let table = state.pasidTables.get(dirIndex);
    if (table === undefined) {
      if (!create) return -1;
      table = this.allocate(K4);
      state.pasidTables.set(dirIndex, table);
      this.write(
        state.pasidDir + dirIndex * 8,
        pasidDirEntryLayout.encode({ present: 1, pasidTable: table }),
      );
    }
    return table + (pasid & 63) * 64;
  }

  // ---- domains ----------------------------------------------------------------------

  allocDomain(spec: DomainSpec): HwResult<IommuDomain> {
    if (spec.type === 'blocked') return { ok: true, value: this.blocked };
    if (spec.type === 'identity') return { ok: true, value: this.identity };
    if (spec.type === 'paging') return this.allocPaging(spec);
    return this.allocNested(spec);
  }

  // intel_iommu_domain_alloc_paging_flags: the first stage when it can serve
  // the flags (no NEST_PARENT, no DIRTY_TRACKING), else the second stage.
  private allocPaging(spec: Extract<DomainSpec, { type: 'paging' }>): HwResult<IommuDomain> {
    const nestParent = spec.nestParent === true;
    const dirty = spec.dirtyTracking === true;
    let stage: 'first' | 'second';
    if (!nestParent && !dirty && this.ecapFields.SMTS === 1 && this.ecapFields.FSTS === 1) {
      stage = 'first';
    } else {
      if (nestParent && !(this.ecapFields.NEST === 1 && this.ecapFields.SMTS === 1)) {
        return {
          ok: false,
          errno: EOPNOTSUPP,
          reason: 'NEST_PARENT: the IOMMU has no nested translation (ECAP.NEST)',
        };
      }
      if (dirty && !this.ssadsSupported()) {
        return {
          ok: false,
          errno: EOPNOTSUPP,
          reason: 'DIRTY_TRACKING: the IOMMU has no second-stage A/D support (ECAP.SSADS)',
        };
      }
      if (this.ecapFields.SMTS === 1 && this.ecapFields.SSTS !== 1) {
        return {
          ok: false,
          errno: EOPNOTSUPP,
          reason: 'the IOMMU has no second-stage translation (ECAP.SSTS)',
        };
      }
      stage = 'second';
    }
    const did = this.allocDid();
    if (did < 0) return { ok: false, errno: ENOSPC, reason: 'no free domain id' };
    const geometry = this.pagingGeometry(stage);
    const levels = this.config.inputBits === 39 ? 3 : this.config.inputBits === 48 ? 4 : 5;
    let table: PageTable;
    try {
      table =
        stage === 'first'
          ? new X86PageTable({
              allocator: this.env.allocator,
              levels: levels === 5 && this.capFields.FS5LP === 1 ? 5 : 4,
              pageSizes: geometry.pageSizes,
              outputBits: this.config.outputBits,
            })
          : new VtdSecondStagePageTable({
              allocator: this.env.allocator,
              levels: levels as 3 | 4 | 5,
              pageSizes: geometry.pageSizes,
              outputBits: this.config.outputBits,
            });
    } catch {
      this.releaseDid(did);
      return { ok: false, errno: ENOMEM, reason: 'no memory for the top-level table' };
    }
    const domain = new VtdDomain(
      this,
      'paging',
      stage,
      did,
      table,
      geometry,
      null,
      nestParent,
      dirty,
      spec.pasid === true,
      spec.iopf === true,
    );
    return { ok: true, value: domain };
  }

  // intel_iommu_domain_alloc_nested: the data type, the parent, then the struct.
  private allocNested(spec: Extract<DomainSpec, { type: 'nested' }>): HwResult<IommuDomain> {
    if (this.ecapFields.NEST !== 1) {
      return {
        ok: false,
        errno: EOPNOTSUPP,
        reason: 'the IOMMU has no nested translation (ECAP.NEST)',
      };
    }
    if (spec.dataType !== IOMMU_HWPT_DATA_VTD_S1) {
      return {
        ok: false,
        errno: EOPNOTSUPP,
        reason: `data type ${spec.dataType} is not IOMMU_HWPT_DATA_VTD_S1`,
      };
    }
    const parent = spec.parent;
    if (
      !(parent instanceof VtdDomain) ||
      parent.iommu !== this ||
      parent.stage !== 'second' ||
      !parent.nestParent
    ) {
      return {
        ok: false,
        errno: EINVAL,
        reason: 'the parent must be a second-stage nest-parent domain of this IOMMU',
      };
    }
    const size = structs.iommu_hwpt_vtd_s1.sizeof;
    if (spec.data.length < size) {
      return {
        ok: false,
        errno: EINVAL,
        reason: `iommu_hwpt_vtd_s1 needs ${size} bytes, got ${spec.data.length}`,
      };
    }
    if (spec.data.subarray(size).some((b) => b !== 0)) {
      return {
        ok: false,
        errno: E2BIG,
        reason: 'iommu_hwpt_vtd_s1: non-zero bytes past the struct',
      };
    }
    const s1 = structs.iommu_hwpt_vtd_s1.decode(spec.data);
    const did = this.allocDid();
    if (did < 0) return { ok: false, errno: ENOSPC, reason: 'no free domain id' };
    this.nestedDids.add(did);
    const stage1: VtdStage1Config = {
      flags: Number(s1.flags & 0xffffffffn),
      pgtblAddr: Number(s1.pgtbl_addr),
      addrWidth: s1.addr_width,
    };
    const width = s1.addr_width === 57 ? 57 : 48;
    const geometry: DomainGeometry = {
      apertureStart: 0,
      apertureLast: 2 ** (width - 1) - 1,
      pageSizes: this.pagingGeometry('first').pageSizes,
    };
    const domain = new VtdDomain(
      this,
      'nested',
      'nested',
      did,
      null,
      geometry,
      parent,
      false,
      false,
      spec.pasid === true,
      spec.iopf === true,
      stage1,
    );
    parent.children.add(domain);
    return { ok: true, value: domain };
  }

  private allocDid(): number {
    const limit = 2 ** (4 + 2 * this.capFields.ND);
    for (let did = VTD_FIRST_DID; did < limit; did++) {
      if (!this.usedDids.has(did)) {
        this.usedDids.add(did);
        return did;
      }
    }
    return -1;
  }

  /** Give a DID back (a freed domain). */
  releaseDid(did: number): void {
    this.usedDids.delete(did);
    this.nestedDids.delete(did);
  }

  // ---- attach and detach ------------------------------------------------------------

  attach(device: Device, domain: IommuDomain, pasid?: number): HwResult<void> {
    const state = this.devices.get(device.rid);
    if (state === undefined || state.device !== device) {
      return { ok: false, errno: ENODEV, reason: `${device.name} is not behind ${this.name}` };
    }
    if (!(domain instanceof VtdDomain) || domain.iommu !== this) {
      return { ok: false, errno: EINVAL, reason: 'the domain belongs to another IOMMU' };
    }
    const slot = pasid ?? -1;
    if (pasid !== undefined) {
      const bits =
        this.ecapFields.PASID === 1 ? Math.min(device.pasidBits, this.ecapFields.PSS + 1) : 0;
      if (bits === 0)
        return { ok: false, errno: EINVAL, reason: `${device.name} has no usable PASID` };
      if (!Number.isInteger(pasid) || pasid < 1 || pasid >= 2 ** bits) {
        return { ok: false, errno: EINVAL, reason: `PASID ${pasid} is outside [1, 2^${bits})` };
      }
      if ((domain.type === 'paging' || domain.type === 'nested') && !domain.pasidCapable) {
        return { ok: false, errno: EINVAL, reason: 'the domain was not allocated for PASID use' };
      }
    }
    const entry = this.pasidEntryFor(domain);
    if (!entry.ok) return entry;
    const effective = slot < 0 ? 0 : slot;
    const addr = this.pasidEntryAddress(state, effective, true);
    const old = pasidEntryLayout.decode(this.read(addr, 16));
    this.write(addr, entry.value === null ? new Uint32Array(16) : entry.value);
    if (old.present === 1) this.flushPasidEntry(state, effective, old.did, old.pgtt);
    const previous = state.attached.get(slot);
    previous?.attachments.delete(`${device.rid}:${slot}`);
    if (domain.stage === 'blocked') state.attached.delete(slot);
    else {
      state.attached.set(slot, domain);
      domain.attachments.set(`${device.rid}:${slot}`, { rid: device.rid, pasid: slot });
    }
    this.updatePri(state);
    return { ok: true, value: undefined };
  }

  detach(device: Device, pasid?: number): void {
    if (!this.devices.has(device.rid)) return;
    this.attach(device, this.blocked, pasid);
  }

  // The PASID entry a domain programs (null: not present), or why the driver refuses.
  private pasidEntryFor(domain: VtdDomain): HwResult<Uint32Array | null> {
    const aw = awOfLevels(this.config.inputBits === 39 ? 3 : this.config.inputBits === 48 ? 4 : 5);
    const pwsnp = this.ecapFields.SMPWCS;
    switch (domain.stage) {
      case 'blocked':
        return { ok: true, value: null };
      case 'pass-through':
        return {
          ok: true,
          value: pasidEntryLayout.encode({
            present: 1,
            aw,
            pgtt: PGTT.PASS_THROUGH,
            did: VTD_DEFAULT_DID,
            pwsnp,
          }),
        };
      case 'first': {
        const table = domain.pageTable as X86PageTable;
        return {
          ok: true,
          value: pasidEntryLayout.encode({
            present: 1,
            aw,
            pgtt: PGTT.FIRST_STAGE,
            did: domain.tag,
            pwsnp,
            fspm: table.levels === 5 ? 1 : 0,
            fsptptr: table.root,
          }),
        };
      }
      case 'second': {
        const table = domain.pageTable as VtdSecondStagePageTable;
        return {
          ok: true,
          value: pasidEntryLayout.encode({
            present: 1,
            aw: awOfLevels(table.levels),
            pgtt: PGTT.SECOND_STAGE,
            ssade: domain.dirtyTracking ? 1 : 0,
            ssptptr: table.root,
            did: domain.tag,
            pwsnp,
          }),
        };
      }
      case 'nested': {
        // intel_pasid_setup_nested's checks, made at attach time as the driver does.
        const s1 = domain.stage1 as VtdStage1Config;
        const parent = domain.parent as VtdDomain;
        if (s1.addrWidth !== 48 && s1.addrWidth !== 57) {
          return {
            ok: false,
            errno: EINVAL,
            reason: `stage-1 addr_width ${s1.addrWidth} is not 48 or 57`,
          };
        }
        if (s1.addrWidth === 57 && this.capFields.FS5LP !== 1) {
          return { ok: false, errno: EINVAL, reason: '5-level stage 1 needs CAP.FS5LP' };
        }
        if ((s1.flags & IOMMU_VTD_S1_SRE) !== 0 && this.ecapFields.SRS !== 1) {
          return { ok: false, errno: EINVAL, reason: 'SRE needs ECAP.SRS' };
        }
        if ((s1.flags & IOMMU_VTD_S1_EAFE) !== 0 && this.ecapFields.EAFS !== 1) {
          return { ok: false, errno: EINVAL, reason: 'EAFE needs ECAP.EAFS' };
        }
        if (s1.pgtblAddr % K4 !== 0 || s1.pgtblAddr >= 2 ** this.config.outputBits) {
          return {
            ok: false,
            errno: EINVAL,
            reason: `pgtbl_addr 0x${s1.pgtblAddr.toString(16)} is not a 4 KiB-aligned address`,
          };
        }
        const s2 = parent.pageTable as VtdSecondStagePageTable;
        const sre = (s1.flags & IOMMU_VTD_S1_SRE) !== 0;
        return {
          ok: true,
          value: pasidEntryLayout.encode({
            present: 1,
            aw: awOfLevels(s2.levels),
            pgtt: PGTT.NESTED,
            ssade: parent.dirtyTracking ? 1 : 0,
            ssptptr: s2.root,
            did: domain.tag,
            pwsnp,
            sre: sre ? 1 : 0,
            wpe: sre && (s1.flags & IOMMU_VTD_S1_WPE) !== 0 ? 1 : 0,
            eafe: (s1.flags & IOMMU_VTD_S1_EAFE) !== 0 ? 1 : 0,
            fspm: s1.addrWidth === 57 ? 1 : 0,
            fsptptr: s1.pgtblAddr,
          }),
        };
      }
    }
  }

  // PRE follows whether an iopf-capable domain is attached to a PRI+ATS device.
  private updatePri(state: DeviceState): void {
    const { device } = state;
    if (!device.pri || !device.ats || this.ecapFields.PRS !== 1) return;
    let want = false;
    for (const d of state.attached.values()) if (d.iopfCapable) want = true;
    const addr = this.contextEntryAddress(device.rid);
    const have = smContextEntryLayout.decode(this.read(addr, 8)).pre === 1;
    if (want === have) return;
    this.writeContext(state, want);
    this.submitCommands(
      encodeQiDescriptor(QI_TYPE.CONTEXT_CACHE, { granularity: 3, sid: device.rid }),
    );
  }

  /** After SSADE changes for a second-stage domain: rewrite the PASID entries that use it, then flush. */
  reprogramDirtyTracking(domain: VtdDomain): void {
    const users = [domain, ...domain.children];
    for (const d of users) {
      for (const { rid, pasid } of d.attachments.values()) {
        const state = this.devices.get(rid) as DeviceState;
        const effective = pasid < 0 ? 0 : pasid;
        const addr = this.pasidEntryAddress(state, effective, false);
        if (addr < 0) continue;
        const entry = pasidEntryLayout.decode(this.read(addr, 16));
        entry.ssade = domain.dirtyTracking ? 1 : 0;
        this.write(addr, pasidEntryLayout.encode(entry));
        this.flushPasidEntry(state, effective, entry.did, entry.pgtt);
      }
    }
  }

  // What the driver flushes after changing a present PASID entry: the PASID
  // cache, the IOTLB of the old DID (PASID-based for first-stage and nested
  // entries, DID-based for second stage and pass-through) and the device TLB.
  private flushPasidEntry(state: DeviceState, pasid: number, did: number, pgtt: number): void {
    const parts = [encodeQiDescriptor(QI_TYPE.PASID_CACHE, { granularity: 1, did, pasid })];
    if (pgtt === PGTT.SECOND_STAGE || pgtt === PGTT.PASS_THROUGH) {
      parts.push(encodeQiDescriptor(QI_TYPE.IOTLB, { granularity: 2, did }));
    } else {
      parts.push(encodeQiDescriptor(QI_TYPE.PASID_IOTLB, { granularity: 2, did, pasid }));
    }
    this.pushDeviceTlbFlush(parts, state.device, pasid === 0 ? -1 : pasid, 0, -1);
    this.submitCommands(concat(parts));
  }

  private pushDeviceTlbFlush(
    parts: Uint8Array[],
    device: Device,
    pasid: number,
    start: number,
    length: number,
  ): void {
    if (!device.ats || this.ecapFields.DT !== 1) return;
    let addr = 0;
    let size = 1;
    if (length < 0) {
      addr = 2 ** 52 - K4; // every ADDR bit set: the whole space
    } else {
      const { base, mask } = psiAligned(start, length);
      if (mask > 0) {
        size = 1;
        addr = base + (2 ** (11 + mask) - K4);
      } else {
        size = 0;
        addr = base;
      }
    }
    if (pasid < 0) {
      parts.push(
        encodeQiDescriptor(QI_TYPE.DEVICE_TLB, {
          sid: device.rid,
          size,
          addr,
          pfsidLow: device.rid & 0xf,
          pfsidHigh: device.rid >>> 4,
        }),
      );
    } else {
      parts.push(
        encodeQiDescriptor(QI_TYPE.PASID_DEVICE_TLB, {
          sid: device.rid,
          pasid,
          size,
          addr,
          pfsidLow: device.rid & 0xf,
          pfsidHigh: device.rid >>> 4,
        }),
      );
    }
  }

  /**
   * Flush [start, start+length) of a domain (length -1: everything) as the
   * driver's cache tags do: second-stage domains by DID (page-selective when
   * PSI allows, else domain-selective), first-stage and nested domains by DID
   * and PASID per attachment, the nested children of a nest parent by their
   * DIDs, and the device TLB of every ATS device attached.
   */
  flushDomainRange(domain: VtdDomain, start: number, length: number, leaf: boolean): void {
    const parts: Uint8Array[] = [];
    const ih = leaf ? 1 : 0;
    const psi = length < 0 ? null : psiAligned(start, length);
    const ssFlush = (did: number) => {
      if (psi === null || this.capFields.PSI !== 1 || psi.mask > this.capFields.MAMV) {
        parts.push(encodeQiDescriptor(QI_TYPE.IOTLB, { granularity: 2, did }));
      } else {
        parts.push(
          encodeQiDescriptor(QI_TYPE.IOTLB, {
            granularity: 3,
            did,
            am: psi.mask,
            ih,
            addr: psi.base,
          }),
        );
      }
    };
    const devFlush = (d: VtdDomain) => {
      for (const { rid, pasid } of d.attachments.values()) {
        const state = this.devices.get(rid);
        if (state !== undefined) this.pushDeviceTlbFlush(parts, state.device, pasid, start, length);
      }
    };
    if (domain.stage === 'second') {
      if (domain.attachments.size > 0) ssFlush(domain.tag);
      devFlush(domain);
      for (const child of domain.children) {
        if (child.attachments.size === 0) continue;
        ssFlush(child.tag);
        devFlush(child);
      }
    } else if (domain.stage === 'first' || domain.stage === 'nested') {
      for (const { pasid } of domain.attachments.values()) {
        const p = pasid < 0 ? 0 : pasid;
        if (psi === null || psi.mask > this.capFields.MAMV) {
          parts.push(
            encodeQiDescriptor(QI_TYPE.PASID_IOTLB, { granularity: 2, did: domain.tag, pasid: p }),
          );
        } else {
          parts.push(
            encodeQiDescriptor(QI_TYPE.PASID_IOTLB, {
              granularity: 3,
              did: domain.tag,
              pasid: p,
              am: psi.mask,
              ih,
              addr: psi.base,
            }),
          );
        }
      }
      devFlush(domain);
    }
    if (parts.length > 0) this.submitCommands(concat(parts));
  }

  // ---- translation ------------------------------------------------------------------

  // Walk root -> context -> PASID directory -> PASID entry (or the legacy
  // context entry) for a requester, through the PASID-entry cache.
  private resolve(rid: number, pasid: number): Resolved {
    const key = rid * 2 ** 21 + (pasid < 0 ? 2 ** 20 : pasid);
    const cached = this.pasidCache.get(key);
    if (cached !== undefined) return { ok: true, cfg: cached };
    const rootTable = this.rtaddr - (this.rtaddr % FRAME_SIZE);
    const bus = rid >>> 8;
    const devfn = rid & 0xff;
    const ttm = (this.rtaddr >>> 10) & 3;
    if (ttm === 0) return this.resolveLegacy(key, rid, pasid, rootTable);
    if (ttm !== 1)
      return fail(
        VTD_FAULT.RTADDR_INVALID_TTM,
        false,
        'bad-config',
        'RTADDR.TTM is not legacy or scalable',
      );
    const root = smRootEntryLayout.decode(this.read(rootTable + bus * 16, 4));
    const upper = devfn >= 128;
    if ((upper ? root.upperPresent : root.lowerPresent) !== 1) {
      return fail(
        VTD_FAULT.ROOT_NOT_PRESENT,
        false,
        'no-context',
        `root entry of bus ${bus} not present`,
      );
    }
    const ctxAddr = (upper ? root.upperContextTable : root.lowerContextTable) + (devfn & 0x7f) * 32;
    const ctx = smContextEntryLayout.decode(this.read(ctxAddr, 8));
    if (ctx.present !== 1) {
      return fail(
        VTD_FAULT.CONTEXT_NOT_PRESENT,
        false,
        'no-context',
        `context entry of ${hex(rid)} not present`,
      );
    }
    const fpd = ctx.fpd === 1;
    let effective = pasid;
    if (pasid < 0) effective = ctx.ridPasid;
    else if (ctx.paside !== 1) {
      return fail(
        VTD_FAULT.CONTEXT_INVALID,
        fpd,
        'bad-config',
        'a request with PASID but PASIDE clear in the context entry',
      );
    }
    const dirEntries = 2 ** (ctx.pdts + 7);
    if (effective >>> 6 >= dirEntries) {
      return fail(
        VTD_FAULT.PASID_ENTRY_INVALID,
        fpd,
        'bad-config',
        `PASID ${effective} beyond the PASID directory`,
      );
    }
    const dir = pasidDirEntryLayout.decode(this.read(ctx.pasidDir + (effective >>> 6) * 8, 2));
    if (dir.present !== 1) {
      return fail(
        VTD_FAULT.PASID_DIR_ENTRY_NOT_PRESENT,
        fpd || dir.fpd === 1,
        'blocked',
        `PASID directory entry for PASID ${effective} not present`,
      );
    }
    const pe = pasidEntryLayout.decode(this.read(dir.pasidTable + (effective & 63) * 64, 16));
    if (pe.present !== 1) {
      return fail(
        VTD_FAULT.PASID_ENTRY_NOT_PRESENT,
        fpd || dir.fpd === 1 || pe.fpd === 1,
        'blocked',
        `PASID entry ${effective} not present (blocked)`,
      );
    }
    const efpd = fpd || dir.fpd === 1 || pe.fpd === 1;
    const cfg: PasidConfig = {
      rid,
      pasid: effective,
      did: pe.did,
      pgtt: pe.pgtt,
      fpd: efpd,
      dte: ctx.dte === 1,
      pre: ctx.pre === 1,
      sre: pe.sre === 1,
      fs: null,
      ss: null,
      s2memory: null,
    };
    const memory = this.env.allocator;
    const ssSizes = [K4];
    if ((this.capFields.SSLPS & 1) !== 0) ssSizes.push(M2);
    if ((this.capFields.SSLPS & 2) !== 0) ssSizes.push(G1);
    const fsSizes = this.pagingGeometry('first').pageSizes;
    const haw = this.config.outputBits;
    const ssLevels = pe.aw + 2;
    const ssOk = ((this.capFields.SAGAW >>> pe.aw) & 1) === 1 && ssLevels >= 3 && ssLevels <= 5;
    switch (pe.pgtt) {
      case PGTT.PASS_THROUGH:
        break;
      case PGTT.SECOND_STAGE:
      case PGTT.NESTED:
        if (!ssOk)
          return fail(
            VTD_FAULT.PASID_ENTRY_INVALID,
            efpd,
            'bad-config',
            `PASID entry AW ${pe.aw} not supported (SAGAW)`,
          );
        cfg.ss = new VtdSecondStagePageTable({
          memory,
          root: pe.ssptptr,
          levels: ssLevels as 3 | 4 | 5,
          pageSizes: ssSizes,
          outputBits: haw,
          dirtyTracking: pe.ssade === 1,
        });
        if (pe.pgtt === PGTT.SECOND_STAGE) break;
        cfg.s2memory = new Stage2TableMemory(cfg.ss, memory);
        cfg.fs = new X86PageTable({
          memory: cfg.s2memory,
          root: pe.fsptptr,
          levels: pe.fspm === 1 ? 5 : 4,
          pageSizes: fsSizes,
          outputBits: 52,
        });
        break;
      case PGTT.FIRST_STAGE:
        if (pe.fsptptr >= 2 ** haw)
          return fail(
            VTD_FAULT.FSPTPTR_INVALID,
            efpd,
            'bad-config',
            'FSPTPTR beyond the host address width',
          );
        cfg.fs = new X86PageTable({
          memory,
          root: pe.fsptptr,
          levels: pe.fspm === 1 ? 5 : 4,
          pageSizes: fsSizes,
          outputBits: haw,
        });
        break;
      default:
        return fail(
          VTD_FAULT.PASID_ENTRY_INVALID,
          efpd,
          'bad-config',
          `PASID entry PGTT ${pe.pgtt} is invalid`,
        );
    }
    this.pasidCache.set(key, cfg);
    return { ok: true, cfg };
  }

  // Legacy mode: root entry -> 16-byte context entry with TT, SSPTPTR, AW, DID.
  private resolveLegacy(key: number, rid: number, pasid: number, rootTable: number): Resolved {
    const root = rootEntryLayout.decode(this.read(rootTable + (rid >>> 8) * 16, 4));
    if (root.present !== 1)
      return fail(VTD_FAULT.ROOT_NOT_PRESENT, false, 'no-context', 'root entry not present');
    const ctx = contextEntryLayout.decode(this.read(root.contextTable + (rid & 0xff) * 16, 4));
    if (ctx.present !== 1)
      return fail(VTD_FAULT.CONTEXT_NOT_PRESENT, false, 'no-context', 'context entry not present');
    if (pasid >= 0)
      return fail(
        VTD_FAULT.CONTEXT_INVALID,
        ctx.fpd === 1,
        'bad-config',
        'legacy mode has no PASIDs',
      );
    const cfg: PasidConfig = {
      rid,
      pasid: 0,
      did: ctx.did,
      pgtt: ctx.tt === CONTEXT_TT.PASS_THROUGH ? PGTT.PASS_THROUGH : PGTT.SECOND_STAGE,
      fpd: ctx.fpd === 1,
      dte: ctx.tt === CONTEXT_TT.DEVICE_TLB,
      pre: false,
      sre: false,
      fs: null,
      ss: null,
      s2memory: null,
    };
    if (ctx.tt > 2)
      return fail(
        VTD_FAULT.CONTEXT_INVALID,
        cfg.fpd,
        'bad-config',
        `context TT ${ctx.tt} is reserved`,
      );
    if (cfg.pgtt === PGTT.SECOND_STAGE) {
      const levels = ctx.aw + 2;
      if (levels < 3 || levels > 5)
        return fail(VTD_FAULT.CONTEXT_INVALID, cfg.fpd, 'bad-config', `context AW ${ctx.aw}`);
      cfg.ss = new VtdSecondStagePageTable({
        memory: this.env.allocator,
        root: ctx.ssptptr,
        levels: levels as 3 | 4 | 5,
        outputBits: this.config.outputBits,
      });
    }
    this.pasidCache.set(key, cfg);
    return { ok: true, cfg };
  }

  translateDma(ctx: DmaContext, iova: number, out: DmaTranslation): boolean {
    out.ok = false;
    out.fromCache = false;
    out.fault = null;
    out.pageRequest = null;
    const rid = ctx.requester;
    const access = ctx.access;
    const resolved = this.resolve(rid, ctx.pasid);
    if (!resolved.ok) {
      return this.raise(
        ctx,
        iova,
        resolved.code,
        resolved.kind,
        0,
        resolved.fpd,
        false,
        resolved.why,
        out,
      );
    }
    const cfg = resolved.cfg;
    const hit = this.hit;
    const devTag = ctx.pasid < 0 ? NO_ASID : ctx.pasid;
    const ats = cfg.dte && ctx.device.ats;
    if (ats && this.deviceTlb.lookup(rid, devTag, iova, hit) && permits(hit.prot, access)) {
      return this.done(out, hit.pa, hit.pageSize - (iova % hit.pageSize), true);
    }
    if (this.iotlb.lookup(cfg.did, cfg.pasid, iova, hit) && permits(hit.prot, access)) {
      if (ats) this.deviceTlb.fill(rid, devTag, iova, hit.pa, hit.pageSize, hit.prot);
      return this.done(out, hit.pa, hit.pageSize - (iova % hit.pageSize), true);
    }
    let pa: number;
    let size: number;
    let prot: number;
    if (cfg.pgtt === PGTT.PASS_THROUGH) {
      if (iova >= 2 ** this.config.outputBits) {
        return this.raise(
          ctx,
          iova,
          VTD_FAULT.ADDRESS_BEYOND_MGAW,
          'address-size',
          0,
          cfg.fpd,
          false,
          'pass-through beyond the host address width',
          out,
        );
      }
      return this.done(out, iova, K4 - (iova % K4), false);
    }
    const write = (access & ACCESS_WRITE) !== 0;
    if (cfg.pgtt === PGTT.SECOND_STAGE) {
      const t = (cfg.ss as PageTable).translate(iova, access, this.scratch);
      if (!t.ok) return this.walkFault(ctx, iova, cfg, 2, t.fault as TranslationFault, out);
      pa = t.pa;
      size = t.pageSize;
      prot = t.prot;
    } else {
      // First stage (alone or nested): requests without SRE count as user requests.
      const fsAccess = cfg.sre ? access : access & ~ACCESS_PRIV;
      if (cfg.s2memory !== null) cfg.s2memory.lastFault = null;
      const t1 = (cfg.fs as PageTable).translate(iova, fsAccess, this.scratch);
      if (!t1.ok) {
        const s2 = cfg.s2memory?.lastFault;
        if (t1.fault === 'table-fetch' && s2 != null) {
          return this.walkFault(ctx, iova, cfg, 2, s2.fault as TranslationFault, out);
        }
        return this.walkFault(ctx, iova, cfg, 1, t1.fault as TranslationFault, out);
      }
      pa = t1.pa;
      size = t1.pageSize;
      prot = t1.prot;
      if (cfg.ss !== null) {
        const t2 = cfg.ss.translate(t1.pa, access & ~(ACCESS_EXEC | ACCESS_PRIV), this.scratch2);
        if (!t2.ok) return this.walkFault(ctx, iova, cfg, 2, t2.fault as TranslationFault, out);
        pa = t2.pa;
        // The combined leaf is the smaller of the two, aligned within both.
        size = Math.min(t1.pageSize, t2.pageSize);
        prot =
          (t1.prot & ~(IOMMU_READ | IOMMU_WRITE)) |
          (t1.prot & t2.prot & (IOMMU_READ | IOMMU_WRITE));
      }
    }
    const cachedProt = prot | (write ? CACHED_DIRTY : 0);
    this.iotlb.fill(cfg.did, cfg.pasid, iova, pa, size, cachedProt);
    if (ats) this.deviceTlb.fill(rid, devTag, iova, pa, size, cachedProt);
    return this.done(out, pa, size - (iova % size), false);
  }

  private done(out: DmaTranslation, pa: number, contiguous: number, fromCache: boolean): boolean {
    out.ok = true;
    out.pa = pa;
    out.contiguous = contiguous;
    out.fromCache = fromCache;
    return true;
  }

  private walkFault(
    ctx: DmaContext,
    iova: number,
    cfg: PasidConfig,
    stage: number,
    fault: TranslationFault,
    out: DmaTranslation,
  ): boolean {
    const write = (ctx.access & ACCESS_WRITE) !== 0;
    const code = stage === 1 ? firstStageReason(fault, write) : secondStageReason(fault, write);
    // Translation faults of an ATS device whose context has PRE become page requests.
    const recoverable =
      cfg.pre &&
      ctx.device.pri &&
      ctx.device.ats &&
      (fault === 'not-present' || fault === 'permission');
    return this.raise(
      ctx,
      iova,
      code,
      fault,
      stage,
      cfg.fpd,
      recoverable,
      `stage-${stage} ${fault}`,
      out,
    );
  }

  private raise(
    ctx: DmaContext,
    iova: number,
    code: number,
    kind: HwFault['kind'],
    stage: number,
    fpd: boolean,
    recoverable: boolean,
    why: string,
    out: DmaTranslation,
  ): boolean {
    const rid = ctx.requester;
    const read = (ctx.access & ACCESS_WRITE) === 0;
    const page = Math.floor(iova / K4) * K4;
    const record = wordsToBytes(
      frcdLayout.encode({
        faultInfo: page,
        sid: rid,
        pasidPresent: ctx.pasid >= 0 ? 1 : 0,
        reason: code,
        pasid: ctx.pasid >= 0 ? ctx.pasid : 0,
        read: read ? 1 : 0,
        fault: 1,
      }),
    );
    const name = `reason 0x${code.toString(16)} ${vtdFaultName(code)}`;
    const fault: HwFault = {
      model: 'vtd',
      name,
      code,
      kind,
      stage,
      requester: rid,
      pasid: ctx.pasid,
      iova,
      access: ctx.access,
      record,
      reason: `${this.name}: ${why} (${name}) for ${hex(rid)}${ctx.pasid >= 0 ? ` PASID ${ctx.pasid}` : ''} at 0x${iova.toString(16)}`,
    };
    out.ok = false;
    out.fault = fault;
    if (recoverable) {
      out.pageRequest = this.pageRequest(ctx, page);
      return false;
    }
    if (!fpd) {
      this.record(record);
      this.faultLog.push(fault);
      this.onFault?.(fault);
    }
    return false;
  }

  // Fault recording: the next register if free, else overflow (FSTS.PFO).
  private record(record: Uint8Array): void {
    const slots = this.faultRecords.length / 4;
    const at = this.fri * 4;
    if (((this.faultRecords[at + 3] as number) & 0x80000000) !== 0) {
      this.fsts |= VTD_FSTS.PFO;
      return;
    }
    this.faultRecords.set(new Uint32Array(record.buffer, record.byteOffset, 4), at);
    this.fsts = (this.fsts & ~(0xff << 8)) | VTD_FSTS.PPF | (this.fri << 8);
    this.fri = (this.fri + 1) % slots;
    if (this.driverClearsFaults) this.clearFaultRecord(at / 4);
  }

  /** Write 1 to F of fault record `index` (software acknowledging it). */
  clearFaultRecord(index: number): void {
    const w = index * 4 + 3;
    this.faultRecords[w] = (this.faultRecords[w] as number) & 0x7fffffff;
    let pending = false;
    for (let i = 3; i < this.faultRecords.length; i += 4) {
      if (((this.faultRecords[i] as number) & 0x80000000) !== 0) pending = true;
    }
    if (!pending) this.fsts &= ~VTD_FSTS.PPF;
  }

  private pageRequest(ctx: DmaContext, page: number): PageRequest {
    const state = this.devices.get(ctx.requester);
    const prg = state === undefined ? 0 : state.nextPrg;
    if (state !== undefined) state.nextPrg = (state.nextPrg + 1) % 512;
    const a = ctx.access;
    const record = wordsToBytes(
      pageRequestLayout.encode({
        type: 1,
        pasidPresent: ctx.pasid >= 0 ? 1 : 0,
        rid: ctx.requester,
        pasid: ctx.pasid >= 0 ? ctx.pasid : 0,
        exec: (a & ACCESS_EXEC) !== 0 ? 1 : 0,
        priv: (a & ACCESS_PRIV) !== 0 ? 1 : 0,
        read: (a & ACCESS_READ) !== 0 || (a & ACCESS_WRITE) === 0 ? 1 : 0,
        write: (a & ACCESS_WRITE) !== 0 ? 1 : 0,
        lastPage: 1,
        prgIndex: prg,
        address: page,
      }),
    );
    const request: PageRequest = {
      device: ctx.device,
      requester: ctx.requester,
      pasid: ctx.pasid,
      groupId: prg,
      lastPage: true,
      perm:
        ((a & ACCESS_READ) !== 0 || (a & ACCESS_WRITE) === 0 ? 1 : 0) |
        ((a & ACCESS_WRITE) !== 0 ? 2 : 0) |
        ((a & ACCESS_EXEC) !== 0 ? 4 : 0) |
        ((a & ACCESS_PRIV) !== 0 ? 8 : 0),
      address: page,
      source: 'pri',
      record,
    };
    this.pending.set(`${ctx.requester}:${prg}`, request);
    this.pageRequests.push(request);
    this.onPageRequest?.(request);
    return request;
  }

  completePageRequest(request: PageRequest, code: PageResponseCode): void {
    const responseCode =
      code === 'success'
        ? PRQ_RESPONSE.SUCCESS
        : code === 'invalid'
          ? PRQ_RESPONSE.INVALID
          : PRQ_RESPONSE.FAILURE;
    this.submitCommands(
      encodeQiDescriptor(QI_TYPE.PAGE_GROUP_RESPONSE, {
        pasidPresent: request.pasid >= 0 ? 1 : 0,
        pasid: request.pasid >= 0 ? request.pasid : 0,
        rid: request.requester,
        responseCode,
        lastPage: request.lastPage ? 1 : 0,
        prgIndex: request.groupId,
      }),
    );
  }

  // ---- queued invalidation -------------------------------------------------------------

  submitCommands(commands: Uint8Array): HwResult<number> {
    let n = 0;
    for (let at = 0; at + QI_DESCRIPTOR_BYTES <= commands.length; at += QI_DESCRIPTOR_BYTES) {
      const { type, fields } = decodeQiDescriptor(commands, at);
      if (fields === null || !this.execute(type, fields)) {
        this.fsts |= VTD_FSTS.IQE;
        this.qiProcessed = n;
        return {
          ok: false,
          errno: EINVAL,
          reason: `invalidation queue error (IQE) at descriptor ${n} (type ${type}); ${n} processed`,
        };
      }
      n++;
    }
    this.qiProcessed = n;
    return { ok: true, value: n };
  }

  private execute(type: number, f: Record<string, number>): boolean {
    const g = f.granularity ?? 0;
    const did = f.did ?? 0;
    switch (type) {
      case QI_TYPE.CONTEXT_CACHE:
        if (g === 1) this.pasidCache.clear();
        else if (g === 2) this.dropPasidCache((c) => c.did === did);
        else if (g === 3) this.dropPasidCache((c) => c.rid === f.sid);
        else return false;
        return true;
      case QI_TYPE.IOTLB:
        if (g === 1) this.iotlb.invalidateAll();
        else if (g === 2 || (g === 3 && this.nestedDids.has(did))) {
          // A page-selective IOTLB invalidation names second-stage (GPA) addresses;
          // the combined entries of a nested DID are tagged by stage-1 input
          // address, so they all go (how the driver flushes a nest parent's children).
          this.iotlb.invalidateTag(did);
        } else if (g === 3)
          this.iotlb.invalidateRange(did, undefined, f.addr as number, K4 * 2 ** (f.am as number));
        else return false;
        return true;
      case QI_TYPE.DEVICE_TLB:
      case QI_TYPE.PASID_DEVICE_TLB: {
        const asid = type === QI_TYPE.DEVICE_TLB ? NO_ASID : (f.pasid as number);
        const range = deviceTlbRange(f.addr as number, f.size as number);
        if (range === null || f.global === 1) this.deviceTlb.invalidateAsid(f.sid as number, asid);
        else this.deviceTlb.invalidateRange(f.sid as number, asid, range[0], range[1]);
        return true;
      }
      case QI_TYPE.INTERRUPT_ENTRY:
        return true; // no interrupt remapping cache is modelled
      case QI_TYPE.WAIT:
        if (f.statusWrite === 1)
          this.env.memory.writeU32(f.statusAddress as number, f.statusData as number);
        return true;
      case QI_TYPE.PASID_IOTLB:
        if (g === 2) this.iotlb.invalidateAsid(did, f.pasid as number);
        else if (g === 3)
          this.iotlb.invalidateRange(
            did,
            f.pasid as number,
            f.addr as number,
            K4 * 2 ** (f.am as number),
          );
        else return false;
        return true;
      case QI_TYPE.PASID_CACHE:
        if (g === 0) this.dropPasidCache((c) => c.did === did);
        else if (g === 1) this.dropPasidCache((c) => c.did === did && c.pasid === f.pasid);
        else if (g === 3) this.pasidCache.clear();
        else return false;
        return true;
      case QI_TYPE.PAGE_GROUP_RESPONSE: {
        const key = `${f.rid}:${f.prgIndex}`;
        this.pending.delete(key);
        this.responses.push({
          rid: f.rid as number,
          pasid: f.pasidPresent === 1 ? (f.pasid as number) : -1,
          prgIndex: f.prgIndex as number,
          code: f.responseCode as number,
          lastPage: f.lastPage === 1,
        });
        return true;
      }
      default:
        return false;
    }
  }

  private dropPasidCache(match: (c: PasidConfig) => boolean): void {
    for (const [key, cfg] of this.pasidCache) if (match(cfg)) this.pasidCache.delete(key);
  }

  /** Page requests still waiting for a response. */
  pendingPageRequests(): PageRequest[] {
    return [...this.pending.values()];
  }

  /** The domain a device (or one of its PASIDs) is attached to; blocked when none. */
  attachedDomain(device: Device, pasid?: number): IommuDomain {
    return this.devices.get(device.rid)?.attached.get(pasid ?? -1) ?? this.blocked;
  }
}

function fail(code: number, fpd: boolean, kind: HwFault['kind'], why: string): Resolved {
  return { ok: false, code, fpd, kind, why };
}

function hex(rid: number): string {
  return `${(rid >>> 8).toString(16).padStart(2, '0')}:${((rid >>> 3) & 0x1f).toString(16).padStart(2, '0')}.${rid & 7}`;
}

// A cached translation serves the access only if its permissions allow it and,
// for a write, the walk that filled it already set D.
function permits(prot: number, access: number): boolean {
  if ((access & ACCESS_WRITE) !== 0) {
    if ((prot & IOMMU_WRITE) === 0 || (prot & CACHED_DIRTY) === 0) return false;
  } else if ((prot & IOMMU_READ) === 0) return false;
  if ((access & ACCESS_EXEC) !== 0 && (prot & IOMMU_NOEXEC) !== 0) return false;
  if ((access & ACCESS_PRIV) === 0 && (prot & IOMMU_PRIV) !== 0) return false;
  return true;
}

/**
 * The page-selective invalidation covering [start, start+length): the
 * aligned base and the address mask (2^mask pages), as the driver's
 * calculate_psi_aligned_address computes it.
 */
export function psiAligned(start: number, length: number): { base: number; mask: number } {
  const pfn = Math.floor(start / K4);
  const last = Math.floor((start + Math.max(length, 1) - 1) / K4);
  const pages = last - pfn + 1;
  let mask = Math.ceil(Math.log2(pages));
  while (mask < 52 && Math.floor(pfn / 2 ** mask) !== Math.floor(last / 2 ** mask)) mask++;
  return { base: Math.floor(pfn / 2 ** mask) * 2 ** mask * K4, mask };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
