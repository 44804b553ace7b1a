/**
 * An Arm SMMUv3 with the Linux 6.17 arm-smmu-v3 driver on top: ID registers
 * and hw_info, a stream table and CD tables in simulated memory, STE/CD
 * caches, an IOTLB tagged (VMID, ASID), device ATCs, command, event and PRI
 * queues in memory, stage-1/stage-2/nested walks, stalls and PRI.
 *
 * Choices documented here: the driver drains the event and PRI queues as soon
 * as the SMMU writes them (as its IRQ threads would; set `autoDrainEvents`
 * false to watch a queue fill and overflow). An abort STE terminates silently,
 * as the hardware does: the DMA sees a fault but no event is recorded. An
 * illegal command stops the queue with CERROR_ILL and submitCommands answers
 * EIO (the errno iommufd's vSMMU uses for bad command data), with the number
 * consumed in `consumed`. The TLBI_EL2_* commands act on the non-stage-2
 * (VMID 0) entries, since this SMMU reports HYP = 0 and uses NS-EL1 contexts.
 * ATS translation failures record the same event an untranslated access would.
 */
import {
  EBUSY,
  EINVAL,
  EIO,
  ENOMEM,
  ENOSPC,
  EOPNOTSUPP,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_PGFAULT_PERM_EXEC,
  IOMMU_PGFAULT_PERM_PRIV,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  structs,
} from '@iommufd-sim/uapi-types';
import type { Device } from '../../device.js';
import { FRAME_SIZE } from '../../memory/physical-memory.js';
import {
  type ArmGranule,
  armPsEncode,
  armS2Sl0Encode,
  armTgEncode,
} from '../../pagetable/arm-lpae-geometry.js';
import { ArmLpaePageTable } from '../../pagetable/arm-lpae-table.js';
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
  type Translation,
} from '../../pagetable/format.js';
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
import { Iotlb, type IotlbOptions, NO_ASID, newTlbHit } from '../iotlb.js';
import { smmuBytesToWords, smmuHex64, smmuWordsToBytes } from './bits.js';
import { makeS1Cd } from './cd.js';
import {
  type DecodedSmmuCommand,
  decodeSmmuCommand,
  encodeSmmuCommand,
  SMMU_ATC_INV_SIZE_ALL,
  SMMU_CERROR,
  SMMU_CMD_BYTES,
  SMMU_PRI_RESP,
  SMMU_RESUME_RESP,
} from './commands.js';
import {
  type CachedCd,
  type CachedSte,
  configFailure,
  eventFor,
  type FetchContext,
  fetchCd,
  fetchSte,
  pageOf,
  type SmmuFailure,
  walkFailure,
} from './config-fetch.js';
import { atcInv, rangeTlbiCommands, syncCommand, tlbiRange } from './driver-commands.js';
import {
  encodeSmmuEvent,
  SMMU_EVENT_CLASS,
  SMMU_EVENT_ID,
  SMMU_PRI_ENTRY,
  type SmmuEventName,
} from './events.js';
import { SmmuQueue } from './queue.js';
import {
  decodeSmmuIdRegisters,
  encodeSmmuIdRegisters,
  type SmmuFeatures,
  type SmmuIdRegisters,
  smmuIdFieldsFor,
} from './registers.js';
import { Smmuv3Domain, type Smmuv3DomainOwner } from './smmuv3-domain.js';
import {
  abortSte,
  bypassSte,
  SMMU_EATS,
  SMMU_S1DSS,
  SMMU_STE,
  SMMU_STE_CONFIG,
  validateVste,
} from './ste.js';
import { CdTable, StreamTable } from './stream-table.js';

/** The software MSI window arm-smmu-v3 reserves in every domain (MSI_IOVA_BASE, MSI_IOVA_LENGTH). */
export const SMMU_SW_MSI_BASE = 0x8000000;
/** Length of the software MSI window. */
export const SMMU_SW_MSI_LENGTH = 0x100000;

/** SMMUv3 details beyond {@link IommuConfig}, all optional. */
export interface Smmuv3Options {
  /** Stream id width (IDR1.SIDSIZE). Default 16. */
  readonly sidBits?: number;
  /** Two-level stream table (IDR0.ST_LEVEL = 1). Default true. */
  readonly twoLevelStreamTable?: boolean;
  /** Range invalidation (IDR3.RIL). Default true. */
  readonly rangeInvalidation?: boolean;
  /** S2FWB (IDR3.FWB). Default true. */
  readonly s2fwb?: boolean;
  /** IDR0.STALL_MODEL: 0 stall and terminate, 1 terminate only, 2 stall forced. Default 0. */
  readonly stallModel?: 0 | 1 | 2;
  /** log2 entries of the event queue the driver programs. Default 7. */
  readonly eventQueueLog2?: number;
  /** log2 entries of the command queue. Default 8. */
  readonly commandQueueLog2?: number;
  /** log2 entries of the PRI queue. Default 8. */
  readonly priQueueLog2?: number;
  /** IOTLB shape. */
  readonly iotlb?: IotlbOptions;
}

/** Error result of {@link Smmuv3Iommu.submitCommands}, with how many commands ran. */
export type CommandSmmuFailure = {
  readonly ok: false;
  readonly errno: number;
  readonly reason: string;
  readonly consumed: number;
};

// A master (device) as the driver tracks it.
interface Master {
  readonly device: Device;
  readonly sids: readonly number[];
  readonly ssidBits: number;
  readonly stall: boolean;
  readonly atsCapable: boolean;
  ridDomain: Smmuv3Domain;
  readonly pasids: Map<number, Smmuv3Domain>;
  cdTable: CdTable | null;
  atsEnabled: boolean;
}

const STALLABLE = new Set<SmmuEventName>([
  'F_TRANSLATION',
  'F_ADDR_SIZE',
  'F_ACCESS',
  'F_PERMISSION',
]);

/** The Arm SMMUv3 model. */
export class Smmuv3Iommu implements IommuInstance, Smmuv3DomainOwner {
  readonly name: string;
  readonly model = 'smmuv3' as const;
  readonly config: Required<IommuConfig>;
  readonly env: IommuEnvironment;
  readonly iotlb: Iotlb;
  /** The devices' address translation caches (ATS), tagged (stream id, PASID). */
  readonly deviceTlb: Iotlb;
  readonly faultLog: HwFault[] = [];
  onFault: ((fault: HwFault) => void) | null = null;
  onPageRequest: ((request: PageRequest) => void) | null = null;
  /** The stream table in memory. */
  readonly streamTable: StreamTable;
  /** Command queue. */
  readonly cmdq: SmmuQueue;
  /** Event queue. */
  readonly evtq: SmmuQueue;
  /** PRI queue. */
  readonly priq: SmmuQueue;
  /** The driver consumes event and PRI records as soon as they are written. */
  autoDrainEvents = true;
  /** Features the ID registers advertise. */
  readonly features: SmmuFeatures;
  /** The ID registers. */
  readonly idRegisters: SmmuIdRegisters;

  private readonly granule: ArmGranule;
  private readonly pageSizes: readonly number[];
  private readonly s1InputBits: number;
  private readonly oasBits: number;
  private readonly masters = new Map<Device, Master>();
  private readonly sidToMaster = new Map<number, Master>();
  private readonly steCache = new Map<number, CachedSte>();
  private readonly cdCache = new Map<number, CachedCd>();
  private readonly asids = new Set<number>();
  private readonly vmids = new Set<number>();
  private readonly pendingStalls = new Map<number, { sid: number; ssid: number }>();
  private nextStag = 0;
  private nextPrgIndex = 0;
  private readonly log: [bigint, bigint][] = [];
  private readonly blocked: Smmuv3Domain;
  private readonly identity: Smmuv3Domain;
  private readonly hit = newTlbHit();
  private readonly t1: Translation = newTranslation();
  private readonly t2: Translation = newTranslation();
  private readonly fetchContext: FetchContext;
  private iotlbLive = false;
  private devtlbLive = false;

  constructor(config: IommuConfig, env: IommuEnvironment, options: Smmuv3Options = {}) {
    if (config.model !== 'smmuv3') throw new RangeError(`model ${config.model} is not smmuv3`);
    this.name = config.name;
    this.env = env;
    this.config = {
      name: config.name,
      model: 'smmuv3',
      inputBits: config.inputBits ?? 48,
      outputBits: config.outputBits ?? 48,
      pageSizes: config.pageSizes ?? [4096, 2 ** 21, 2 ** 30],
      pasidBits: config.pasidBits ?? 20,
      nesting: config.nesting ?? true,
      dirtyTracking: config.dirtyTracking ?? true,
      ats: config.ats ?? true,
      pri: config.pri ?? true,
    };
    const c = this.config;
    const granule = Math.min(...c.pageSizes);
    if (granule !== 4096 && granule !== 16384 && granule !== 65536) {
      throw new RangeError(`the smallest page size ${granule} is not an LPAE granule`);
    }
    this.granule = granule;
    const maxBits = granule === 65536 ? 52 : 48;
    this.oasBits = Math.min(c.outputBits, maxBits);
    this.s1InputBits = Math.min(c.inputBits, maxBits);
    this.pageSizes = [...c.pageSizes].sort((a, b) => a - b);
    const sidBits = options.sidBits ?? 16;
    this.features = {
      stage2: c.nesting,
      httu: c.dirtyTracking ? 2 : 0,
      ats: c.ats,
      pri: c.pri,
      sidBits,
      ssidBits: c.pasidBits,
      oasBits: c.outputBits,
      vax52: c.inputBits > 48,
      twoLevelStreamTable: options.twoLevelStreamTable ?? true,
      stallModel: options.stallModel ?? 0,
      rangeInvalidation: options.rangeInvalidation ?? true,
      s2fwb: options.s2fwb ?? true,
    };
    this.idRegisters = encodeSmmuIdRegisters(smmuIdFieldsFor(this.features));
    this.iotlb = new Iotlb(options.iotlb);
    this.deviceTlb = new Iotlb({ sets: 256, ways: 4 });
    const mem = env.memory;
    const alloc = env.allocator;
    this.streamTable = new StreamTable(mem, alloc, sidBits, this.features.twoLevelStreamTable);
    this.cmdq = new SmmuQueue(mem, alloc, options.commandQueueLog2 ?? 8, SMMU_CMD_BYTES);
    this.evtq = new SmmuQueue(mem, alloc, options.eventQueueLog2 ?? 7, 32);
    this.priq = new SmmuQueue(mem, alloc, options.priQueueLog2 ?? 8, 16);
    this.fetchContext = {
      memory: mem,
      allocator: alloc,
      streamTable: this.streamTable,
      features: this.features,
      oasBits: this.oasBits,
      scratch: this.t2,
    };
    const geometry = this.domainGeometry();
    const plain = {
      iommu: this,
      stage: 0 as const,
      asid: 0,
      vmid: 0,
      pageTable: null,
      geometry,
      parent: null,
      nestParent: false,
      dirtyCapable: false,
      pasidCapable: true,
      iopfCapable: false,
      vste: null,
    };
    this.blocked = new Smmuv3Domain({ ...plain, type: 'blocked' });
    this.identity = new Smmuv3Domain({ ...plain, type: 'identity' });
  }

  // ---- registers and reports ---------------------------------------------------------

  registers(): Readonly<Record<string, bigint>> {
    const r = this.idRegisters;
    return {
      IDR0: BigInt(r.IDR0 >>> 0),
      IDR1: BigInt(r.IDR1 >>> 0),
      IDR2: BigInt(r.IDR2 >>> 0),
      IDR3: BigInt(r.IDR3 >>> 0),
      IDR4: BigInt(r.IDR4 >>> 0),
      IDR5: BigInt(r.IDR5 >>> 0),
      IIDR: BigInt(r.IIDR >>> 0),
      AIDR: BigInt(r.AIDR >>> 0),
    };
  }

  decodedRegisters(): Readonly<Record<string, Readonly<Record<string, number | boolean>>>> {
    return decodeSmmuIdRegisters(this.idRegisters);
  }

  /** The table and queue registers the driver programmed (STRTAB_BASE, CMDQ_PROD, ...). */
  controlRegisters(): Readonly<Record<string, bigint>> {
    return {
      STRTAB_BASE: this.streamTable.baseRegister(),
      STRTAB_BASE_CFG: this.streamTable.baseCfgRegister(),
      CMDQ_BASE: this.cmdq.baseRegister(),
      CMDQ_PROD: BigInt(this.cmdq.prod),
      CMDQ_CONS: BigInt(this.cmdq.cons),
      EVTQ_BASE: this.evtq.baseRegister(),
      EVTQ_PROD: BigInt(this.evtq.prod),
      EVTQ_CONS: BigInt(this.evtq.cons),
      PRIQ_BASE: this.priq.baseRegister(),
      PRIQ_PROD: BigInt(this.priq.prod),
      PRIQ_CONS: BigInt(this.priq.cons),
    };
  }

  /** The last commands the queue executed (driver and user), oldest first, decoded. */
  recentCommands(): DecodedSmmuCommand[] {
    return this.log.map((w) => decodeSmmuCommand(w));
  }

  /** hw_info: the raw IDR0-5/IIDR/AIDR (arm_smmu_hw_info masks nothing), DIRTY_TRACKING when HTTU dirty and coherent. */
  hwInfo(device: Device): HwInfo {
    const r = this.idRegisters;
    const data = structs.iommu_hw_info_arm_smmuv3.encode({
      flags: 0,
      __reserved: 0,
      idr: [r.IDR0 >>> 0, r.IDR1 >>> 0, r.IDR2 >>> 0, r.IDR3 >>> 0, r.IDR4 >>> 0, r.IDR5 >>> 0],
      iidr: r.IIDR >>> 0,
      aidr: r.AIDR >>> 0,
    });
    return {
      type: IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
      data,
      capabilities: this.dbmCapable() ? BigInt(IOMMU_HW_CAP_DIRTY_TRACKING) : 0n,
      maxPasidLog2: Math.min(device.pasidBits, this.features.ssidBits),
    };
  }

  reservedRegions(_device: Device): readonly ReservedRegion[] {
    return [
      { start: SMMU_SW_MSI_BASE, last: SMMU_SW_MSI_BASE + SMMU_SW_MSI_LENGTH - 1, kind: 'sw-msi' },
    ];
  }

  /** A stage-1 paging domain's geometry: [0, 2^ias - 1], ias from VAX (capped by the granule). */
  domainGeometry(_device?: Device): DomainGeometry {
    return this.geometryFor(1);
  }

  private geometryFor(stage: 1 | 2): DomainGeometry {
    const ias = stage === 1 ? this.s1InputBits : this.oasBits;
    return { apertureStart: 0, apertureLast: 2 ** ias - 1, pageSizes: this.pageSizes };
  }

  private dbmCapable(): boolean {
    return this.features.httu === 2; // COHACC is always advertised
  }

  // ---- devices -----------------------------------------------------------------------

  addDevice(device: Device): void {
    if (this.masters.has(device))
      throw new RangeError(`${device.name} is already behind ${this.name}`);
    if (device.streamIds.length === 0) throw new RangeError(`${device.name} has no stream id`);
    for (const sid of device.streamIds) {
      if (sid >= 2 ** this.features.sidBits) {
        throw new RangeError(
          `${device.name}: stream id ${sid} exceeds SIDSIZE ${this.features.sidBits}`,
        );
      }
      if (this.sidToMaster.has(sid)) throw new RangeError(`stream id ${sid} is already in use`);
    }
    for (const sid of device.streamIds) {
      if (!this.streamTable.ensure(sid)) throw new RangeError('no memory for a stream table leaf');
    }
    const stallModel = this.features.stallModel;
    const master: Master = {
      device,
      sids: [...device.streamIds],
      ssidBits: Math.min(device.pasidBits, this.features.ssidBits),
      stall: stallModel === 2 || (stallModel === 0 && device.stall),
      atsCapable: device.ats && this.features.ats && device.isPci,
      ridDomain: this.blocked,
      pasids: new Map(),
      cdTable: null,
      atsEnabled: false,
    };
    this.masters.set(device, master);
    for (const sid of master.sids) this.sidToMaster.set(sid, master);
    this.installSte(master);
  }

  // ---- domains ---------------------------------------------------------------------------

  allocDomain(spec: DomainSpec): HwResult<IommuDomain> {
    switch (spec.type) {
      case 'blocked':
        return { ok: true, value: this.blocked };
      case 'identity':
        return { ok: true, value: this.identity };
      case 'paging':
        return this.allocPaging(spec);
      case 'nested':
        return this.allocNested(spec);
    }
  }

  private allocPaging(spec: Extract<DomainSpec, { type: 'paging' }>): HwResult<IommuDomain> {
    const nestParent = spec.nestParent === true;
    const dirty = spec.dirtyTracking === true;
    const pasid = spec.pasid === true;
    let stage: 1 | 2;
    // arm_smmu_domain_alloc_paging_flags: exactly these flag combinations.
    if (nestParent) {
      if (dirty || pasid)
        return fail(EOPNOTSUPP, 'a nesting parent cannot also track dirty pages or take PASIDs');
      if (!this.features.stage2) return fail(EOPNOTSUPP, 'this SMMU has no stage 2 (nesting)');
      stage = 2;
    } else if (dirty) {
      if (!this.dbmCapable())
        return fail(EOPNOTSUPP, 'dirty tracking needs HTTU dirty-state update and coherency');
      stage = 1;
    } else {
      stage = 1;
    }
    let asid = 0;
    let vmid = 0;
    if (stage === 1) {
      asid = allocId(this.asids, 1, 2 ** 16 - 1);
      if (asid < 0) return fail(ENOSPC, 'no free ASID');
    } else {
      vmid = allocId(this.vmids, 1, 2 ** 16 - 1); // VMID 0 is kept for S1-only and bypass STEs
      if (vmid < 0) return fail(ENOSPC, 'no free VMID');
    }
    let table: ArmLpaePageTable;
    try {
      table = new ArmLpaePageTable({
        stage,
        allocator: this.env.allocator,
        granule: this.granule,
        inputBits: stage === 1 ? this.s1InputBits : this.oasBits,
        outputBits: this.oasBits,
        pageSizes: this.pageSizes,
        hardwareDirty: dirty,
        hardwareAccessFlag: dirty,
        stage2Fwb: nestParent && this.features.s2fwb,
      });
    } catch {
      this.asids.delete(asid);
      this.vmids.delete(vmid);
      return fail(ENOMEM, 'no memory for the top-level table');
    }
    const domain = new Smmuv3Domain({
      iommu: this,
      type: 'paging',
      stage,
      asid,
      vmid,
      pageTable: table,
      geometry: { ...this.geometryFor(stage), pageSizes: table.geometry.pageSizes },
      parent: null,
      nestParent,
      dirtyCapable: dirty,
      pasidCapable: true,
      iopfCapable: spec.iopf === true,
      vste: null,
    });
    return { ok: true, value: domain };
  }

  private allocNested(spec: Extract<DomainSpec, { type: 'nested' }>): HwResult<IommuDomain> {
    const parent = spec.parent;
    if (!(parent instanceof Smmuv3Domain) || parent.iommu !== this || !parent.nestParent) {
      return fail(EINVAL, 'the parent is not a nesting-parent domain of this SMMU');
    }
    if (spec.pasid === true)
      return fail(EOPNOTSUPP, 'nested SMMUv3 domains take no allocation flags');
    if (spec.dataType !== IOMMU_HWPT_DATA_ARM_SMMUV3) {
      return fail(EINVAL, `data type ${spec.dataType} is not IOMMU_HWPT_DATA_ARM_SMMUV3`);
    }
    if (spec.data.length < structs.iommu_hwpt_arm_smmuv3.sizeof) {
      return fail(
        EINVAL,
        `iommu_hwpt_arm_smmuv3 needs ${structs.iommu_hwpt_arm_smmuv3.sizeof} bytes`,
      );
    }
    const ste = structs.iommu_hwpt_arm_smmuv3.decode(spec.data).ste;
    const checked = validateVste([ste[0] ?? 0n, ste[1] ?? 0n]);
    if (!checked.ok) return fail(checked.errno, checked.reason);
    const domain = new Smmuv3Domain({
      iommu: this,
      type: 'nested',
      stage: 0,
      asid: 0,
      vmid: parent.vmid,
      pageTable: null,
      geometry: parent.geometry,
      parent,
      nestParent: false,
      dirtyCapable: false,
      pasidCapable: false,
      iopfCapable: spec.iopf === true,
      vste: checked.value,
    });
    return { ok: true, value: domain };
  }

  /** Domain teardown as arm_smmu_domain_free does: flush the tag, free the tables and the id. */
  releaseDomain(domain: Smmuv3Domain): void {
    if (domain.type !== 'paging') return;
    if (domain.stage === 1) {
      this.issue([
        encodeSmmuCommand('TLBI_NH_ASID', { ASID: domain.asid, VMID: 0 }),
        syncCommand(),
      ]);
      this.asids.delete(domain.asid);
    } else {
      this.issue([encodeSmmuCommand('TLBI_S12_VMALL', { VMID: domain.vmid }), syncCommand()]);
      this.vmids.delete(domain.vmid);
    }
    domain.pageTable?.free();
  }

  /** The driver's unmap flush: range TLBIs by ASID or VMID, then ATC invalidations for ATS masters. */
  flushDomainRange(domain: Smmuv3Domain, iova: number, size: number): void {
    const cmds: [bigint, bigint][] = [];
    const ril = this.features.rangeInvalidation;
    if (domain.stage === 1) {
      cmds.push(
        ...rangeTlbiCommands(
          'TLBI_NH_VA',
          { ASID: domain.asid, VMID: 0, Leaf: 1 },
          iova,
          size,
          this.granule,
          ril,
          () => encodeSmmuCommand('TLBI_NH_ASID', { ASID: domain.asid, VMID: 0 }),
        ),
      );
    } else if (domain.stage === 2) {
      cmds.push(
        ...rangeTlbiCommands(
          'TLBI_S2_IPA',
          { VMID: domain.vmid, Leaf: 1 },
          iova,
          size,
          this.granule,
          ril,
          () => encodeSmmuCommand('TLBI_S12_VMALL', { VMID: domain.vmid }),
        ),
      );
      // Nested stage-1 entries over this stage 2 are combined entries: drop them all.
      if (domain.nestParent) cmds.push(encodeSmmuCommand('TLBI_NH_ALL', { VMID: domain.vmid }));
    }
    cmds.push(syncCommand());
    for (const m of this.masters.values()) {
      if (!m.atsEnabled) continue;
      const attached = m.ridDomain === domain || m.ridDomain.parent === domain;
      for (const [ssid, d] of m.pasids) {
        if (d === domain) for (const sid of m.sids) cmds.push(atcInv(sid, ssid, iova, size));
      }
      if (attached) for (const sid of m.sids) cmds.push(atcInv(sid, -1, iova, size));
    }
    cmds.push(syncCommand());
    this.issue(cmds);
  }

  // ---- attach / detach -----------------------------------------------------------------------

  attach(device: Device, domain: IommuDomain, pasid?: number): HwResult<void> {
    const master = this.masters.get(device);
    if (master === undefined) return fail(EINVAL, `${device.name} is not behind ${this.name}`);
    if (!(domain instanceof Smmuv3Domain) || domain.iommu !== this || domain.isFreed) {
      return fail(EINVAL, 'the domain does not belong to this SMMU');
    }
    if (pasid !== undefined) return this.attachPasid(master, domain, pasid);
    if (
      master.pasids.size > 0 &&
      ((domain.type === 'paging' && domain.stage === 2) || domain.type === 'nested')
    ) {
      return fail(EBUSY, 'PASIDs are attached: the RID cannot take a stage-2 or nested domain');
    }
    const old = master.ridDomain;
    master.ridDomain = domain;
    if (domain.type === 'paging' && domain.stage === 1) {
      const r = this.writeCd(master, 0, domain);
      if (!r.ok) {
        master.ridDomain = old;
        return r;
      }
    } else if (old.type === 'paging' && old.stage === 1 && master.cdTable !== null) {
      this.clearCd(master, 0);
    }
    this.installSte(master);
    return { ok: true, value: undefined };
  }

  private attachPasid(master: Master, domain: Smmuv3Domain, pasid: number): HwResult<void> {
    if (!(Number.isInteger(pasid) && pasid > 0 && pasid < 2 ** master.ssidBits)) {
      return fail(EINVAL, `PASID ${pasid} is outside the device's ${master.ssidBits}-bit range`);
    }
    if (domain.type === 'blocked') {
      this.detach(master.device, pasid);
      return { ok: true, value: undefined };
    }
    if (domain.type !== 'paging')
      return fail(EOPNOTSUPP, `a ${domain.type} domain cannot be attached to a PASID`);
    if (domain.stage !== 1) return fail(EINVAL, 'only stage-1 domains can be attached to a PASID');
    const rid = master.ridDomain;
    if (
      !(
        rid.type === 'identity' ||
        rid.type === 'blocked' ||
        (rid.type === 'paging' && rid.stage === 1)
      )
    ) {
      return fail(
        EINVAL,
        'the RID is attached to a stage-2 or nested domain, which has no CD table',
      );
    }
    const old = master.pasids.get(pasid);
    master.pasids.set(pasid, domain);
    const r = this.writeCd(master, pasid, domain);
    if (!r.ok) {
      if (old === undefined) master.pasids.delete(pasid);
      else master.pasids.set(pasid, old);
      return r;
    }
    this.installSte(master);
    return { ok: true, value: undefined };
  }

  detach(device: Device, pasid?: number): void {
    const master = this.masters.get(device);
    if (master === undefined) return;
    if (pasid === undefined) {
      this.attach(device, this.blocked);
      return;
    }
    if (!master.pasids.delete(pasid)) return;
    this.clearCd(master, pasid);
    this.installSte(master);
  }

  private writeCd(master: Master, ssid: number, domain: Smmuv3Domain): HwResult<void> {
    if (master.cdTable === null) {
      try {
        master.cdTable = new CdTable(this.env.memory, this.env.allocator, master.ssidBits);
      } catch {
        return fail(ENOMEM, 'no memory for the CD table');
      }
    }
    const table = domain.pageTable as ArmLpaePageTable;
    const words = makeS1Cd({
      ttb0: table.root,
      inputBits: table.geometry.inputBits,
      outputBits: table.geometry.outputBits,
      granule: this.granule,
      asid: domain.asid,
      stall: master.stall,
      dirty: domain.dirtyCapable,
    });
    if (!master.cdTable.writeCd(ssid, words)) return fail(ENOMEM, 'no memory for a CD table leaf');
    this.issue([
      ...master.sids.map((sid) => encodeSmmuCommand('CFGI_CD', { SID: sid, SSID: ssid, Leaf: 1 })),
      syncCommand(),
    ]);
    return { ok: true, value: undefined };
  }

  private clearCd(master: Master, ssid: number): void {
    master.cdTable?.clearCd(ssid);
    this.issue([
      ...master.sids.map((sid) => encodeSmmuCommand('CFGI_CD', { SID: sid, SSID: ssid, Leaf: 1 })),
      syncCommand(),
    ]);
  }

  // The STE the driver wants for `master` now, written to every stream id, then CFGI_STE + SYNC.
  private installSte(master: Master): void {
    const d = master.ridDomain;
    const hasPasids = master.pasids.size > 0;
    // PASID domains are paging domains: with any attached, ATS goes on (arm_smmu_set_pasid).
    let ats = hasPasids && master.atsCapable;
    let words: bigint[];
    if (d.type === 'blocked') {
      words = hasPasids ? this.cdTableSte(master, SMMU_S1DSS.TERMINATE, ats) : abortSte();
    } else if (d.type === 'identity') {
      words = hasPasids ? this.cdTableSte(master, SMMU_S1DSS.BYPASS, ats) : bypassSte();
    } else if (d.type === 'paging' && d.stage === 1) {
      ats = master.atsCapable;
      words = this.cdTableSte(master, SMMU_S1DSS.SSID0, ats);
    } else if (d.type === 'paging') {
      ats = master.atsCapable;
      words = this.s2Ste(master, d, ats);
    } else {
      const vste = d.vste;
      const parent = d.parent as Smmuv3Domain;
      if (vste === null || vste.config === SMMU_STE_CONFIG.ABORT) {
        words = abortSte();
      } else if (vste.config === SMMU_STE_CONFIG.BYPASS) {
        words = this.s2Ste(master, parent, false);
      } else {
        ats = master.atsCapable && vste.enableAts;
        words = this.s2Ste(master, parent, ats);
        const cfgMask = 7n << 1n;
        words[0] = 1n | (BigInt(SMMU_STE_CONFIG.NESTED) << 1n) | (vste.ste0 & ~cfgMask);
        words[1] = (words[1] as bigint) | vste.ste1 | (1n << 19n); // MEV: merge events
      }
    }
    const wasAts = master.atsEnabled;
    master.atsEnabled = ats;
    const cmds: [bigint, bigint][] = [];
    for (const sid of master.sids) {
      this.streamTable.writeSte(sid, words);
      cmds.push(encodeSmmuCommand('CFGI_STE', { SID: sid, Leaf: 1 }));
    }
    cmds.push(syncCommand());
    // The translation changed under an ATS-enabled device: its ATC goes (arm_smmu_attach_commit).
    if (wasAts) for (const sid of master.sids) cmds.push(atcInv(sid, -1, 0, 0));
    if (wasAts) cmds.push(syncCommand());
    this.issue(cmds);
  }

  private cdTableSte(master: Master, s1dss: number, ats: boolean): bigint[] {
    const cd = master.cdTable;
    if (cd === null) throw new Error('CD table missing');
    return SMMU_STE.encode({
      V: 1,
      Config: SMMU_STE_CONFIG.S1_TRANS,
      S1Fmt: cd.s1fmt,
      S1ContextPtr: cd.base,
      S1CDMax: cd.s1cdmax,
      S1DSS: s1dss,
      S1CIR: 1,
      S1COR: 1,
      S1CSH: 3,
      S1STALLD: this.features.stallModel !== 1 && !master.stall,
      EATS: ats ? SMMU_EATS.TRANS : SMMU_EATS.ABORT,
    });
  }

  private s2Ste(master: Master, domain: Smmuv3Domain, ats: boolean): bigint[] {
    const table = domain.pageTable as ArmLpaePageTable;
    const layout = table.layout;
    return SMMU_STE.encode({
      V: 1,
      Config: SMMU_STE_CONFIG.S2_TRANS,
      EATS: ats ? SMMU_EATS.TRANS : SMMU_EATS.ABORT,
      S2FWB: domain.nestParent && this.features.s2fwb,
      S2VMID: domain.vmid,
      S2T0SZ: 64 - layout.inputBits,
      S2SL0: armS2Sl0Encode(layout.granule, layout.startLevel),
      S2IR0: 1,
      S2OR0: 1,
      S2SH0: 3,
      S2TG: armTgEncode(layout.granule),
      S2PS: armPsEncode(layout.outputBits),
      S2AA64: 1,
      S2PTW: 1,
      S2S: master.stall,
      S2R: 1,
      S2TTB: table.root,
    });
  }

  // ---- commands ----------------------------------------------------------------------------

  submitCommands(commands: Uint8Array): HwResult<number> | CommandSmmuFailure {
    if (commands.length % SMMU_CMD_BYTES !== 0) {
      return {
        ok: false,
        errno: EINVAL,
        reason: 'commands must be whole 16-byte entries',
        consumed: 0,
      };
    }
    const words = smmuBytesToWords(commands);
    const list: [bigint, bigint][] = [];
    for (let i = 0; i < words.length; i += 2)
      list.push([words[i] as bigint, words[i + 1] as bigint]);
    return this.runCommands(list);
  }

  // Push each command into CMDQ memory and let the SMMU consume it.
  private runCommands(list: readonly [bigint, bigint][]): HwResult<number> | CommandSmmuFailure {
    this.cmdq.cons &= ~(0x7f << 24); // the driver's GERROR handler already skipped any earlier error
    let consumed = 0;
    for (const cmd of list) {
      this.cmdq.push(cmd);
      const fetched = this.cmdq.pop() as bigint[];
      const entry: [bigint, bigint] = [fetched[0] as bigint, fetched[1] as bigint];
      const cerror = this.execute(entry);
      if (cerror !== SMMU_CERROR.NONE) {
        this.cmdq.cons = (this.cmdq.cons | (cerror << 24)) >>> 0;
        const d = decodeSmmuCommand(entry);
        return {
          ok: false,
          errno: EIO,
          reason: `CERROR_ILL: command ${consumed} (opcode 0x${d.opcode.toString(16)}${d.name === undefined ? '' : ` ${d.name}`}, ${smmuHex64(entry[0])}) is illegal`,
          consumed,
        };
      }
      this.log.push(entry);
      if (this.log.length > 256) this.log.shift();
      consumed++;
    }
    return { ok: true, value: consumed };
  }

  // Driver-issued commands: they are always legal.
  private issue(list: readonly [bigint, bigint][]): void {
    const r = this.runCommands(list);
    if (!r.ok) throw new Error(`driver command rejected: ${r.reason}`);
  }

  // What the SMMU does with one command; the SMMU_CERROR it raises.
  private execute(words: [bigint, bigint]): number {
    const d = decodeSmmuCommand(words);
    const f = d.fields;
    switch (d.name) {
      case 'PREFETCH_CONFIG':
      case 'PREFETCH_ADDR':
      case 'CMD_SYNC':
      case 'PRI_RESP':
      case 'TLBI_EL3_ALL':
      case 'TLBI_EL3_VA':
        return SMMU_CERROR.NONE;
      case 'CFGI_STE':
        this.dropSte(f.SID as number);
        return SMMU_CERROR.NONE;
      case 'CFGI_STE_RANGE': {
        const range = f.Range as number;
        if (range >= 31) {
          this.steCache.clear();
          this.cdCache.clear();
        } else {
          const n = 2 ** (range + 1);
          const first = (f.SID as number) - ((f.SID as number) % n);
          for (const sid of [...this.steCache.keys()])
            if (sid >= first && sid < first + n) this.dropSte(sid);
        }
        return SMMU_CERROR.NONE;
      }
      case 'CFGI_CD':
        this.cdCache.delete(cdKey(f.SID as number, f.SSID as number));
        return SMMU_CERROR.NONE;
      case 'CFGI_CD_ALL':
        this.dropCds(f.SID as number);
        return SMMU_CERROR.NONE;
      case 'TLBI_NH_ALL':
      case 'TLBI_S12_VMALL':
        if (this.iotlbLive) this.iotlb.invalidateTag(f.VMID as number);
        return SMMU_CERROR.NONE;
      case 'TLBI_NH_ASID':
        if (this.iotlbLive) this.iotlb.invalidateAsid(f.VMID as number, f.ASID as number);
        return SMMU_CERROR.NONE;
      case 'TLBI_EL2_ALL':
        if (this.iotlbLive) this.iotlb.invalidateTag(0);
        return SMMU_CERROR.NONE;
      case 'TLBI_EL2_ASID':
        if (this.iotlbLive) this.iotlb.invalidateAsid(0, f.ASID as number);
        return SMMU_CERROR.NONE;
      case 'TLBI_NH_VA':
      case 'TLBI_NH_VAA':
      case 'TLBI_EL2_VA':
      case 'TLBI_EL2_VAA':
      case 'TLBI_S2_IPA': {
        if (!this.iotlbLive) return SMMU_CERROR.NONE;
        const [start, len] = tlbiRange(f);
        const vmid = d.name.startsWith('TLBI_EL2') ? 0 : (f.VMID as number);
        const asid =
          d.name === 'TLBI_NH_VA' || d.name === 'TLBI_EL2_VA'
            ? (f.ASID as number)
            : d.name === 'TLBI_S2_IPA'
              ? NO_ASID
              : undefined;
        this.iotlb.invalidateRange(vmid, asid, start, len);
        return SMMU_CERROR.NONE;
      }
      case 'TLBI_NSNH_ALL':
        if (this.iotlbLive) this.iotlb.invalidateAll();
        this.iotlbLive = false;
        return SMMU_CERROR.NONE;
      case 'ATC_INV': {
        if (!this.devtlbLive) return SMMU_CERROR.NONE;
        const size = f.Size as number;
        const asid = f.SSV === 1 ? (f.SSID as number) : undefined;
        if (size >= SMMU_ATC_INV_SIZE_ALL)
          this.deviceTlb.invalidateRange(f.SID as number, asid, 0, 2 ** 53);
        else
          this.deviceTlb.invalidateRange(
            f.SID as number,
            asid,
            f.Address as number,
            2 ** size * 4096,
          );
        return SMMU_CERROR.NONE;
      }
      case 'RESUME': {
        const p = this.pendingStalls.get(f.STAG as number);
        if (p !== undefined && p.sid === f.SID) this.pendingStalls.delete(f.STAG as number);
        return SMMU_CERROR.NONE;
      }
      case 'STALL_TERM':
        for (const [stag, p] of this.pendingStalls)
          if (p.sid === f.SID) this.pendingStalls.delete(stag);
        return SMMU_CERROR.NONE;
      default:
        return SMMU_CERROR.ILL;
    }
  }

  private dropSte(sid: number): void {
    this.steCache.delete(sid);
    this.dropCds(sid);
  }

  private dropCds(sid: number): void {
    for (const key of [...this.cdCache.keys()])
      if (Math.floor(key / 2 ** 20) === sid) this.cdCache.delete(key);
  }

  /** Stalled transactions waiting for RESUME, by STAG. */
  pendingStallTags(): number[] {
    return [...this.pendingStalls.keys()];
  }

  // ---- translation ---------------------------------------------------------------------------

  translateDma(ctx: DmaContext, iova: number, out: DmaTranslation): boolean {
    out.ok = false;
    out.pa = 0;
    out.contiguous = 0;
    out.fromCache = false;
    out.fault = null;
    out.pageRequest = null;
    const sid = ctx.requester;
    const access = ctx.access;
    let ste = this.steCache.get(sid);
    if (ste === undefined) {
      const r = fetchSte(this.fetchContext, sid);
      if (!r.ok) return this.fail(ctx, iova, out, r);
      ste = r.value;
      this.steCache.set(sid, ste);
    }
    if (ste.config === SMMU_STE_CONFIG.ABORT) {
      out.fault = this.makeFault(
        ctx,
        iova,
        'STE abort',
        0,
        'blocked',
        0,
        new Uint8Array(0),
        'the STE aborts all traffic (Config 0); no event is recorded',
      );
      return false;
    }
    const ssid = ctx.pasid;
    if (ste.config === SMMU_STE_CONFIG.BYPASS) {
      if (ssid < 0) return pass(out, iova);
      return this.fail(
        ctx,
        iova,
        out,
        configFailure('C_BAD_SUBSTREAMID', 'a SubstreamID on a bypass stream'),
      );
    }
    let s1 = ste.s1;
    let cd: CachedCd | null = null;
    if (s1) {
      let index = ssid;
      if (ssid >= 0) {
        if (ste.s1cdmax === 0 || ssid >= 2 ** ste.s1cdmax) {
          return this.fail(
            ctx,
            iova,
            out,
            configFailure(
              'C_BAD_SUBSTREAMID',
              `SubstreamID ${ssid} is beyond S1CDMax ${ste.s1cdmax}`,
            ),
          );
        }
      } else if (ste.s1cdmax === 0) {
        index = 0; // no substreams: S1DSS does not apply, CD 0 serves the stream
      } else if (ste.s1dss === SMMU_S1DSS.TERMINATE) {
        return this.fail(ctx, iova, out, {
          ok: false,
          event: 'F_STREAM_DISABLED',
          values: {},
          reason: 'S1DSS terminates traffic without a SubstreamID',
          stage: 0,
          kind: 'blocked',
        });
      } else if (ste.s1dss === SMMU_S1DSS.BYPASS) {
        s1 = false;
      } else {
        index = 0;
      }
      if (s1) {
        const key = cdKey(sid, index);
        cd = this.cdCache.get(key) ?? null;
        if (cd === null) {
          const r = fetchCd(this.fetchContext, ste, index, iova);
          if (!r.ok) return this.fail(ctx, iova, out, r);
          cd = r.value;
          this.cdCache.set(key, cd);
        }
      }
    } else if (ssid >= 0) {
      return this.fail(
        ctx,
        iova,
        out,
        configFailure('C_BAD_SUBSTREAMID', 'a SubstreamID on a stream without stage 1'),
      );
    }
    if (!s1 && !ste.s2) return pass(out, iova);

    const ats = ste.eats === SMMU_EATS.TRANS && ctx.device.ats && this.features.ats;
    const atcAsid = ssid >= 0 ? ssid : NO_ASID;
    if (
      ats &&
      this.devtlbLive &&
      this.deviceTlb.lookup(sid, atcAsid, iova, this.hit) &&
      permitted(this.hit.prot, access)
    ) {
      return this.cached(out, iova);
    }
    const tag = ste.vmid;
    const asid = s1 && cd !== null ? cd.asid : NO_ASID;
    if (
      this.iotlbLive &&
      this.iotlb.lookup(tag, asid, iova, this.hit) &&
      permitted(this.hit.prot, access)
    ) {
      if (ats) this.fillAtc(sid, atcAsid, iova);
      return this.cached(out, iova);
    }

    // Walk.
    let addr = iova;
    let size = 2 ** 53;
    let prot = IOMMU_READ | IOMMU_WRITE;
    let clean = false;
    if (s1 && cd !== null) {
      if (cd.epd0 || iova >= cd.inputLimit) {
        return this.walkFault(
          ctx,
          ste,
          iova,
          out,
          walkFailure(
            'F_TRANSLATION',
            1,
            {},
            'not-present',
            `input 0x${iova.toString(16)} is outside TTB0's range (or EPD0)`,
          ),
        );
      }
      const t = cd.table.translate(iova, access, this.t1);
      if (!t.ok) {
        if (t.fault === 'table-fetch' && ste.s2Memory !== null && ste.s2Memory.lastFault !== null) {
          const f2 = ste.s2Memory.lastFault;
          return this.walkFault(
            ctx,
            ste,
            iova,
            out,
            walkFailure(
              eventFor(f2.fault),
              2,
              { CLASS: SMMU_EVENT_CLASS.TT, IPA: pageOf(ste.s2Memory.lastFaultIpa) },
              f2.fault ?? 'table-fetch',
              `stage 2 does not translate the stage-1 table at IPA 0x${ste.s2Memory.lastFaultIpa.toString(16)}`,
            ),
          );
        }
        return this.walkFault(
          ctx,
          ste,
          iova,
          out,
          walkFailure(
            eventFor(t.fault),
            1,
            {},
            t.fault ?? 'not-present',
            `stage 1 ${t.fault} at level ${t.level}`,
          ),
        );
      }
      addr = t.pa;
      size = t.pageSize;
      prot = t.prot;
      clean = cd.table.lastWritableClean;
    }
    if (ste.s2table !== null) {
      const s2table = ste.s2table;
      const t = s2table.translate(addr, access, this.t2);
      if (!t.ok) {
        return this.walkFault(
          ctx,
          ste,
          iova,
          out,
          walkFailure(
            eventFor(t.fault),
            2,
            { CLASS: SMMU_EVENT_CLASS.IN, IPA: pageOf(addr) },
            t.fault ?? 'not-present',
            `stage 2 ${t.fault} for IPA 0x${addr.toString(16)}`,
          ),
        );
      }
      size = Math.min(size, t.pageSize);
      prot =
        (prot & ~(IOMMU_READ | IOMMU_WRITE)) |
        (prot & t.prot & (IOMMU_READ | IOMMU_WRITE)) |
        (t.prot & IOMMU_NOEXEC);
      clean = clean || s2table.lastWritableClean;
      addr = t.pa;
    }
    const cacheProt = clean ? prot & ~IOMMU_WRITE : prot;
    this.iotlb.fill(tag, asid, iova, addr, size, cacheProt);
    this.iotlbLive = true;
    if (ats) {
      this.deviceTlb.fill(sid, atcAsid, iova, addr, size, cacheProt);
      this.devtlbLive = true;
    }
    out.ok = true;
    out.pa = addr;
    out.contiguous = size - (iova % size);
    return true;
  }

  private cached(out: DmaTranslation, iova: number): boolean {
    out.ok = true;
    out.fromCache = true;
    out.pa = this.hit.pa;
    out.contiguous = this.hit.pageSize - (iova % this.hit.pageSize);
    return true;
  }

  private fillAtc(sid: number, asid: number, iova: number): void {
    this.deviceTlb.fill(sid, asid, iova, this.hit.pa, this.hit.pageSize, this.hit.prot);
    this.devtlbLive = true;
  }

  // A walk fault: a stall (page request or driver abort), a PRI request, or a plain event.
  private walkFault(
    ctx: DmaContext,
    ste: CachedSte,
    iova: number,
    out: DmaTranslation,
    f: SmmuFailure,
  ): boolean {
    const master = this.sidToMaster.get(ctx.requester);
    const cd =
      ctx.pasid >= 0
        ? this.cdCache.get(cdKey(ctx.requester, ctx.pasid))
        : this.cdCache.get(cdKey(ctx.requester, 0));
    const model = this.features.stallModel;
    const stalls =
      model !== 1 &&
      STALLABLE.has(f.event) &&
      (model === 2 || (f.stage === 2 ? ste.s2stall : cd?.stall && !ste.s1stalld));
    if (stalls) {
      const stag = this.nextStag;
      this.nextStag = (this.nextStag + 1) & 0xffff;
      this.pendingStalls.set(stag, { sid: ctx.requester, ssid: ctx.pasid });
      const fault = this.recordEvent(ctx, iova, {
        ...f,
        values: { ...f.values, Stall: 1, STAG: stag },
      });
      out.fault = fault;
      const domain =
        master === undefined
          ? undefined
          : ctx.pasid >= 0
            ? master.pasids.get(ctx.pasid)
            : master.ridDomain;
      const request: PageRequest = {
        device: ctx.device,
        requester: ctx.requester,
        pasid: ctx.pasid,
        groupId: stag,
        lastPage: true,
        perm: pgfaultPerm(ctx.access),
        address: iova,
        source: 'stall',
        record: fault.record,
      };
      if (domain?.iopfCapable === true) {
        out.pageRequest = request;
        this.onPageRequest?.(request);
      } else {
        // iommu_report_device_fault finds no handler: the driver answers FAILURE -> RESUME abort.
        this.issue([
          encodeSmmuCommand('RESUME', {
            SID: ctx.requester,
            STAG: stag,
            Resp: SMMU_RESUME_RESP.ABORT,
          }),
        ]);
      }
      return false;
    }
    const ats = ste.eats === SMMU_EATS.TRANS && ctx.device.ats && this.features.ats;
    if (ats && ctx.device.pri && this.features.pri && STALLABLE.has(f.event))
      return this.priRequest(ctx, iova, out, f);
    return this.fail(ctx, iova, out, f);
  }

  // A PRI page request: written to the PRI queue; Linux 6.17 denies every one (arm_smmu_handle_ppr).
  private priRequest(ctx: DmaContext, iova: number, out: DmaTranslation, f: SmmuFailure): boolean {
    const prgi = this.nextPrgIndex;
    this.nextPrgIndex = (this.nextPrgIndex + 1) & 511;
    const ssv = ctx.pasid >= 0;
    const words = SMMU_PRI_ENTRY.encode({
      SID: ctx.requester,
      SSID: ssv ? ctx.pasid : 0,
      SSV: ssv,
      Priv: (ctx.access & ACCESS_PRIV) !== 0,
      Exec: (ctx.access & ACCESS_EXEC) !== 0,
      Read: (ctx.access & ACCESS_READ) !== 0,
      Write: (ctx.access & ACCESS_WRITE) !== 0,
      Last: 1,
      PRGIndex: prgi,
      Address: iova - (iova % 4096),
    });
    this.priq.push(words);
    if (this.autoDrainEvents) {
      this.priq.pop();
      this.priq.acknowledgeOverflow();
    }
    this.issue([
      encodeSmmuCommand('PRI_RESP', {
        SID: ctx.requester,
        SSID: ssv ? ctx.pasid : 0,
        SSV: ssv,
        PRGIndex: prgi,
        Resp: SMMU_PRI_RESP.DENY,
      }),
    ]);
    const fault = this.makeFault(
      ctx,
      iova,
      'PRI page request denied',
      0,
      f.kind,
      f.stage,
      smmuWordsToBytes(words),
      `${f.reason}; the device's PRI page request (PRG ${prgi}) was answered with a deny`,
    );
    this.faultLog.push(fault);
    this.onFault?.(fault);
    out.fault = fault;
    return false;
  }

  private fail(ctx: DmaContext, iova: number, out: DmaTranslation, f: SmmuFailure): false {
    out.fault = this.recordEvent(ctx, iova, f);
    return false;
  }

  // Write an event record to the event queue and log it as a HwFault.
  private recordEvent(ctx: DmaContext, iova: number, f: SmmuFailure): HwFault {
    const ssv = ctx.pasid >= 0;
    const values: Record<string, number | bigint | boolean> = {
      SID: ctx.requester,
      SSV: ssv,
      SSID: ssv ? ctx.pasid : 0,
      ...f.values,
    };
    const id = SMMU_EVENT_ID[f.event];
    if (id >= 0x10 && id <= 0x13) {
      values.RnW = (ctx.access & ACCESS_WRITE) === 0;
      values.InD = (ctx.access & ACCESS_EXEC) !== 0;
      values.PnU = (ctx.access & ACCESS_PRIV) !== 0;
      values.S2 = f.stage === 2;
      values.InputAddr ??= iova;
    } else if (f.event === 'F_STE_FETCH' || f.event === 'F_CD_FETCH') {
      values.InputAddr ??= iova;
    }
    const words = encodeSmmuEvent(f.event, values);
    const record = smmuWordsToBytes(words);
    const fault = this.makeFault(ctx, iova, f.event, id, f.kind, f.stage, record, f.reason);
    const written = this.evtq.push(words);
    if (this.autoDrainEvents) {
      this.evtq.pop();
      this.evtq.acknowledgeOverflow();
    }
    if (written) {
      this.faultLog.push(fault);
      this.onFault?.(fault);
    }
    return fault;
  }

  private makeFault(
    ctx: DmaContext,
    iova: number,
    name: string,
    code: number,
    kind: HwFault['kind'],
    stage: number,
    record: Uint8Array,
    reason: string,
  ): HwFault {
    return {
      model: 'smmuv3',
      name,
      code,
      kind,
      stage,
      requester: ctx.requester,
      pasid: ctx.pasid,
      iova,
      access: ctx.access,
      record,
      reason,
    };
  }

  completePageRequest(request: PageRequest, code: PageResponseCode): void {
    if (request.source === 'stall') {
      // arm_smmu_page_response: SUCCESS -> RESUME retry; INVALID/FAILURE -> RESUME abort.
      const resp = code === 'success' ? SMMU_RESUME_RESP.RETRY : SMMU_RESUME_RESP.ABORT;
      this.issue([
        encodeSmmuCommand('RESUME', { SID: request.requester, STAG: request.groupId, Resp: resp }),
      ]);
    } else {
      const ssv = request.pasid >= 0;
      const resp =
        code === 'success'
          ? SMMU_PRI_RESP.SUCCESS
          : code === 'failure'
            ? SMMU_PRI_RESP.FAIL
            : SMMU_PRI_RESP.DENY;
      this.issue([
        encodeSmmuCommand('PRI_RESP', {
          SID: request.requester,
          SSV: ssv,
          SSID: ssv ? request.pasid : 0,
          PRGIndex: request.groupId & 511,
          Resp: resp,
        }),
      ]);
    }
  }
}

// ---- helpers --------------------------------------------------------------------------------

function fail(errno: number, reason: string): { ok: false; errno: number; reason: string } {
  return { ok: false, errno, reason };
}

function cdKey(sid: number, ssid: number): number {
  return sid * 2 ** 20 + ssid;
}

function pass(out: DmaTranslation, iova: number): true {
  out.ok = true;
  out.pa = iova;
  out.contiguous = FRAME_SIZE - (iova % FRAME_SIZE);
  return true;
}

// Whether cached permissions allow an access (otherwise the SMMU walks again).
function permitted(prot: number, access: number): boolean {
  if ((access & ACCESS_READ) !== 0 && (prot & IOMMU_READ) === 0) return false;
  if ((access & ACCESS_WRITE) !== 0 && (prot & IOMMU_WRITE) === 0) return false;
  if ((access & ACCESS_EXEC) !== 0 && (prot & IOMMU_NOEXEC) !== 0) return false;
  if ((access & ACCESS_PRIV) === 0 && (prot & IOMMU_PRIV) !== 0) return false;
  return true;
}

function pgfaultPerm(access: number): number {
  let perm = (access & ACCESS_WRITE) !== 0 ? IOMMU_PGFAULT_PERM_WRITE : IOMMU_PGFAULT_PERM_READ;
  if ((access & ACCESS_EXEC) !== 0) perm |= IOMMU_PGFAULT_PERM_EXEC;
  if ((access & ACCESS_PRIV) !== 0) perm |= IOMMU_PGFAULT_PERM_PRIV;
  return perm;
}

// The lowest free id in [min, max], or -1.
function allocId(used: Set<number>, min: number, max: number): number {
  for (let id = min; id <= max; id++) {
    if (!used.has(id)) {
      used.add(id);
      return id;
    }
  }
  return -1;
}
