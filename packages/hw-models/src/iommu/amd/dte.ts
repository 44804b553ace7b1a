/**
 * The AMD-Vi Device Table Entry: 256 bits (four little-endian qwords) per
 * 16-bit DeviceID, in a device table in memory the IOMMU reads (and caches)
 * on a device's first request.
 */

/** Bytes per DTE. */
export const DTE_SIZE = 32;
/** DTEs in a full device table (one per 16-bit DeviceID). */
export const DTE_COUNT = 65536;

/** The fields of a DTE this model reads or writes. */
export interface AmdDte {
  /** V: the entry is valid (V=0: the IOMMU passes the device's DMA untranslated). */
  readonly valid: boolean;
  /** TV: the translation fields are valid (V=1, TV=0 blocks DMA). */
  readonly translationValid: boolean;
  /** HAD (bits 8:7): host access/dirty update (Linux writes 3 for dirty tracking). */
  readonly had: number;
  /** Mode (bits 11:9): host table levels; 0 = no translation. */
  readonly mode: number;
  /** Host page-table root (bits 51:12). */
  readonly hostRoot: number;
  /** PPR (bit 52): page requests from the device are logged. */
  readonly ppr: boolean;
  /** GIOV (bit 54). */
  readonly giov: boolean;
  /** GV (bit 55): guest (GCR3) translation valid. */
  readonly gv: boolean;
  /** GLX (bits 57:56): GCR3 table levels. */
  readonly glx: number;
  /** GCR3 table root (bits 60:58, 95:80, 127:107 hold its bits 14:12, 30:15, 51:31). */
  readonly gcr3: number;
  /** IR (bit 61): reads allowed. */
  readonly ir: boolean;
  /** IW (bit 62): writes allowed. */
  readonly iw: boolean;
  /** DomainID (bits 79:64): the tag of the IOMMU's cached translations. */
  readonly domainId: number;
  /** I (bit 96): the device has an IOTLB (ATS). */
  readonly iotlb: boolean;
  /** IV (bit 128): interrupt remapping valid. */
  readonly intValid: boolean;
  /** Guest paging mode (bits 183:182): 0 = 4-level, 1 = 5-level. */
  readonly guestPagingMode: number;
}

const NONE: AmdDte = {
  valid: false,
  translationValid: false,
  had: 0,
  mode: 0,
  hostRoot: 0,
  ppr: false,
  giov: false,
  gv: false,
  glx: 0,
  gcr3: 0,
  ir: false,
  iw: false,
  domainId: 0,
  iotlb: false,
  intValid: false,
  guestPagingMode: 0,
};

const b = (v: boolean, bit: bigint): bigint => (v ? 1n << bit : 0n);

/** The four qwords of a DTE with `fields` (missing fields 0). */
export function encodeDte(fields: Partial<AmdDte>): [bigint, bigint, bigint, bigint] {
  const f = { ...NONE, ...fields };
  const gcr3 = BigInt(f.gcr3);
  const q0 =
    b(f.valid, 0n) |
    b(f.translationValid, 1n) |
    (BigInt(f.had & 3) << 7n) |
    (BigInt(f.mode & 7) << 9n) |
    (BigInt(f.hostRoot) & 0x000f_ffff_ffff_f000n) |
    b(f.ppr, 52n) |
    b(f.giov, 54n) |
    b(f.gv, 55n) |
    (BigInt(f.glx & 3) << 56n) |
    (((gcr3 >> 12n) & 0x7n) << 58n) |
    b(f.ir, 61n) |
    b(f.iw, 62n);
  const q1 =
    BigInt(f.domainId & 0xffff) |
    (((gcr3 >> 15n) & 0xffffn) << 16n) |
    b(f.iotlb, 32n) |
    (((gcr3 >> 31n) & 0x1f_ffffn) << 43n);
  const q2 = b(f.intValid, 0n) | (BigInt(f.guestPagingMode & 3) << 54n);
  return [q0, q1, q2, 0n];
}

/** The fields of the DTE made of `qwords`. */
export function decodeDte(qwords: readonly bigint[]): AmdDte {
  const [q0 = 0n, q1 = 0n, q2 = 0n] = qwords;
  const bit = (q: bigint, n: bigint): boolean => ((q >> n) & 1n) === 1n;
  const gcr3 =
    (((q0 >> 58n) & 0x7n) << 12n) |
    (((q1 >> 16n) & 0xffffn) << 15n) |
    (((q1 >> 43n) & 0x1f_ffffn) << 31n);
  return {
    valid: bit(q0, 0n),
    translationValid: bit(q0, 1n),
    had: Number((q0 >> 7n) & 3n),
    mode: Number((q0 >> 9n) & 7n),
    hostRoot: Number(q0 & 0x000f_ffff_ffff_f000n),
    ppr: bit(q0, 52n),
    giov: bit(q0, 54n),
    gv: bit(q0, 55n),
    glx: Number((q0 >> 56n) & 3n),
    gcr3: Number(gcr3),
    ir: bit(q0, 61n),
    iw: bit(q0, 62n),
    domainId: Number(q1 & 0xffffn),
    iotlb: bit(q1, 32n),
    intValid: bit(q2, 0n),
    guestPagingMode: Number((q2 >> 54n) & 3n),
  };
}

/** Write the qwords of a DTE as 8 little-endian words at `words[at..at+8)`. */
export function storeDte(words: Uint32Array, at: number, qwords: readonly bigint[]): void {
  for (let i = 0; i < 4; i++) {
    const q = qwords[i] ?? 0n;
    words[at + 2 * i] = Number(q & 0xffffffffn);
    words[at + 2 * i + 1] = Number((q >> 32n) & 0xffffffffn);
  }
}

/** The qwords of the DTE stored as 8 words at `words[at..at+8)`. */
export function loadDte(words: Uint32Array, at: number): [bigint, bigint, bigint, bigint] {
  const q = (i: number): bigint =>
    (BigInt(words[at + 2 * i + 1] as number) << 32n) | BigInt(words[at + 2 * i] as number);
  return [q(0), q(1), q(2), q(3)];
}
