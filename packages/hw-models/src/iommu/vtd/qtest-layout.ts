/**
 * The QEMU intel-iommu qtest layout (libqos qos-intel-iommu): fixed addresses
 * for the root table, context table, PASID structures and a four-level table
 * chain mapping IOVA 0x10200567 to 0x10100567, for requester 00:00.0. Load
 * RTADDR with the returned value and translate through it.
 */
import type { PhysicalMemory } from '../../memory/physical-memory.js';
import {
  contextEntryLayout,
  PGTT,
  pasidDirEntryLayout,
  pasidEntryLayout,
  rootEntryLayout,
  smContextEntryLayout,
  smRootEntryLayout,
} from './context.js';
import { VTD_RTADDR_SMT } from './registers.js';

/** The qtest's addresses and values. */
export const QEMU_QTEST = {
  IOVA: 0x10200567,
  GPA: 0x10100567,
  ROOT_TABLE: 0x10000000,
  CONTEXT_TABLE: 0x10001000,
  PML4: 0x10010000,
  PDPT: 0x10011000,
  PD: 0x10012000,
  PT: 0x10013000,
  PAGE: 0x10100000,
  PASID_DIR: 0x10030000,
  PASID_TABLE: 0x10031000,
} as const;

/** Which translation the qtest sets up. */
export type QemuQtestMode = 'legacy' | 'legacy-pt' | 'ss' | 'fs' | 'pt';

/** Write the qtest's structures for `mode` into `memory`; returns the RTADDR_REG value. */
export function buildQemuQtestLayout(memory: PhysicalMemory, mode: QemuQtestMode): number {
  const q = QEMU_QTEST;
  const put = (addr: number, words: Uint32Array) =>
    memory.write(addr, new Uint8Array(words.buffer));
  const fs = mode === 'fs';
  // Non-leaf entries: R|W (SS) or P|RW|U|A (FS, 0x27); leaf R|W or 0x67 (P|RW|U|A|D).
  const table = fs ? 0x27 : 0x3;
  const leaf = fs ? 0x67 : 0x3;
  if (mode !== 'pt' && mode !== 'legacy-pt') {
    memory.writeU64(q.PML4, BigInt(q.PDPT | table));
    memory.writeU64(q.PDPT, BigInt(q.PD | table));
    memory.writeU64(q.PD + 0x81 * 8, BigInt(q.PT | table));
    memory.writeU64(q.PT, BigInt(q.PAGE | leaf));
  }
  if (mode === 'legacy' || mode === 'legacy-pt') {
    put(q.ROOT_TABLE, rootEntryLayout.encode({ present: 1, contextTable: q.CONTEXT_TABLE }));
    put(
      q.CONTEXT_TABLE,
      contextEntryLayout.encode(
        mode === 'legacy' ? { present: 1, ssptptr: q.PML4, aw: 2 } : { present: 1, tt: 2, aw: 2 },
      ),
    );
    return q.ROOT_TABLE;
  }
  put(
    q.ROOT_TABLE,
    smRootEntryLayout.encode({ lowerPresent: 1, lowerContextTable: q.CONTEXT_TABLE }),
  );
  put(q.CONTEXT_TABLE, smContextEntryLayout.encode({ present: 1, pasidDir: q.PASID_DIR }));
  put(q.PASID_DIR, pasidDirEntryLayout.encode({ present: 1, pasidTable: q.PASID_TABLE }));
  const entry =
    mode === 'ss'
      ? { present: 1, aw: 2, pgtt: PGTT.SECOND_STAGE, ssptptr: q.PML4 }
      : mode === 'fs'
        ? { present: 1, pgtt: PGTT.FIRST_STAGE, fsptptr: q.PML4 }
        : { present: 1, pgtt: PGTT.PASS_THROUGH };
  put(q.PASID_TABLE, pasidEntryLayout.encode(entry));
  return q.ROOT_TABLE | VTD_RTADDR_SMT;
}
