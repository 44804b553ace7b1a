/**
 * An AMD-Vi IOMMU as Linux 6.17 drives it: EFR/EFR2, a device table of
 * 256-bit DTEs in memory indexed by DeviceID (the PCI RID), v1 host page
 * tables, an IOTLB tagged by DomainID, device TLBs for ATS devices, a command
 * buffer, an event log and a PPR log, each a 512-entry ring in memory.
 *
 * PASID: when the IOMMU has GT, PPR and EPHSUP (amd_iommu_pasid_supported),
 * IOMMU_HWPT_ALLOC_PASID domains get a v2 table (x86-64, 4 levels, 4K/2M/1G).
 * Each PASID-capable device gets a GCR3 table (9 PASID bits a level, GLX
 * from its PASID count as get_gcr3_levels does) and its own DomainID while
 * its RID is attached to identity or a v2 domain (init_gcr3_table); the DTE
 * then has GV, GLX and the GCR3 root, plus GIOV for a v2 RID domain, whose
 * root sits in GCR3[0] so untagged requests walk it as PASID 0. PASID
 * attach writes GCR3[pasid] as pasid.c's set_dev_pasid does and flushes the
 * PASID (INVALIDATE_IOMMU_PAGES with GN). 6.17 itself wires set_dev_pasid
 * only to SVA domains; the model lets v2 paging domains use the same path.
 *
 * Not modelled: hw_info data (type NONE), nesting, vIOMMU, 5-level guest
 * tables (GATS 0), and GV with a host Mode (6.17 never writes it).
 */
import { EINVAL, ENODEV, ENOMEM, ENOSPC, EOPNOTSUPP } from '@iommufd-sim/uapi-types';
import type { Device } from '../../device.js';
import { AmdV1PageTable, amdV1PageSizes, walkAmdV1 } from '../../pagetable/amd-v1.js';
import {
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  newTranslation,
  type Translation,
} from '../../pagetable/format.js';
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
import { AmdDomain, type AmdDomainOwner } from './amd-domain.js';
import {
  AMD_COMMAND_SIZE,
  type AmdCommand,
  decodeAmdCommand,
  encodeCompletePprRequest,
  encodeCompletionWait,
  encodeInvalidateDevtabEntry,
  encodeInvalidateIommuPages,
  encodeInvalidateIotlbPages,
  PPR_STATUS_FAILURE,
  PPR_STATUS_INVALID,
  PPR_STATUS_SUCCESS,
} from './commands.js';
import { DTE_COUNT, DTE_SIZE, decodeDte, encodeDte, storeDte } from './dte.js';
import { decodeEfr, decodeEfr2, efrFromFeatures } from './efr.js';
import {
  AMD_EVENT_NAMES,
  type AmdEvent,
  type AmdPprEntry,
  decodeAmdEvent,
  decodeAmdPprEntry,
  EVENT_FLAG_GN,
  EVENT_FLAG_NX,
  EVENT_FLAG_PR,
  EVENT_FLAG_RW,
  EVENT_FLAG_RZ,
  EVENT_FLAG_TR,
  EVENT_FLAG_US,
  EVENT_ILLEGAL_COMMAND,
  EVENT_ILLEGAL_DEV_TABLE_ENTRY,
  EVENT_INVALID_DEVICE_REQUEST,
  EVENT_IO_PAGE_FAULT,
  EVENT_PAGE_TAB_HARDWARE_ERROR,
  encodeAmdEvent,
  encodeAmdPprEntry,
  PPR_FLAG_EXEC,
  PPR_FLAG_GN,
  PPR_FLAG_READ,
  PPR_FLAG_US,
  PPR_FLAG_WRITE,
  PPR_REQ_FAULT,
} from './log-entries.js';

/** The MSI window every AMD device reserves (MSI_RANGE_START..END). */
export const AMD_MSI_RANGE: ReservedRegion = { start: 0xfee00000, last: 0xfeefffff, kind: 'msi' };
/** The HyperTransport hole (HT_RANGE_START..END), reserved unless EFR2 says to ignore it. */
export const AMD_HT_RANGE: ReservedRegion = {
  start: 0xfd_0000_0000,
  last: 0xff_ffff_ffff,
  kind: 'reserved',
};

/** Leaf sizes of a v2 (x86-64) domain (AMD_IOMMU_PGSIZES_V2). */
export const AMD_V2_PAGE_SIZES: readonly number[] = [4096, 2 ** 21, 2 ** 30];

/**
 * GCR3 table levels (the DTE's GLX) for a device with `pasids` PASIDs, as
 * Linux's get_gcr3_levels: 9 PASID bits a level; 0 = one level.
 */
export function gcr3Levels(pasids: number): number {
  const order = pasids <= 1 ? 0 : 32 - Math.clz32(pasids - 1);
  return order === 0 ? 0 : Math.ceil(order / 9) - 1;
}

/** Entries in each of the command buffer, event log and PPR log rings (Linux uses 512). */
export const AMD_RING_ENTRIES = 512;

// Access bits (local copies for the DMA path).
const A_READ = 1;
const A_WRITE = 2;
const A_EXEC = 4;
const A_PRIV = 8;
const A_UPDATE_AD = 16;
const TWO32 = 4294967296;

/** A ring of 16-byte entries in memory with its head and tail (entry indices). */
interface Ring {
  readonly base: number;
  head: number;
  tail: number;
  overflow: boolean;
}

/** A device's GCR3 table (gcr3_tbl_info): its pages, levels, per-device DomainID and PASIDs. */
interface Gcr3Table {
  readonly base: number;
  readonly glx: number;
  readonly domid: number;
  /** Every page of the table (base first). */
  readonly pages: number[];
  /** PASIDs (not 0) attached to a domain. */
  readonly pasids: Map<number, AmdDomain>;
}

interface DeviceState {
  readonly device: Device;
  domain: AmdDomain;
  nextTag: number;
  /** dev_data->max_pasids: min(IOMMU PASIDs, device PASIDs), 0 without PASID. */
  readonly maxPasids: number;
  gcr3: Gcr3Table | null;
}

const PASID_KEY = 2 ** 20;

/** AMD-Vi hardware. */
export class AmdIommu implements IommuInstance, AmdDomainOwner {
  readonly name: string;
  readonly model = 'amd' as const;
  readonly config: Required<IommuConfig>;
  readonly env: IommuEnvironment;
  /** IOTLB: tag DomainID, asid PASID (NO_ASID for host translations). */
  readonly iotlb = new Iotlb();
  /** The device TLBs of ATS devices: tag DeviceID, asid PASID or NO_ASID. */
  readonly deviceTlb = new Iotlb({ sets: 256, ways: 4 });
  readonly faultLog: HwFault[] = [];
  onFault: ((fault: HwFault) => void) | null = null;
  onPageRequest: ((request: PageRequest) => void) | null = null;
  /** EFR (MMIO 0x30). */
  readonly efr: bigint;
  /** EFR2 (MMIO 0x1A0). */
  readonly efr2: bigint;
  /** Host table levels the hardware walks (amd_iommu_hpt_level, EFR.HATS + 4). */
  readonly hostLevels: number;
  /** Physical address of the device table (65536 DTEs of 32 bytes). */
  readonly deviceTableBase: number;
  /** Every command the IOMMU executed, oldest first (the last 4096). */
  readonly commandLog: AmdCommand[] = [];
  /** COMPLETION_WAIT interrupts raised. */
  completionWaitInterrupts = 0;
  private readonly commandRing: Ring;
  private readonly eventRing: Ring;
  private readonly pprRing: Ring;
  private readonly dteWords: Uint32Array;
  private readonly dteCache = new Map<number, Uint32Array>();
  private readonly devices = new Map<number, DeviceState>();
  private readonly usedIds = new Set<number>();
  private nextId = 1;
  private readonly blocked: AmdDomain;
  private readonly identity: AmdDomain;
  private readonly hit = newTlbHit();
  private readonly walkOut = newTranslation();
  private readonly v2Views = new Map<number, X86PageTable>();

  constructor(config: IommuConfig, env: IommuEnvironment) {
    const inputBits = config.inputBits ?? 48;
    const hostLevels = Math.min(6, Math.max(4, Math.ceil((inputBits - 12) / 9)));
    this.config = {
      name: config.name,
      model: 'amd',
      inputBits,
      outputBits: config.outputBits ?? 52,
      pageSizes: config.pageSizes ?? amdV1PageSizes(inputBits),
      pasidBits: config.pasidBits ?? 0,
      nesting: config.nesting ?? false,
      dirtyTracking: config.dirtyTracking ?? true,
      ats: config.ats ?? true,
      pri: config.pri ?? true,
    };
    this.name = config.name;
    this.env = env;
    this.hostLevels = hostLevels;
    const regs = efrFromFeatures({
      hostLevels,
      pasidBits: this.config.pasidBits,
      dirtyTracking: this.config.dirtyTracking,
      ppr: this.config.pri,
    });
    this.efr = regs.efr;
    this.efr2 = regs.efr2;
    const table = env.allocator.allocate(DTE_COUNT * DTE_SIZE);
    if (table < 0) throw new RangeError('no memory for the AMD device table');
    this.deviceTableBase = table;
    this.dteWords = env.allocator.blockWords(table, DTE_COUNT * DTE_SIZE);
    // init_device_table_dma: every DeviceID starts V=1, TV=1 (no translation allowed).
    for (let i = 0; i < DTE_COUNT; i++) this.dteWords[i * 8] = 0x3;
    this.commandRing = this.newRing();
    this.eventRing = this.newRing();
    this.pprRing = this.newRing();
    const geometry = this.domainGeometry();
    this.blocked = new AmdDomain(this, 'blocked', 0, null, geometry, false, false);
    this.identity = new AmdDomain(
      this,
      'identity',
      this.allocateId(),
      null,
      geometry,
      false,
      false,
    );
  }

  registers(): Readonly<Record<string, bigint>> {
    return { EFR: this.efr, EFR2: this.efr2 };
  }

  decodedRegisters(): Readonly<Record<string, Readonly<Record<string, number | boolean>>>> {
    return { EFR: decodeEfr(this.efr), EFR2: decodeEfr2(this.efr2) };
  }

  /**
   * 6.17 AMD has no hw_info op: type NONE, no data; DIRTY_TRACKING when HDSUP
   * (capable()). max_pasid_log2 is the core's ilog2(dev->iommu->max_pasids):
   * the device's PASID count capped by the IOMMU's (1 << (PASMAX + 1)) - 1,
   * set when EFR.GT is present.
   */
  hwInfo(device: Device): HwInfo {
    const efr = decodeEfr(this.efr);
    let log2 = 0;
    if (efr.GT === true && device.pasidBits > 0) {
      const iommuPasids = 2 ** ((efr.PASMAX as number) + 1) - 1;
      log2 = Math.floor(Math.log2(Math.min(iommuPasids, 2 ** device.pasidBits)));
    }
    return {
      type: 0,
      data: new Uint8Array(0),
      capabilities: this.hdSupport ? 1n : 0n,
      maxPasidLog2: log2,
    };
  }

  /** amd_iommu_get_resv_regions: the MSI window, and the HyperTransport hole. */
  reservedRegions(_device: Device): readonly ReservedRegion[] {
    const htIgnore = decodeEfr2(this.efr2).HT_RANGE_IGNORE === true;
    return htIgnore ? [AMD_MSI_RANGE] : [AMD_MSI_RANGE, AMD_HT_RANGE];
  }

  /** v1 domains: aperture [0, PM_LEVEL_SIZE(hpt_level)] (capped below 2^53), AMD_IOMMU_PGSIZES. */
  domainGeometry(_device?: Device): DomainGeometry {
    const last = this.hostLevels >= 6 ? 2 ** 64 : 2 ** (12 + 9 * this.hostLevels);
    return {
      apertureStart: 0,
      apertureLast: Math.min(last, 2 ** 53) - 1,
      pageSizes: this.config.pageSizes,
    };
  }

  addDevice(device: Device): void {
    if (!device.isPci)
      throw new RangeError(`${device.name}: AMD-Vi devices are PCI (DeviceID = RID)`);
    if (!this.devices.has(device.rid)) {
      const efr = decodeEfr(this.efr);
      const maxPasids =
        this.pasidSupported && device.pasidBits > 0
          ? Math.min(2 ** ((efr.PASMAX as number) + 1) - 1, 2 ** device.pasidBits)
          : 0;
      this.devices.set(device.rid, {
        device,
        domain: this.blocked,
        nextTag: 0,
        maxPasids,
        gcr3: null,
      });
    }
  }

  /** The domain `device` is attached to (blocked when none). */
  attachedDomain(device: Device): IommuDomain | null {
    return this.devices.get(device.rid)?.domain ?? null;
  }

  /** The domain PASID `pasid` of `device` is attached to, or null. */
  attachedPasidDomain(device: Device, pasid: number): IommuDomain | null {
    return this.devices.get(device.rid)?.gcr3?.pasids.get(pasid) ?? null;
  }

  /**
   * The GCR3 table of `deviceId` as its DTE names it (GV, GLX, root), and the
   * raw 64-bit entry for `pasid` found by walking it in memory (0n when a
   * level is missing); null when the DTE has GV clear.
   */
  gcr3Entry(deviceId: number, pasid: number): { root: number; glx: number; entry: bigint } | null {
    const dte = decodeDte(this.deviceTableEntry(deviceId));
    if (!dte.gv) return null;
    const out = { root: dte.gcr3, glx: dte.glx, entry: 0n };
    let table = dte.gcr3;
    for (let level = dte.glx; level >= 0; level--) {
      const idx = Math.floor(pasid / 2 ** (9 * level)) & 0x1ff;
      const bytes = this.env.memory.read(table + idx * 8, 8);
      const v = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
      if (level === 0) out.entry = v;
      else if ((v & 1n) === 0n) return out;
      else table = Number(v & 0x000f_ffff_ffff_f000n);
    }
    return out;
  }

  allocDomain(spec: DomainSpec): HwResult<IommuDomain> {
    switch (spec.type) {
      case 'blocked':
        return { ok: true, value: this.blocked };
      case 'identity':
        return { ok: true, value: this.identity };
      case 'nested':
        return fail(EOPNOTSUPP, 'AMD-Vi has no nested domains in 6.17');
      case 'paging': {
        // amd_iommu_domain_alloc_paging_flags: only DIRTY_TRACKING or PASID, alone.
        if (spec.nestParent === true)
          return fail(EOPNOTSUPP, 'NEST_PARENT is not supported by AMD-Vi in 6.17');
        if (spec.dirtyTracking === true && spec.pasid === true) {
          return fail(EOPNOTSUPP, 'DIRTY_TRACKING together with PASID is not supported');
        }
        if (spec.dirtyTracking === true && !this.hdSupport) {
          return fail(EOPNOTSUPP, 'the IOMMU has no host dirty support (EFR.HDSUP)');
        }
        if (spec.pasid === true) return this.allocV2Domain(spec.iopf === true);
        const id = this.allocateId();
        if (id < 0) return fail(ENOMEM, 'no DomainID left');
        let table: AmdV1PageTable;
        try {
          table = new AmdV1PageTable({
            allocator: this.env.allocator,
            levels: 3,
            maxLevels: this.hostLevels,
            pageSizes: this.config.pageSizes,
            outputBits: this.config.outputBits,
          });
        } catch {
          this.usedIds.delete(id);
          return fail(ENOMEM, 'no memory for the page table root');
        }
        const domain = new AmdDomain(
          this,
          'paging',
          id,
          table,
          this.domainGeometry(spec.device),
          spec.dirtyTracking === true,
          spec.iopf === true,
        );
        return { ok: true, value: domain };
      }
    }
  }

  attach(device: Device, domain: IommuDomain, pasid?: number): HwResult<void> {
    const state = this.devices.get(device.rid);
    if (!device.isPci || state === undefined)
      return fail(ENODEV, `${device.name} is not behind ${this.name}`);
    if (!(domain instanceof AmdDomain) || domain.iommu !== this) {
      return fail(EINVAL, 'the domain belongs to another IOMMU');
    }
    if (pasid !== undefined) return this.attachPasid(state, domain, pasid);
    const old = state.domain;
    const oldDomid = this.dteDomainId(state);
    // init_gcr3_table / destroy_gcr3_table: a GCR3 table while the RID is on
    // identity (PASID-capable device) or a v2 domain, none otherwise.
    const wantGcr3 = domain.pasidCapable || (domain.type === 'identity' && state.maxPasids > 0);
    if (wantGcr3 && state.gcr3 === null) {
      const made = this.setupGcr3(state);
      if (!made.ok) return made;
    }
    old.devices.delete(device.rid);
    state.domain = domain;
    domain.devices.add(device.rid);
    const gcr3 = state.gcr3;
    if (gcr3 !== null) {
      if (!wantGcr3) this.destroyGcr3(state, gcr3);
      else if (domain.pasidCapable || old.pasidCapable) {
        // GCR3[0] holds the root of a v2 RID domain (update_gcr3 for PASID 0).
        const root = domain.pasidCapable ? (domain.pageTable as X86PageTable).root : -1;
        if (!this.writeGcr3(gcr3, 0, root)) return fail(ENOMEM, 'no memory for a GCR3 level');
        this.flushPasid(state, gcr3, 0);
      }
    }
    this.writeDte(state);
    const cmds = [encodeInvalidateDevtabEntry(device.rid)];
    if (oldDomid !== 0 && oldDomid !== this.dteDomainId(state)) {
      cmds.push(encodeInvalidateIommuPages({ domainId: oldDomid }));
      if (device.ats && this.config.ats)
        cmds.push(encodeInvalidateIotlbPages({ deviceId: device.rid }));
    }
    cmds.push(encodeCompletionWait({}));
    for (const c of cmds) this.issue(c);
    return { ok: true, value: undefined };
  }

  detach(device: Device, pasid?: number): void {
    if (this.devices.has(device.rid)) this.attach(device, this.blocked, pasid);
  }

  translateDma(ctx: DmaContext, iova: number, out: DmaTranslation): boolean {
    out.ok = false;
    out.fault = null;
    out.pageRequest = null;
    out.fromCache = false;
    out.pa = 0;
    out.contiguous = 0;
    const devid = ctx.requester & 0xffff;
    const access = ctx.access;
    const pasid = ctx.pasid;
    const dte = this.loadDte(devid);
    const lo0 = dte[0] as number;
    const hi0 = dte[1] as number;
    const lo1 = dte[2] as number;
    const hi1 = dte[3] as number;
    if ((lo0 & 1) === 0) return passThrough(out, iova); // V=0: untranslated
    const domid = lo1 & 0xffff;
    const ats = ctx.device.ats && (hi1 & 1) !== 0;
    const tr = ats ? EVENT_FLAG_TR : 0;
    const rw = (access & A_WRITE) !== 0 ? EVENT_FLAG_RW : 0;
    if ((lo0 & 2) === 0) {
      return this.fault(
        out,
        ctx,
        iova,
        EVENT_IO_PAGE_FAULT,
        domid,
        rw | tr,
        'blocked',
        'DTE.TV=0: DMA blocked',
      );
    }
    if (pasid >= 0 && (hi0 & (1 << 23)) === 0) {
      return this.fault(
        out,
        ctx,
        iova,
        EVENT_INVALID_DEVICE_REQUEST,
        domid,
        rw | tr,
        'bad-config',
        'a PASID-tagged request to a DTE without GV',
      );
    }
    // GV: PASID-tagged requests, and untagged ones when GIOV, walk GCR3.
    if ((hi0 & (1 << 23)) !== 0 && (pasid >= 0 || (hi0 & (1 << 22)) !== 0)) {
      return this.translateGuest(ctx, iova, out, dte);
    }
    const mode = (lo0 >>> 9) & 7;
    const dteProt = (hi0 >>> 29) & 3; // IR, IW
    const need = access & (A_READ | A_WRITE);
    if (mode === 0) {
      if ((need & ~dteProt) !== 0) {
        const kind = dteProt === 0 ? 'blocked' : 'permission';
        return this.fault(
          out,
          ctx,
          iova,
          EVENT_IO_PAGE_FAULT,
          domid,
          rw | tr,
          kind,
          'DTE IR/IW deny the access',
        );
      }
      return passThrough(out, iova);
    }
    if (mode === 7) {
      return this.fault(
        out,
        ctx,
        iova,
        EVENT_ILLEGAL_DEV_TABLE_ENTRY,
        domid,
        rw,
        'bad-config',
        'DTE Mode 7 is reserved',
      );
    }
    const asid = pasid >= 0 ? pasid : NO_ASID;
    const hit = this.hit;
    if (ats && this.deviceTlb.lookup(devid, asid, iova, hit) && (need & ~hit.prot) === 0) {
      return cached(out, hit.pa, hit.pageSize, iova);
    }
    if (this.iotlb.lookup(domid, asid, iova, hit) && (need & ~hit.prot) === 0) {
      if (ats) this.deviceTlb.fill(devid, asid, iova, hit.pa, hit.pageSize, hit.prot);
      return cached(out, hit.pa, hit.pageSize, iova);
    }
    const root = (hi0 & 0xfffff) * TWO32 + ((lo0 & 0xfffff000) >>> 0);
    const had = (lo0 >>> 7) & 3;
    const walkAccess = need | (had === 3 && (access & A_UPDATE_AD) !== 0 ? A_UPDATE_AD : 0);
    const t = walkAmdV1(this.env.allocator, root, mode, iova, walkAccess, this.walkOut);
    return this.finishWalk(t, ctx, iova, out, {
      allowed: (need & ~dteProt) === 0,
      prot: t.prot & dteProt,
      domid,
      asid,
      eventTag: domid,
      flags: rw | tr,
      ppr: (hi0 & (1 << 20)) !== 0,
      table: `the v1 table (Mode ${mode})`,
    });
  }

  /** The GV path: GCR3[PASID] (PASID 0 for untagged GIOV requests), then the v2 table. */
  private translateGuest(
    ctx: DmaContext,
    iova: number,
    out: DmaTranslation,
    dte: Uint32Array,
  ): boolean {
    const lo0 = dte[0] as number;
    const hi0 = dte[1] as number;
    const lo1 = dte[2] as number;
    const hi1 = dte[3] as number;
    const devid = ctx.requester & 0xffff;
    const access = ctx.access;
    const tagged = ctx.pasid >= 0;
    const pasid = tagged ? ctx.pasid : 0;
    const domid = lo1 & 0xffff;
    const ats = ctx.device.ats && (hi1 & 1) !== 0;
    const tr = ats ? EVENT_FLAG_TR : 0;
    const rw = (access & A_WRITE) !== 0 ? EVENT_FLAG_RW : 0;
    // IO_PAGE_FAULT of a tagged request: GN set and the PASID in the tag field.
    const tag = tagged ? pasid : domid;
    const gn = tagged ? EVENT_FLAG_GN : 0;
    if (((lo0 >>> 9) & 7) !== 0) {
      return this.fault(
        out,
        ctx,
        iova,
        EVENT_ILLEGAL_DEV_TABLE_ENTRY,
        domid,
        rw,
        'bad-config',
        'GV with a host Mode (nested v2 over v1) is not modelled',
      );
    }
    const dteProt = (hi0 >>> 29) & 3;
    const need = access & (A_READ | A_WRITE);
    const hit = this.hit;
    if (ats && this.deviceTlb.lookup(devid, pasid, iova, hit) && guestHitOk(hit.prot, access)) {
      return cached(out, hit.pa, hit.pageSize, iova);
    }
    if (this.iotlb.lookup(domid, pasid, iova, hit) && guestHitOk(hit.prot, access)) {
      if (ats) this.deviceTlb.fill(devid, pasid, iova, hit.pa, hit.pageSize, hit.prot);
      return cached(out, hit.pa, hit.pageSize, iova);
    }
    // GCR3 walk: 9 PASID bits a level from GLX down to 0; entry bit 0 valid, 51:12 the address.
    const glx = (hi0 >>> 24) & 3;
    let table =
      ((hi0 >>> 26) & 7) * 4096 +
      ((lo1 >>> 16) & 0xffff) * 2 ** 15 +
      ((hi1 >>> 11) & 0x1fffff) * 2 ** 31;
    if (glx === 3 || pasid >= 2 ** (9 * (glx + 1))) {
      return this.fault(
        out,
        ctx,
        iova,
        EVENT_IO_PAGE_FAULT,
        tag,
        rw | tr | gn,
        'no-context',
        `PASID ${pasid} is beyond the GCR3 table (GLX ${glx})`,
      );
    }
    for (let level = glx; level >= 0; level--) {
      const at = table + (Math.floor(pasid / 2 ** (9 * level)) & 0x1ff) * 8;
      const words = this.env.memory.readFrame(Math.floor(at / 4096));
      const w = (at % 4096) >>> 2;
      const lo = words[w] as number;
      const hi = words[w + 1] as number;
      if ((lo & 1) === 0) {
        // [M] The spec leaves this open; the model logs IO_PAGE_FAULT (GN, PR=0).
        return this.fault(
          out,
          ctx,
          iova,
          EVENT_IO_PAGE_FAULT,
          tag,
          rw | tr | gn,
          'no-context',
          `GCR3 entry for PASID ${pasid} is not valid (level ${level})`,
        );
      }
      table = (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
    }
    const levels = (((dte[5] as number) >>> 22) & 3) === 1 ? 5 : 4;
    const view = this.v2View(table, levels);
    const walkAccess = access & (A_READ | A_WRITE | A_EXEC | A_PRIV | A_UPDATE_AD);
    const t = view.translate(iova, walkAccess, this.walkOut);
    return this.finishWalk(t, ctx, iova, out, {
      allowed: (need & ~dteProt) === 0,
      prot: t.prot & ~((~dteProt & 3) >>> 0),
      domid,
      asid: pasid,
      eventTag: tag,
      flags: rw | tr | gn,
      ppr: (hi0 & (1 << 20)) !== 0,
      table: `the v2 table of PASID ${pasid}`,
    });
  }

  /**
   * The end of a v1 or v2 walk: a translation the DTE allows fills the IOTLB
   * (and the device TLB of an ATS device); anything else becomes the event
   * the hardware logs, or a page request when the DTE enables PPR for a PRI
   * device.
   */
  private finishWalk(
    t: Translation,
    ctx: DmaContext,
    iova: number,
    out: DmaTranslation,
    w: {
      /** The DTE's IR/IW allow the access. */
      readonly allowed: boolean;
      /** Permissions to cache. */
      readonly prot: number;
      readonly domid: number;
      readonly asid: number;
      /** DomainID or PASID field of an event. */
      readonly eventTag: number;
      /** RW, TR (and GN) event flags of the access. */
      readonly flags: number;
      /** The DTE's PPR bit. */
      readonly ppr: boolean;
      /** Which table, for reasons. */
      readonly table: string;
    },
  ): boolean {
    if (t.ok && w.allowed) {
      const devid = ctx.requester & 0xffff;
      this.iotlb.fill(w.domid, w.asid, iova, t.pa, t.pageSize, w.prot);
      if (ctx.device.ats) this.deviceTlb.fill(devid, w.asid, iova, t.pa, t.pageSize, w.prot);
      out.ok = true;
      out.pa = t.pa;
      out.contiguous = t.pageSize - (iova % t.pageSize);
      return true;
    }
    const fault = t.ok ? 'permission' : (t.fault ?? 'not-present');
    if (fault === 'table-fetch') {
      const what = `${w.table} unreadable`;
      return this.fault(
        out,
        ctx,
        t.faultAddress,
        EVENT_PAGE_TAB_HARDWARE_ERROR,
        w.eventTag,
        w.flags,
        fault,
        what,
      );
    }
    const present = fault === 'permission' ? EVENT_FLAG_PR : 0;
    const rz = fault === 'reserved-bits' ? EVENT_FLAG_RZ : 0;
    const reason = `${fault} at level ${t.level} of ${w.table}`;
    // A PRI device whose DTE has PPR set asks for the page instead of failing.
    if (w.ppr && ctx.device.pri && (fault === 'not-present' || fault === 'permission')) {
      return this.pageRequest(out, ctx, iova, w.eventTag, present | w.flags, fault, reason);
    }
    return this.fault(
      out,
      ctx,
      iova,
      EVENT_IO_PAGE_FAULT,
      w.eventTag,
      present | w.flags | rz,
      fault,
      reason,
    );
  }

  completePageRequest(request: PageRequest, code: PageResponseCode): void {
    const status =
      code === 'success'
        ? PPR_STATUS_SUCCESS
        : code === 'invalid'
          ? PPR_STATUS_INVALID
          : PPR_STATUS_FAILURE;
    const opts = { deviceId: request.requester, tag: request.groupId, status };
    this.issue(
      encodeCompletePprRequest(request.pasid >= 0 ? { ...opts, pasid: request.pasid } : opts),
    );
  }

  /**
   * Feed 16-byte commands through the command buffer. An unknown opcode stops
   * the processor: an ILLEGAL_COMMAND event naming the entry's address is
   * logged and the call answers EINVAL (the commands before it were executed;
   * {@link commandsConsumed} says how many).
   */
  submitCommands(commands: Uint8Array): HwResult<number> {
    if (commands.length % AMD_COMMAND_SIZE !== 0) {
      return fail(EINVAL, `commands are ${AMD_COMMAND_SIZE} bytes each`);
    }
    this.commandsConsumed = 0;
    for (let at = 0; at < commands.length; at += AMD_COMMAND_SIZE) {
      const entry = commands.subarray(at, at + AMD_COMMAND_SIZE);
      if (!this.issue(entry)) {
        return fail(
          EINVAL,
          `command ${at / AMD_COMMAND_SIZE} has an illegal opcode; ${this.commandsConsumed} executed`,
        );
      }
      this.commandsConsumed++;
    }
    return { ok: true, value: this.commandsConsumed };
  }

  /** Commands the last {@link submitCommands} executed. */
  commandsConsumed = 0;

  /** The event log entries the driver has not read yet; reading advances the head. */
  readEventLog(): AmdEvent[] {
    return this.drain(this.eventRing).map((b) => decodeAmdEvent(b));
  }

  /** The PPR log entries not read yet; reading advances the head. */
  readPprLog(): AmdPprEntry[] {
    return this.drain(this.pprRing).map((b) => decodeAmdPprEntry(b));
  }

  /** Physical addresses of the command buffer, event log and PPR log rings. */
  get rings(): { commandBuffer: number; eventLog: number; pprLog: number } {
    return {
      commandBuffer: this.commandRing.base,
      eventLog: this.eventRing.base,
      pprLog: this.pprRing.base,
    };
  }

  /** The DTE of `deviceId` as stored in the device table (the four qwords). */
  deviceTableEntry(deviceId: number): bigint[] {
    const q: bigint[] = [];
    for (let i = 0; i < 4; i++) {
      const w = deviceId * 8 + i * 2;
      q.push((BigInt(this.dteWords[w + 1] as number) << 32n) | BigInt(this.dteWords[w] as number));
    }
    return q;
  }

  // ---- AmdDomainOwner ---------------------------------------------------------------

  refreshDomain(domain: AmdDomain): void {
    for (const rid of domain.devices) {
      const state = this.devices.get(rid);
      if (state !== undefined) {
        this.writeDte(state);
        this.issue(encodeInvalidateDevtabEntry(rid));
      }
    }
    this.flushDomainPages(domain, 0, undefined);
  }

  flushDomainPages(domain: AmdDomain, iova: number, size: number | undefined): void {
    const range = size === undefined ? {} : { address: iova, size };
    if (domain.pasidCapable) {
      // domain_flush_pages_v2 / dev_flush_pasid_pages: each device's GCR3
      // DomainID, PASID 0 for the RID and each attached PASID, GN set.
      const targets: [number, number][] = [];
      for (const rid of domain.devices) targets.push([rid, 0]);
      for (const key of domain.pasidAttachments) {
        targets.push([Math.floor(key / PASID_KEY), key % PASID_KEY]);
      }
      for (const [rid, pasid] of targets) {
        const state = this.devices.get(rid);
        if (state?.gcr3 == null) continue;
        this.issue(encodeInvalidateIommuPages({ domainId: state.gcr3.domid, pasid, ...range }));
        if (state.device.ats && this.config.ats) {
          this.issue(encodeInvalidateIotlbPages({ deviceId: rid, pasid, ...range }));
        }
      }
      this.issue(encodeCompletionWait({}));
      return;
    }
    this.issue(encodeInvalidateIommuPages({ domainId: domain.tag, ...range }));
    for (const rid of domain.devices) {
      const state = this.devices.get(rid);
      if (state?.device.ats === true && this.config.ats) {
        this.issue(encodeInvalidateIotlbPages({ deviceId: rid, ...range }));
      }
    }
    this.issue(encodeCompletionWait({}));
  }

  releaseDomain(domain: AmdDomain): void {
    this.iotlb.invalidateTag(domain.tag);
    this.usedIds.delete(domain.tag);
  }

  // ---- internals --------------------------------------------------------------------

  private get hdSupport(): boolean {
    return decodeEfr(this.efr).HDSUP === true;
  }

  /** amd_iommu_pasid_supported: GT, PPR and EPHSUP (no SNP modelled). */
  private get pasidSupported(): boolean {
    const efr = decodeEfr(this.efr);
    return efr.GT === true && efr.PPR === true && efr.EPHSUP === true;
  }

  /** IOMMU_HWPT_ALLOC_PASID: a v2 domain (x86-64, 4 levels, no sign extension use). */
  private allocV2Domain(iopf: boolean): HwResult<IommuDomain> {
    if (!this.pasidSupported) {
      return fail(
        EOPNOTSUPP,
        'PASID domains need EFR GT, PPR and EPHSUP (amd_iommu_pasid_supported)',
      );
    }
    const id = this.allocateId();
    if (id < 0) return fail(ENOMEM, 'no DomainID left');
    let table: X86PageTable;
    try {
      table = new X86PageTable({
        allocator: this.env.allocator,
        levels: 4,
        pageSizes: AMD_V2_PAGE_SIZES,
        outputBits: Math.min(this.config.outputBits, 52),
      });
    } catch {
      this.usedIds.delete(id);
      return fail(ENOMEM, 'no memory for the page table root');
    }
    // The x86-64 table maps the lower 47 bits, which decode the same with
    // and without sign extension (PASID 0 / GIOV vs other PASIDs).
    const geometry: DomainGeometry = {
      apertureStart: 0,
      apertureLast: 2 ** 47 - 1,
      pageSizes: AMD_V2_PAGE_SIZES,
    };
    return {
      ok: true,
      value: new AmdDomain(this, 'paging', id, table, geometry, false, iopf, true),
    };
  }

  /** set_dev_pasid as pasid.c does it: GCR3[pasid] = the domain's v2 root, then flush the PASID. */
  private attachPasid(state: DeviceState, domain: AmdDomain, pasid: number): HwResult<void> {
    const gcr3 = state.gcr3;
    if (domain.type === 'blocked') {
      // remove_dev_pasid: clear the entry and flush the PASID.
      const old = gcr3?.pasids.get(pasid);
      if (gcr3 != null && old !== undefined) {
        old.pasidAttachments.delete(state.device.rid * PASID_KEY + pasid);
        gcr3.pasids.delete(pasid);
        this.writeGcr3(gcr3, pasid, -1);
        this.flushPasid(state, gcr3, pasid);
        this.updatePpr(state);
      }
      return { ok: true, value: undefined };
    }
    if (domain.type !== 'paging') {
      return fail(EOPNOTSUPP, `${domain.type} domains have no set_dev_pasid`);
    }
    if (state.maxPasids === 0) {
      return fail(EINVAL, `${state.device.name} has no usable PASID (IOMMU GT/PPR or device)`);
    }
    if (!domain.pasidCapable) {
      return fail(EINVAL, 'the domain was not allocated for PASID use (no v2 table)');
    }
    if (!Number.isInteger(pasid) || pasid < 1 || pasid >= state.maxPasids) {
      return fail(EINVAL, `PASID ${pasid} is outside [1, ${state.maxPasids})`);
    }
    if (gcr3 === null) {
      return fail(
        EINVAL,
        'no GCR3 table: 6.17 builds it only while the RID is attached to identity or a v2 domain',
      );
    }
    const root = (domain.pageTable as X86PageTable).root;
    if (!this.writeGcr3(gcr3, pasid, root)) return fail(ENOMEM, 'no memory for a GCR3 level');
    const key = state.device.rid * PASID_KEY + pasid;
    gcr3.pasids.get(pasid)?.pasidAttachments.delete(key);
    gcr3.pasids.set(pasid, domain);
    domain.pasidAttachments.add(key);
    this.flushPasid(state, gcr3, pasid);
    this.updatePpr(state);
    return { ok: true, value: undefined };
  }

  /** setup_gcr3_table: a zeroed root page, GLX for the device's PASIDs, a per-device DomainID. */
  private setupGcr3(state: DeviceState): HwResult<void> {
    const glx = gcr3Levels(state.maxPasids > 0 ? state.maxPasids : 1);
    if (glx > (decodeEfr(this.efr).GLX as number)) {
      return fail(EINVAL, `GCR3 table needs GLX ${glx}, beyond EFR.GLX`);
    }
    const domid = this.allocateId();
    if (domid < 0) return fail(ENOSPC, 'no DomainID left for the GCR3 table');
    const base = this.env.allocator.allocate();
    if (base < 0) {
      this.usedIds.delete(domid);
      return fail(ENOMEM, 'no memory for the GCR3 table');
    }
    state.gcr3 = { base, glx, domid, pages: [base], pasids: new Map() };
    return { ok: true, value: undefined };
  }

  /** destroy_gcr3_table: PASIDs are dropped, pages and DomainID given back, its IOTLB entries flushed. */
  private destroyGcr3(state: DeviceState, gcr3: Gcr3Table): void {
    for (const [pasid, domain] of gcr3.pasids) {
      domain.pasidAttachments.delete(state.device.rid * PASID_KEY + pasid);
    }
    gcr3.pasids.clear();
    for (const page of gcr3.pages) this.env.allocator.free(page);
    this.iotlb.invalidateTag(gcr3.domid);
    this.deviceTlb.invalidateTag(state.device.rid);
    this.usedIds.delete(gcr3.domid);
    state.gcr3 = null;
  }

  /** Set GCR3[pasid] to `root` | valid, or clear it when root < 0. False when a level cannot be allocated. */
  private writeGcr3(gcr3: Gcr3Table, pasid: number, root: number): boolean {
    let table = gcr3.base;
    for (let level = gcr3.glx; level > 0; level--) {
      const words = this.env.allocator.blockWords(table);
      const w = (Math.floor(pasid / 2 ** (9 * level)) & 0x1ff) * 2;
      if (((words[w] as number) & 1) === 0) {
        if (root < 0) return true;
        const page = this.env.allocator.allocate();
        if (page < 0) return false;
        gcr3.pages.push(page);
        words[w] = ((page % TWO32) | 1) >>> 0;
        words[w + 1] = Math.floor(page / TWO32);
      }
      table =
        ((words[w + 1] as number) & 0xfffff) * TWO32 + (((words[w] as number) & 0xfffff000) >>> 0);
    }
    const words = this.env.allocator.blockWords(table);
    const w = (pasid & 0x1ff) * 2;
    words[w] = root < 0 ? 0 : ((root % TWO32) | 1) >>> 0;
    words[w + 1] = root < 0 ? 0 : Math.floor(root / TWO32) & 0xfffff;
    return true;
  }

  /** dev_flush_pasid_all: INVALIDATE_IOMMU_PAGES (GCR3 DomainID, PASID, GN), the device TLB, a wait. */
  private flushPasid(state: DeviceState, gcr3: Gcr3Table, pasid: number): void {
    this.issue(encodeInvalidateIommuPages({ domainId: gcr3.domid, pasid }));
    if (state.device.ats && this.config.ats) {
      this.issue(encodeInvalidateIotlbPages({ deviceId: state.device.rid, pasid }));
    }
    this.issue(encodeCompletionWait({}));
  }

  /** Rewrite the DTE when its PPR bit changes with the PASIDs' domains. */
  private updatePpr(state: DeviceState): void {
    const before = this.deviceTableEntry(state.device.rid)[0];
    this.writeDte(state);
    if (this.deviceTableEntry(state.device.rid)[0] !== before) {
      this.issue(encodeInvalidateDevtabEntry(state.device.rid));
    }
  }

  /** The DomainID the device's DTE carries: the GCR3 table's when it has one. */
  private dteDomainId(state: DeviceState): number {
    if (state.domain.type === 'blocked') return 0;
    return state.gcr3 === null ? state.domain.tag : state.gcr3.domid;
  }

  /** A walk-only view of the v2 table at `root`. */
  private v2View(root: number, levels: 4 | 5): X86PageTable {
    const key = root + levels;
    let view = this.v2Views.get(key);
    if (view === undefined) {
      if (this.v2Views.size >= 4096) this.v2Views.clear();
      view = new X86PageTable({ memory: this.env.allocator, root, levels });
      this.v2Views.set(key, view);
    }
    return view;
  }

  private allocateId(): number {
    for (let n = 0; n < 0xffff; n++) {
      const id = this.nextId;
      this.nextId = this.nextId >= 0xffff ? 1 : this.nextId + 1;
      if (!this.usedIds.has(id)) {
        this.usedIds.add(id);
        return id;
      }
    }
    return -1;
  }

  private newRing(): Ring {
    const base = this.env.allocator.allocate(AMD_RING_ENTRIES * 16);
    if (base < 0) throw new RangeError('no memory for the AMD rings');
    return { base, head: 0, tail: 0, overflow: false };
  }

  /** set_dte_entry / make_clear_dte for the device's current domain. */
  private writeDte(state: DeviceState): void {
    const { device, domain } = state;
    const ats = device.ats && this.config.ats;
    let qwords: bigint[];
    if (domain.type === 'blocked') {
      qwords = encodeDte({ valid: true });
    } else {
      const host = domain.pasidCapable ? null : domain.pageTable;
      const gcr3 = state.gcr3;
      let iopf = domain.iopfCapable;
      for (const d of gcr3?.pasids.values() ?? []) iopf ||= d.iopfCapable;
      qwords = encodeDte({
        valid: true,
        translationValid: true,
        mode: host === null ? 0 : host.levels,
        hostRoot: host === null ? 0 : host.root,
        had: domain.dirtyTracking ? 3 : 0,
        // set_dte_gcr3_table: GV, GLX, the root; GIOV for a v2 RID domain; 4-level guest tables.
        gv: gcr3 !== null,
        glx: gcr3 === null ? 0 : gcr3.glx,
        gcr3: gcr3 === null ? 0 : gcr3.base,
        giov: gcr3 !== null && domain.pasidCapable,
        guestPagingMode: 0,
        ppr: device.pri && this.config.pri && iopf,
        ir: true,
        iw: true,
        domainId: gcr3 === null ? domain.tag : gcr3.domid,
        iotlb: ats,
      });
    }
    storeDte(this.dteWords, device.rid * 8, qwords);
  }

  /** The DTE the hardware uses: cached after the first read, until invalidated. */
  private loadDte(devid: number): Uint32Array {
    let dte = this.dteCache.get(devid);
    if (dte === undefined) {
      dte = this.dteWords.slice(devid * 8, devid * 8 + 8);
      this.dteCache.set(devid, dte);
    }
    return dte;
  }

  /** Put a command in the ring and execute it; false (and an event) for an illegal one. */
  private issue(entry: Uint8Array): boolean {
    const ring = this.commandRing;
    const at = ring.base + ring.tail * 16;
    this.env.memory.write(at, entry);
    ring.tail = (ring.tail + 1) % AMD_RING_ENTRIES;
    const cmd = decodeAmdCommand(entry);
    if (cmd.op === 'ILLEGAL') {
      this.logEvent({ code: EVENT_ILLEGAL_COMMAND, deviceId: 0, tag: 0, flags: 0, address: at });
      const fault = this.record(
        EVENT_ILLEGAL_COMMAND,
        'bad-config',
        0,
        -1,
        at,
        0,
        entry,
        `illegal command opcode ${cmd.opcode}`,
      );
      this.faultLog.push(fault);
      this.onFault?.(fault);
      ring.head = ring.tail;
      return false;
    }
    this.execute(cmd);
    ring.head = ring.tail;
    this.commandLog.push(cmd);
    if (this.commandLog.length > 4096) this.commandLog.splice(0, this.commandLog.length - 4096);
    return true;
  }

  private execute(cmd: AmdCommand): void {
    switch (cmd.op) {
      case 'COMPLETION_WAIT':
        if (cmd.store) this.env.memory.writeU64(cmd.address, cmd.data);
        if (cmd.interrupt) this.completionWaitInterrupts++;
        return;
      case 'INVALIDATE_DEVTAB_ENTRY':
        this.dteCache.delete(cmd.deviceId);
        return;
      case 'INVALIDATE_IOMMU_PAGES': {
        const asid = cmd.pasid ?? NO_ASID;
        if (cmd.range === 'all') this.iotlb.invalidateAsid(cmd.domainId, asid);
        else this.iotlb.invalidateRange(cmd.domainId, asid, cmd.range.start, cmd.range.size);
        return;
      }
      case 'INVALIDATE_IOTLB_PAGES': {
        const asid = cmd.pasid ?? NO_ASID;
        if (cmd.range === 'all') this.deviceTlb.invalidateAsid(cmd.deviceId, asid);
        else this.deviceTlb.invalidateRange(cmd.deviceId, asid, cmd.range.start, cmd.range.size);
        return;
      }
      case 'INVALIDATE_INTERRUPT_TABLE':
      case 'COMPLETE_PPR_REQUEST':
        return; // no interrupt remapping modelled; a PPR completion is only logged
      case 'INVALIDATE_IOMMU_ALL':
        this.iotlb.invalidateAll();
        this.dteCache.clear();
        return;
      case 'ILLEGAL':
        return;
    }
  }

  private writeEntry(ring: Ring, bytes: Uint8Array): boolean {
    const next = (ring.tail + 1) % AMD_RING_ENTRIES;
    if (next === ring.head) {
      ring.overflow = true;
      return false;
    }
    this.env.memory.write(ring.base + ring.tail * 16, bytes);
    ring.tail = next;
    return true;
  }

  private drain(ring: Ring): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (ring.head !== ring.tail) {
      out.push(this.env.memory.read(ring.base + ring.head * 16, 16));
      ring.head = (ring.head + 1) % AMD_RING_ENTRIES;
    }
    return out;
  }

  private logEvent(e: AmdEvent): Uint8Array {
    const bytes = encodeAmdEvent(e);
    this.writeEntry(this.eventRing, bytes);
    return bytes;
  }

  private record(
    code: number,
    kind: HwFault['kind'],
    requester: number,
    pasid: number,
    iova: number,
    access: number,
    record: Uint8Array,
    reason: string,
  ): HwFault {
    return {
      model: 'amd',
      name: AMD_EVENT_NAMES[code] ?? `event ${code}`,
      code,
      kind,
      stage: kind === 'blocked' || kind === 'bad-config' || kind === 'no-context' ? 0 : 1,
      requester,
      pasid,
      iova,
      access,
      record,
      reason,
    };
  }

  private fault(
    out: DmaTranslation,
    ctx: DmaContext,
    address: number,
    code: number,
    domid: number,
    flags: number,
    kind: HwFault['kind'],
    reason: string,
  ): false {
    const access = ctx.access;
    const extra =
      ((access & A_EXEC) !== 0 ? EVENT_FLAG_NX : 0) | ((access & A_PRIV) === 0 ? EVENT_FLAG_US : 0);
    const devid = ctx.requester & 0xffff;
    const bytes = this.logEvent({
      code,
      deviceId: devid,
      tag: domid,
      flags: flags | extra,
      address,
    });
    const fault = this.record(code, kind, devid, ctx.pasid, address, access, bytes, reason);
    this.faultLog.push(fault);
    out.fault = fault;
    this.onFault?.(fault);
    return false;
  }

  /** A recoverable fault of a PRI device: a PPR log entry and a page request, no event. */
  private pageRequest(
    out: DmaTranslation,
    ctx: DmaContext,
    iova: number,
    eventTag: number,
    flags: number,
    kind: HwFault['kind'],
    reason: string,
  ): false {
    const devid = ctx.requester & 0xffff;
    const state = this.devices.get(devid);
    const tag = state === undefined ? 0 : state.nextTag;
    if (state !== undefined) state.nextTag = (state.nextTag + 1) & 0x1ff;
    const access = ctx.access;
    const pprFlags =
      ((access & A_READ) !== 0 ? PPR_FLAG_READ : 0) |
      ((access & A_WRITE) !== 0 ? PPR_FLAG_WRITE : 0) |
      ((access & A_EXEC) !== 0 ? PPR_FLAG_EXEC : 0) |
      ((access & A_PRIV) === 0 ? PPR_FLAG_US : 0) |
      (ctx.pasid >= 0 ? PPR_FLAG_GN : 0);
    const address = iova - (iova % 4096);
    const record = encodeAmdPprEntry({
      deviceId: devid,
      pasid: ctx.pasid >= 0 ? ctx.pasid : 0,
      tag,
      flags: pprFlags,
      type: PPR_REQ_FAULT,
      address,
    });
    this.writeEntry(this.pprRing, record);
    const request: PageRequest = {
      device: ctx.device,
      requester: devid,
      pasid: ctx.pasid,
      groupId: tag,
      lastPage: true,
      perm: access & (A_READ | A_WRITE | A_EXEC | A_PRIV),
      address,
      source: 'pri',
      record,
    };
    const event = encodeAmdEvent({
      code: EVENT_IO_PAGE_FAULT,
      deviceId: devid,
      tag: eventTag,
      flags,
      address: iova,
    });
    out.fault = this.record(
      EVENT_IO_PAGE_FAULT,
      kind,
      devid,
      ctx.pasid,
      iova,
      access,
      event,
      reason,
    );
    out.pageRequest = request;
    this.onPageRequest?.(request);
    return false;
  }
}

function fail(errno: number, reason: string): { ok: false; errno: number; reason: string } {
  return { ok: false, errno, reason };
}

/** A cached v2 translation serves the access when its prot allows it (write, user, exec). */
function guestHitOk(prot: number, access: number): boolean {
  if ((access & A_WRITE) !== 0 && (prot & 2) === 0) return false;
  if ((access & A_PRIV) === 0 && (prot & IOMMU_PRIV) !== 0) return false;
  if ((access & A_EXEC) !== 0 && (prot & IOMMU_NOEXEC) !== 0) return false;
  return true;
}

function passThrough(out: DmaTranslation, iova: number): true {
  out.ok = true;
  out.pa = iova;
  out.contiguous = 4096 - (iova % 4096);
  return true;
}

function cached(out: DmaTranslation, pa: number, pageSize: number, iova: number): true {
  out.ok = true;
  out.fromCache = true;
  out.pa = pa;
  out.contiguous = pageSize - (iova % pageSize);
  return true;
}
