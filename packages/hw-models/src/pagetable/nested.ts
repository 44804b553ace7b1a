/**
 * Nested translation: a stage-1 table built by a guest lives in guest
 * physical memory, so every table address a stage-1 walk reads is itself
 * translated through stage 2 before the walker can fetch the entry.
 */
import { FRAME_SIZE, type TableMemory } from '../memory/physical-memory.js';
import {
  ACCESS_READ,
  ACCESS_WRITE,
  newTranslation,
  type PageTable,
  type Translation,
} from './format.js';

/**
 * A {@link TableMemory} over guest physical addresses: each frame number is
 * translated through `stage2` and read from `memory`. When stage 2 does not
 * map a table, the read fails and {@link lastFault} says why (for a stage-2
 * fault record: the IPA and the stage-2 fault kind).
 */
export class Stage2TableMemory implements TableMemory {
  /** The stage-2 outcome of the last table fetch that failed, or null. */
  lastFault: Translation | null = null;
  /** Guest physical address of that fetch. */
  lastFaultIpa = 0;
  private readonly scratch = newTranslation();

  constructor(
    /** The stage-2 (nesting parent) table. */
    readonly stage2: PageTable,
    /** Host memory the stage-2 output addresses point into. */
    readonly memory: TableMemory,
  ) {}

  readFrame(pfn: number): Uint32Array | undefined {
    return this.fetch(pfn, ACCESS_READ, false);
  }

  writeFrame(pfn: number): Uint32Array | undefined {
    return this.fetch(pfn, ACCESS_READ | ACCESS_WRITE, true);
  }

  private fetch(pfn: number, access: number, write: boolean): Uint32Array | undefined {
    const ipa = pfn * FRAME_SIZE;
    const t = this.stage2.translate(ipa, access, this.scratch);
    if (!t.ok) {
      this.lastFault = { ...t };
      this.lastFaultIpa = ipa;
      return undefined;
    }
    const hpfn = Math.floor(t.pa / FRAME_SIZE);
    return write ? this.memory.writeFrame(hpfn) : this.memory.readFrame(hpfn);
  }
}
