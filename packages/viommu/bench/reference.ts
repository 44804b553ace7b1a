/**
 * The plain references the viommu bench measures beside the package, each
 * written the obvious way:
 *
 * - guest commands: decode each 16-byte entry into an object of named
 *   fields (hw-models' SMMUv3 command layouts), change the VMID or SID
 *   field, encode a new entry from the object;
 * - events: read the four words of each record as BigInts, test the
 *   routing bits with BigInt arithmetic and write a fresh record with the
 *   StreamID replaced.
 *
 * Both give byte-for-byte the answers of the package (the bench checks).
 */
import { decodeSmmuCommand, encodeSmmuCommand, smmuWordsToBytes } from '@iommufd-sim/hw-models';

/** Convert `count` guest commands of `input` into `out`, object per command; the number refused. */
export function referenceConvert(
  input: Uint8Array,
  out: Uint8Array,
  count: number,
  vmid: number,
  physicalSid: ReadonlyMap<number, number>,
): number {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  let refused = 0;
  for (let i = 0; i < count; i++) {
    const at = i * 16;
    const cmd = decodeSmmuCommand([view.getBigUint64(at, true), view.getBigUint64(at + 8, true)]);
    let words: bigint[];
    switch (cmd.name) {
      case 'TLBI_NSNH_ALL':
        words = encodeSmmuCommand('TLBI_NH_ALL', { VMID: vmid });
        break;
      case 'TLBI_NH_VA':
      case 'TLBI_NH_VAA':
      case 'TLBI_NH_ALL':
      case 'TLBI_NH_ASID':
        words = encodeSmmuCommand(cmd.name, { ...cmd.fields, VMID: vmid });
        break;
      case 'ATC_INV':
      case 'CFGI_CD':
      case 'CFGI_CD_ALL': {
        const sid = physicalSid.get(cmd.fields.SID as number);
        if (sid === undefined) {
          refused++;
          continue;
        }
        words = encodeSmmuCommand(cmd.name, { ...cmd.fields, SID: sid });
        break;
      }
      default:
        refused++;
        continue;
    }
    out.set(smmuWordsToBytes(words), at);
  }
  return refused;
}

const FORWARDED = new Set([0x04n, 0x06n, 0x08n, 0x0an, 0x10n, 0x11n, 0x12n, 0x13n]);

/**
 * Forward the `count` 32-byte records of `records` whose stream has a vSID
 * in `vsidOf`, BigInt by BigInt; calls `sink` with each guest record.
 */
export function referenceForward(
  records: Uint8Array,
  count: number,
  vsidOf: ReadonlyMap<number, number>,
  sink: (record: Uint8Array) => void,
): void {
  for (let i = 0; i < count; i++) {
    const record = records.subarray(i * 32, i * 32 + 32);
    const v = new DataView(record.buffer, record.byteOffset, 32);
    const w0 = v.getBigUint64(0, true);
    const w1 = v.getBigUint64(8, true);
    const vsid = vsidOf.get(Number(w0 >> 32n));
    if (vsid === undefined) continue;
    if (!FORWARDED.has(w0 & 0xffn)) continue;
    if (((w1 >> 31n) & 1n) === 1n || ((w1 >> 39n) & 1n) === 1n) continue;
    const out = new Uint8Array(32);
    const o = new DataView(out.buffer);
    o.setBigUint64(0, (w0 & 0xffff_ffffn) | (BigInt(vsid) << 32n), true);
    o.setBigUint64(8, w1, true);
    o.setBigUint64(16, v.getBigUint64(16, true), true);
    o.setBigUint64(24, v.getBigUint64(24, true), true);
    sink(out);
  }
}
