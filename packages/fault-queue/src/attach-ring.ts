/**
 * Attaching to a ring whose kind the receiving thread does not know: the kind
 * is stored in the buffer's control words.
 */
import { MpscRing } from './mpsc-ring.js';
import { ringKindOf } from './ring-base.js';
import { SpscRing } from './spsc-ring.js';

/**
 * A ring object over `buffer` (made by `SpscRing.create` or `MpscRing.create`,
 * possibly in another thread), of the kind stored in it. Throws TypeError if
 * the buffer holds no ring.
 */
export function attachRing(buffer: ArrayBuffer | SharedArrayBuffer): SpscRing | MpscRing {
  return ringKindOf(buffer) === 'spsc' ? new SpscRing(buffer) : new MpscRing(buffer);
}
