/**
 * Commands the driver builds: CMD_SYNC, ATC invalidations sized as
 * arm_smmu_atc_inv_to_cmd does, and range TLBIs as __arm_smmu_tlb_inv_range
 * splits them; plus the range a TLBI command covers when the SMMU executes it.
 */
import type { BitFieldInput } from './bits.js';
import { encodeSmmuCommand, SMMU_ATC_INV_SIZE_ALL, type SmmuCommandName } from './commands.js';

/** The CMD_SYNC the driver issues (SEV completion, inner shareable, write-back MSI attributes). */
export function syncCommand(): [bigint, bigint] {
  return encodeSmmuCommand('CMD_SYNC', { CS: 2, MSH: 3, MSIAttr: 0xf });
}

/** arm_smmu_atc_inv_to_cmd: the smallest aligned power-of-two span of 4K pages covering the range (size 0 = everything). */
export function atcInv(sid: number, ssid: number, iova: number, size: number): [bigint, bigint] {
  const ssv = ssid >= 0;
  const base = { SID: sid, SSV: ssv, SSID: ssv ? ssid : 0 };
  if (size === 0) return encodeSmmuCommand('ATC_INV', { ...base, Size: SMMU_ATC_INV_SIZE_ALL });
  const first = Math.floor(iova / 4096);
  const last = Math.floor((iova + size - 1) / 4096);
  let span = 0;
  while (Math.floor(first / 2 ** span) !== Math.floor(last / 2 ** span)) span++;
  const start = first - (first % 2 ** span);
  return encodeSmmuCommand('ATC_INV', { ...base, Size: span, Address: start * 4096 });
}

/** The [start, length] a TLBI-by-address command covers (TG 0: the one page at Address). */
export function tlbiRange(f: Readonly<Record<string, number>>): [number, number] {
  const tg = f.TG as number;
  const address = f.Address as number;
  if (tg === 0) return [address, 1];
  const granule = 2 ** (10 + 2 * tg);
  return [address, ((f.NUM as number) + 1) * 2 ** (f.SCALE as number) * granule];
}

/** Index of the lowest set bit of a positive integer below 2^53. */
export function lowestSetBit(n: number): number {
  let bit = 0;
  while (n % 2 === 0) {
    n /= 2;
    bit++;
  }
  return bit;
}

/**
 * __arm_smmu_tlb_inv_range: with range invalidation each command covers
 * (NUM+1) * 2^SCALE granules of size TG; without, one command per granule,
 * or `whole` (the context's TLBI) when that would take more than 128 commands.
 */
export function rangeTlbiCommands(
  name: SmmuCommandName,
  base: BitFieldInput,
  iova: number,
  size: number,
  granule: number,
  rangeInvalidation: boolean,
  whole: () => [bigint, bigint],
): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  const tg = Math.log2(granule);
  let pages = Math.ceil(size / granule);
  let addr = iova - (iova % granule);
  if (!rangeInvalidation) {
    if (pages > 128) return [whole()];
    for (let i = 0; i < pages; i++)
      out.push(encodeSmmuCommand(name, { ...base, Address: addr + i * granule }));
    return out;
  }
  while (pages > 0) {
    const scale = lowestSetBit(pages);
    const num = Math.floor(pages / 2 ** scale) % 32;
    out.push(
      encodeSmmuCommand(name, {
        ...base,
        TG: (tg - 10) / 2,
        SCALE: scale,
        NUM: num - 1,
        Address: addr,
      }),
    );
    pages -= num * 2 ** scale;
    addr += num * 2 ** (scale + tg);
  }
  return out;
}
