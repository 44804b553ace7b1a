/**
 * The object table of one open /dev/iommu (main.c's xarray): ids from 1,
 * lowest free first and reused after destroy; two-phase creation (an id is
 * reserved first and the object becomes visible only when finalized);
 * `users` counting who depends on an object (the table holds one, so
 * IOMMU_DESTROY succeeds only at exactly 1); tombstones.
 */

import { EBUSY } from '@iommufd-sim/uapi-types';

/** An errno with the reason a person reads. */
export interface Failure {
  readonly errno: number;
  readonly reason: string;
}

/** xa_alloc's answer when every id up to INT_MAX is taken. */
const IDS_EXHAUSTED: Failure = { errno: EBUSY, reason: 'every object id up to 2^31 - 1 is in use' };

/** The object types of iommufd (enum iommufd_object_type). */
export type ObjectType =
  | 'IOAS'
  | 'HWPT_PAGING'
  | 'HWPT_NESTED'
  | 'DEVICE'
  | 'ACCESS'
  | 'FAULT'
  | 'VIOMMU'
  | 'VDEVICE'
  | 'VEVENTQ'
  | 'HW_QUEUE'
  | 'SELFTEST';

/** An object's place in its life. */
export type ObjectState = 'pending' | 'live' | 'tombstone';

/** Anything the table holds. */
export abstract class IommufdObject {
  /** Its id (0 until allocated). */
  id = 0;
  /** The table's reference plus one per dependent. */
  users = 1;
  /** Pending until finalized. */
  state: ObjectState = 'pending';
  /** Its type. */
  abstract readonly type: ObjectType;
  /** Release what it holds (called once, when it leaves the table). */
  abstract destroy(): void;
  /** What it is, for reports. */
  describe(): string {
    return `${this.type.toLowerCase()} ${this.id}`;
  }
}

/** The largest id the xarray hands out (INT_MAX). */
const MAX_ID = 0x7fffffff;

/** One context's objects. */
export class ObjectTable {
  private readonly objects = new Map<number, IommufdObject>();
  // Freed ids below `next`, as a binary min-heap, so allocation takes the lowest.
  private readonly freeIds: number[] = [];
  private next = 1;

  /** Objects in the table, pending and tombstones included. */
  get size(): number {
    return this.objects.size;
  }

  /** Every object, by id. */
  all(): IommufdObject[] {
    return [...this.objects.values()].sort((a, b) => a.id - b.id);
  }

  /** Reserve the lowest free id for `obj` (pending until {@link finalize}); EBUSY when ids ran out. */
  allocate(obj: IommufdObject): Failure | undefined {
    let id: number;
    if (this.freeIds.length > 0) id = this.popFree();
    else if (this.next <= MAX_ID) id = this.next++;
    else return IDS_EXHAUSTED;
    obj.id = id;
    obj.state = 'pending';
    this.objects.set(id, obj);
    return undefined;
  }

  /** Publish a pending object. */
  finalize(obj: IommufdObject): void {
    obj.state = 'live';
  }

  /** Drop a pending object whose creation failed, releasing what it took. */
  abort(obj: IommufdObject): void {
    this.removeEntry(obj);
    obj.destroy();
  }

  /** A live object of `type` (any type when omitted), or undefined (the kernel's ENOENT). */
  get(id: number, type?: ObjectType): IommufdObject | undefined {
    const obj = this.objects.get(id);
    if (obj === undefined || obj.state !== 'live') return undefined;
    if (type !== undefined && obj.type !== type) return undefined;
    return obj;
  }

  /** Any entry, tombstones and pending ones included (for reports). */
  peek(id: number): IommufdObject | undefined {
    return this.objects.get(id);
  }

  /**
   * IOMMU_DESTROY: remove and destroy `id` if only the table holds it.
   * Returns 0, -ENOENT-style `'missing'` or `'busy'`.
   */
  destroyUser(id: number): 'ok' | 'missing' | 'busy' {
    const obj = this.objects.get(id);
    if (obj === undefined || obj.state !== 'live') return 'missing';
    if (obj.users !== 1) return 'busy';
    this.removeEntry(obj);
    obj.destroy();
    return 'ok';
  }

  /** Remove and destroy a live object the kernel frees by itself (an unused auto HWPT, an unbound device). */
  remove(obj: IommufdObject): void {
    if (this.objects.get(obj.id) !== obj) return;
    this.removeEntry(obj);
    obj.destroy();
  }

  /**
   * iommufd_object_tombstone_user: destroy a live object the kernel removes
   * by itself (a vDEVICE whose device is unbound) but keep its id reserved
   * as a tombstone until the context is closed: IOMMU_DESTROY of it is
   * ENOENT and no new object gets the id.
   */
  tombstone(obj: IommufdObject): void {
    if (this.objects.get(obj.id) !== obj || obj.state === 'tombstone') return;
    obj.state = 'tombstone';
    obj.destroy();
  }

  /**
   * Close: destroy every object only the table holds, leaves first, again
   * and again until none is left (tombstones go last).
   */
  destroyAll(): void {
    for (;;) {
      let progress = false;
      for (const obj of [...this.objects.values()]) {
        if (obj.state === 'tombstone' || this.objects.get(obj.id) !== obj) continue;
        if (obj.users === 1) {
          this.removeEntry(obj);
          obj.destroy();
          progress = true;
        }
      }
      if (!progress) break;
    }
    // Anything left holds itself in a cycle the kernel never creates: drop it.
    for (const obj of [...this.objects.values()]) {
      this.objects.delete(obj.id);
      if (obj.state !== 'tombstone') obj.destroy();
    }
    this.freeIds.length = 0;
    this.next = 1;
  }

  private removeEntry(obj: IommufdObject): void {
    this.objects.delete(obj.id);
    this.pushFree(obj.id);
  }

  private pushFree(id: number): void {
    const h = this.freeIds;
    h.push(id);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as number) <= id) break;
      h[i] = h[p] as number;
      i = p;
    }
    h[i] = id;
  }

  private popFree(): number {
    const h = this.freeIds;
    const top = h[0] as number;
    const last = h.pop() as number;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && (h[r] as number) < (h[l] as number) ? r : l;
        if ((h[c] as number) >= last) break;
        h[i] = h[c] as number;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
