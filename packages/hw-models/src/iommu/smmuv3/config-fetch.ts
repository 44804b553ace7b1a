/**
 * The SMMU's configuration fetch: find and check a stream's STE and a
 * substream's CD in memory (through stage 2 for a nested CD table), raising
 * C_BAD_STREAMID, F_STE_FETCH, C_BAD_STE, C_BAD_SUBSTREAMID, F_CD_FETCH,
 * C_BAD_CD or a stage-2 fault with CLASS CD, and build the walkers the
 * translation uses from the fields it found.
 */
import type { FrameAllocator } from '../../memory/frame-allocator.js';
import type { PhysicalMemory } from '../../memory/physical-memory.js';
import { armPsDecode, armS2Sl0Decode, armTgDecode } from '../../pagetable/arm-lpae-geometry.js';
import { ArmLpaePageTable } from '../../pagetable/arm-lpae-table.js';
import { ACCESS_READ, type Translation, type TranslationFault } from '../../pagetable/format.js';
import { Stage2TableMemory } from '../../pagetable/nested.js';
import type { HwFault } from '../iommu.js';
import { type BitFieldInput, readSmmuWords } from './bits.js';
import { SMMU_CD, SMMU_CD_BYTES, SMMU_CD_L1_DESC, SMMU_CD_WORDS } from './cd.js';
import { SMMU_EVENT_CLASS, type SmmuEventName } from './events.js';
import type { SmmuFeatures } from './registers.js';
import { SMMU_STE, SMMU_STE_CONFIG, SMMU_STE_WORDS } from './ste.js';
import type { StreamTable } from './stream-table.js';

/** What the fetch needs from the SMMU. */
export interface FetchContext {
  /** Host memory (STEs, CDs and tables). */
  readonly memory: PhysicalMemory;
  /** The table-page allocator (the fastest way to read table frames). */
  readonly allocator: FrameAllocator;
  /** The stream table. */
  readonly streamTable: StreamTable;
  /** What the SMMU implements. */
  readonly features: SmmuFeatures;
  /** Output size the SMMU caps walks at. */
  readonly oasBits: number;
  /** A scratch translation for stage-2 lookups of CD addresses. */
  readonly scratch: Translation;
}

/** An STE the SMMU has fetched, checked and cached (with walkers for its stage-2 table). */
export interface CachedSte {
  readonly words: readonly bigint[];
  readonly config: number;
  readonly s1: boolean;
  readonly s2: boolean;
  readonly vmid: number;
  readonly s1fmt: number;
  readonly s1ctxptr: number;
  readonly s1cdmax: number;
  readonly s1dss: number;
  readonly s1stalld: boolean;
  readonly eats: number;
  readonly s2stall: boolean;
  readonly s2table: ArmLpaePageTable | null;
  readonly s2Memory: Stage2TableMemory | null;
}

/** A CD the SMMU has fetched, checked and cached (with a walker for its stage-1 table). */
export interface CachedCd {
  readonly words: readonly bigint[];
  readonly asid: number;
  readonly table: ArmLpaePageTable;
  readonly stall: boolean;
  readonly epd0: boolean;
  readonly inputLimit: number;
}

/** Why the SMMU could not translate: the event it records, its fields and a reason. */
export type SmmuFailure = {
  ok: false;
  event: SmmuEventName;
  values: BitFieldInput;
  reason: string;
  stage: number;
  kind: HwFault['kind'];
};

// Read and check the STE of `sid` (C_BAD_STREAMID, F_STE_FETCH, C_BAD_STE).
export function fetchSte(
  c: FetchContext,
  sid: number,
): { ok: true; value: CachedSte } | SmmuFailure {
  const loc = c.streamTable.locateSte(sid);
  if (!loc.ok) {
    return loc.event === 'F_STE_FETCH'
      ? {
          ok: false,
          event: 'F_STE_FETCH',
          values: { FetchAddr: loc.address - (loc.address % 8) },
          reason: loc.reason,
          stage: 0,
          kind: 'table-fetch',
        }
      : {
          ok: false,
          event: 'C_BAD_STREAMID',
          values: {},
          reason: loc.reason,
          stage: 0,
          kind: 'no-context',
        };
  }
  const words = readSmmuWords(c.memory, loc.address, SMMU_STE_WORDS);
  const f = SMMU_STE.decode(words);
  const bad = (why: string): SmmuFailure =>
    configFailure('C_BAD_STE', `STE of stream ${sid}: ${why}`);
  if (f.V !== 1) return bad('V is 0');
  const config = f.Config as number;
  if (config < 4) {
    if (config !== 0) return bad(`Config ${config} is reserved`);
    return { ok: true, value: plainSte(words, config) };
  }
  if (config === SMMU_STE_CONFIG.BYPASS) return { ok: true, value: plainSte(words, config) };
  const s1 = (config & 1) !== 0;
  const s2 = (config & 2) !== 0;
  if (s2 && !c.features.stage2) return bad('stage 2 is not implemented');
  let s2table: ArmLpaePageTable | null = null;
  let s2Memory: Stage2TableMemory | null = null;
  if (s2) {
    if (f.S2AA64 !== 1) return bad('S2AA64 is 0 (AArch32 tables are not supported)');
    const granule = armTgDecode(f.S2TG as number);
    if (granule === undefined) return bad('S2TG is reserved');
    const startLevel = armS2Sl0Decode(granule, f.S2SL0 as number);
    if (startLevel === undefined) return bad('S2SL0 is reserved');
    try {
      s2table = new ArmLpaePageTable({
        stage: 2,
        memory: c.allocator,
        root: f.S2TTB as number,
        granule,
        inputBits: 64 - (f.S2T0SZ as number),
        outputBits: Math.min(armPsDecode(f.S2PS as number), c.oasBits),
        startLevel,
        hardwareDirty: f.S2HD === 1 && c.features.httu === 2,
        hardwareAccessFlag: f.S2HA === 1 && c.features.httu >= 1,
      });
    } catch (e) {
      return bad(`stage-2 geometry is inconsistent (${(e as Error).message})`);
    }
    if (s1) s2Memory = new Stage2TableMemory(s2table, c.allocator);
  }
  if (s1) {
    if ((f.S1Fmt as number) === 3) return bad('S1Fmt is reserved');
    if ((f.S1CDMax as number) > c.features.ssidBits)
      return bad(`S1CDMax ${f.S1CDMax} exceeds SSIDSIZE`);
  }
  return {
    ok: true,
    value: {
      words,
      config,
      s1,
      s2,
      vmid: s2 ? (f.S2VMID as number) : 0,
      s1fmt: f.S1Fmt as number,
      s1ctxptr: f.S1ContextPtr as number,
      s1cdmax: f.S1CDMax as number,
      s1dss: f.S1DSS as number,
      s1stalld: f.S1STALLD === 1,
      eats: f.EATS as number,
      s2stall: f.S2S === 1,
      s2table,
      s2Memory,
    },
  };
}

// Read a CD (through stage 2 when nested) and check it (F_CD_FETCH, C_BAD_CD, stage-2 CD faults).
export function fetchCd(
  c: FetchContext,
  ste: CachedSte,
  ssid: number,
  iova: number,
): { ok: true; value: CachedCd } | SmmuFailure {
  const readGuest = (ipa: number, count: number): bigint[] | SmmuFailure => {
    let pa = ipa;
    if (ste.s2table !== null) {
      const t = ste.s2table.translate(ipa, ACCESS_READ, c.scratch);
      if (!t.ok) {
        return walkFailure(
          eventFor(t.fault),
          2,
          { CLASS: SMMU_EVENT_CLASS.CD, IPA: pageOf(ipa), InputAddr: iova },
          t.fault ?? 'not-present',
          `stage 2 does not translate the CD at IPA 0x${ipa.toString(16)}`,
        );
      }
      pa = t.pa;
    }
    if (pa + count * 8 > 2 ** c.memory.addressBits) {
      return {
        ok: false,
        event: 'F_CD_FETCH',
        values: { FetchAddr: pa - (pa % 8) },
        reason: `CD address 0x${pa.toString(16)} is outside memory`,
        stage: 0,
        kind: 'table-fetch',
      };
    }
    return readSmmuWords(c.memory, pa, count);
  };
  let cdAddress: number;
  if (ste.s1fmt === 0) {
    cdAddress = ste.s1ctxptr + ssid * SMMU_CD_BYTES;
  } else {
    const leafEntries = ste.s1fmt === 1 ? 64 : 1024;
    const l1 = readGuest(ste.s1ctxptr + Math.floor(ssid / leafEntries) * 8, 1);
    if (!Array.isArray(l1)) return l1;
    const desc = SMMU_CD_L1_DESC.decode(l1);
    if (desc.V !== 1)
      return configFailure(
        'C_BAD_SUBSTREAMID',
        `the L1 CD descriptor for SubstreamID ${ssid} is not valid`,
      );
    cdAddress = (desc.L2Ptr as number) + (ssid % leafEntries) * SMMU_CD_BYTES;
  }
  const words = readGuest(cdAddress, SMMU_CD_WORDS);
  if (!Array.isArray(words)) return words;
  const f = SMMU_CD.decode(words);
  const bad = (why: string): SmmuFailure => configFailure('C_BAD_CD', `CD ${ssid}: ${why}`);
  if (f.V !== 1) return bad('V is 0');
  if (f.AA64 !== 1) return bad('AA64 is 0 (AArch32 tables are not supported)');
  const granule = armTgDecode(f.TG0 as number);
  if (granule === undefined) return bad('TG0 is reserved');
  const inputBits = 64 - (f.T0SZ as number);
  let table: ArmLpaePageTable;
  try {
    table = new ArmLpaePageTable({
      stage: 1,
      memory: ste.s2Memory ?? c.allocator,
      root: f.TTB0 as number,
      granule,
      inputBits,
      outputBits: Math.min(armPsDecode(f.IPS as number), c.oasBits),
      hardwareDirty: f.HD === 1 && c.features.httu === 2,
      hardwareAccessFlag: f.HA === 1 && c.features.httu >= 1,
    });
  } catch (e) {
    return bad(`T0SZ ${f.T0SZ} is invalid for the granule (${(e as Error).message})`);
  }
  return {
    ok: true,
    value: {
      words,
      asid: f.ASID as number,
      table,
      stall: f.S === 1,
      epd0: f.EPD0 === 1,
      inputLimit: 2 ** inputBits,
    },
  };
}

/** The 4K page base of an address. */
export function pageOf(addr: number): number {
  return addr - (addr % 4096);
}

/** A cached abort or bypass STE. */
export function plainSte(words: readonly bigint[], config: number): CachedSte {
  return {
    words,
    config,
    s1: false,
    s2: false,
    vmid: 0,
    s1fmt: 0,
    s1ctxptr: 0,
    s1cdmax: 0,
    s1dss: 0,
    s1stalld: false,
    eats: 0,
    s2stall: false,
    s2table: null,
    s2Memory: null,
  };
}

/** A configuration error (C_BAD_*): no stage, kind bad-config. */
export function configFailure(event: SmmuEventName, reason: string): SmmuFailure {
  return { ok: false, event, values: {}, reason, stage: 0, kind: 'bad-config' };
}

/** A translation fault at `stage`. */
export function walkFailure(
  event: SmmuEventName,
  stage: number,
  values: BitFieldInput,
  kind: TranslationFault,
  reason: string,
): SmmuFailure {
  return { ok: false, event, values, reason, stage, kind };
}

/** The event a page-table fault kind raises. */
export function eventFor(fault: TranslationFault | null): SmmuEventName {
  switch (fault) {
    case 'access-flag':
      return 'F_ACCESS';
    case 'permission':
      return 'F_PERMISSION';
    case 'address-size':
      return 'F_ADDR_SIZE';
    default:
      return 'F_TRANSLATION';
  }
}
