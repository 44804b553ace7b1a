/**
 * The IOPF queue: what lies between a device's page requests and the fault fd
 * of Linux 6.17. It folds together the IOMMU core's per-device grouping
 * (io-pgfault: requests wait on a "partial" list until the LAST_PAGE request
 * of their group arrives) and the FAULT object of iommufd (eventq.c: a deliver
 * list of whole groups, read() handing them out with a cookie, write() taking
 * responses by cookie, INVALID for every group left when a device detaches or
 * the object is destroyed).
 */
import {
  EBUSY,
  EINVAL,
  ESPIPE,
  faultRecord,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  pageResponseRecord,
} from '@iommufd-sim/uapi-types';
import { CookieAllocator } from './cookie-allocator.js';
import { POLLIN, POLLOUT, POLLRDNORM, ReadinessSignal } from './readiness.js';

/** One page request as the IOMMU driver reports it (the kernel's `iommu_fault_page_request`). */
export interface IopfRequest {
  /**
   * The request's flags, copied to the record as they are: PASID_VALID (1)
   * and LAST_PAGE (2) are the ones the uAPI names.
   */
  readonly flags: number;
  /** The PASID, meaningful when PASID_VALID is set; carried, not part of the group key. */
  readonly pasid: number;
  /** The page request group index: requests of a device with the same grpid form a group. */
  readonly grpid: number;
  /** Requested access: READ 1, WRITE 2, EXEC 4, PRIV 8. */
  readonly perm: number;
  /** The faulting address (u64). */
  readonly addr: bigint;
}

/** Why a group was answered: a response written to the fault fd, or teardown (detach, destroy). */
export type PageResponseCause = 'write' | 'teardown';

/**
 * The answer to one group, handed to the device side. As in the kernel, it
 * names the group by the PASID and grpid of its LAST_PAGE request.
 */
export interface PageResponse {
  /** The iommufd device object id the group was queued under. */
  readonly deviceId: number;
  /** The PASID of the group's last request. */
  readonly pasid: number;
  /** The group index. */
  readonly grpid: number;
  /** The flags of the group's last request (PASID_VALID tells whether `pasid` means anything). */
  readonly flags: number;
  /** IOMMUFD_PAGE_RESP_SUCCESS (0: mapped now, retry) or IOMMUFD_PAGE_RESP_INVALID (1: abort). */
  readonly code: number;
  /** The cookie the group was read with; 0 if it was answered before anyone read it. */
  readonly cookie: number;
  /** The group's requests in arrival order, the LAST_PAGE one last. */
  readonly requests: readonly IopfRequest[];
  /** What answered it. */
  readonly cause: PageResponseCause;
  /**
   * The `context` given to `enqueue` with the group's LAST_PAGE request
   * (undefined when none was given): whatever the caller needs to pass the
   * answer on, such as the hardware request to complete.
   */
  readonly context: unknown;
}

/** What a teardown selector sees of a pending group. */
export interface FaultGroupInfo {
  /** The device object id it was queued under. */
  readonly deviceId: number;
  /** The PASID of its last request. */
  readonly pasid: number;
  /** The flags of its last request. */
  readonly flags: number;
  /** Its group index. */
  readonly grpid: number;
  /** Its cookie, or 0 while it has not been read. */
  readonly cookie: number;
  /** How many requests (40-byte records) it has. */
  readonly requestCount: number;
  /** The `context` its LAST_PAGE request was enqueued with (undefined when none). */
  readonly context: unknown;
}

/**
 * Which pending groups `answerPending` answers: all (undefined), those of one
 * device id, or those a predicate picks (a detach of one PASID, say).
 */
export type FaultGroupSelector = number | ((group: FaultGroupInfo) => boolean) | undefined;

/** The counters of an {@link IopfQueue}. */
export interface IopfQueueStats {
  /** Page requests accepted by `enqueue`. */
  readonly requests: number;
  /** Requests waiting for their group's LAST_PAGE request. */
  readonly partial: number;
  /** Groups completed by a LAST_PAGE request. */
  readonly groupsCompleted: number;
  /** Complete groups waiting to be read. */
  readonly groupsQueued: number;
  /** Groups read and waiting for a response. */
  readonly groupsAwaitingResponse: number;
  /** Groups handed out by `read`. */
  readonly groupsRead: number;
  /** 40-byte records handed out by `read`. */
  readonly recordsRead: number;
  /** Groups answered through `write`. */
  readonly responsesWritten: number;
  /** Groups answered INVALID by `answerPending` / `drainAll`. */
  readonly answeredOnTeardown: number;
  /** Partial requests thrown away by `discardPartial` / `drainAll`. */
  readonly partialDiscarded: number;
}

/** How to make an {@link IopfQueue}. */
export interface IopfQueueOptions {
  /** Receives every response, to pass back to the device side. */
  readonly onResponse?: (response: PageResponse) => void;
}

interface FaultGroup {
  readonly deviceId: number;
  readonly requests: IopfRequest[];
  readonly context: unknown;
  cookie: number;
}

const RECORD_SIZE = faultRecord.sizeof;
const RESPONSE_SIZE = pageResponseRecord.sizeof;
const F = faultRecord.fields;
const R = pageResponseRecord.fields;
const U64_MAX = (1n << 64n) - 1n;

const isU32 = (value: unknown): value is number =>
  typeof value === 'number' && value >>> 0 === value;

/** A frozen copy of a request whose fields fit the uAPI record, or null. */
function frozenCopy(request: IopfRequest): IopfRequest | null {
  if (typeof request !== 'object' || request === null) return null;
  const { flags, pasid, grpid, perm, addr } = request;
  if (!isU32(flags) || !isU32(pasid) || !isU32(grpid) || !isU32(perm)) return null;
  if (typeof addr !== 'bigint' || addr < 0n || addr > U64_MAX) return null;
  return Object.freeze({ flags, pasid, grpid, perm, addr });
}

/**
 * The IOPF queue of one iommufd FAULT object. The device side calls
 * `enqueue`; the fault fd's read() and write() are `read` and `write`, which
 * never throw and return a byte count or a negative errno as the kernel's
 * fops do; detach and destroy call `answerPending` (or `drainAll`).
 */
export class IopfQueue {
  /** Receives every response; may be replaced at any time. */
  onResponse: ((response: PageResponse) => void) | undefined;

  private readonly partial = new Map<number, IopfRequest[]>();
  private deliver: FaultGroup[] = [];
  private deliverHead = 0;
  private readonly awaiting = new Map<number, FaultGroup>();
  private readonly cookies = new CookieAllocator();
  private readonly signal = new ReadinessSignal();
  private counts = {
    requests: 0,
    partial: 0,
    groupsCompleted: 0,
    groupsRead: 0,
    recordsRead: 0,
    responsesWritten: 0,
    answeredOnTeardown: 0,
    partialDiscarded: 0,
  };

  /** Makes an empty queue. */
  constructor(options: IopfQueueOptions = {}) {
    this.onResponse = options.onResponse;
  }

  /**
   * Takes one page request of device `deviceId` (the iommufd device object id,
   * which becomes the records' dev_id). A request without LAST_PAGE waits for
   * its group; one with LAST_PAGE completes the group of that device and
   * grpid (the waiting requests in arrival order, then itself), which becomes
   * readable. The queue has no depth limit, as the kernel's has none.
   * Returns 0, or -EINVAL (queue unchanged) when a field is not a u32 or the
   * address not a u64.
   *
   * `context` rides with the group a LAST_PAGE request completes and comes
   * back in its {@link PageResponse} and {@link FaultGroupInfo} (the kernel
   * keeps the attach handle and the last request this way); it is ignored
   * for a request without LAST_PAGE.
   */
  enqueue(deviceId: number, request: IopfRequest, context?: unknown): number {
    const copy = isU32(deviceId) ? frozenCopy(request) : null;
    if (copy === null) return -EINVAL;
    const { flags, grpid } = copy;
    this.counts.requests++;
    let waiting = this.partial.get(deviceId);
    if ((flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) === 0) {
      if (waiting === undefined) {
        waiting = [];
        this.partial.set(deviceId, waiting);
      }
      waiting.push(copy);
      this.counts.partial++;
      return 0;
    }
    const requests: IopfRequest[] = [];
    if (waiting !== undefined) {
      const rest: IopfRequest[] = [];
      for (const r of waiting) (r.grpid === grpid ? requests : rest).push(r);
      this.counts.partial -= requests.length;
      if (rest.length === 0) this.partial.delete(deviceId);
      else this.partial.set(deviceId, rest);
    }
    requests.push(copy);
    this.deliver.push({ deviceId, requests, context, cookie: 0 });
    this.counts.groupsCompleted++;
    this.signal.notify();
    return 0;
  }

  /**
   * Takes a whole group at once, already gathered by the caller (the IOMMU
   * core keeps the partial list when it routes requests itself): `requests`
   * in arrival order, the LAST_PAGE one last, queued as one readable group of
   * device `deviceId` with `context` (see {@link enqueue}). The requests'
   * flags are copied as they are. Returns 0, or -EINVAL (queue unchanged)
   * for an empty group or a field that is not a u32 / an address not a u64.
   */
  enqueueGroup(deviceId: number, requests: readonly IopfRequest[], context?: unknown): number {
    if (!isU32(deviceId) || !Array.isArray(requests) || requests.length === 0) return -EINVAL;
    const copies: IopfRequest[] = [];
    for (const request of requests) {
      const copy = frozenCopy(request);
      if (copy === null) return -EINVAL;
      copies.push(copy);
    }
    this.counts.requests += copies.length;
    this.deliver.push({ deviceId, requests: copies, context, cookie: 0 });
    this.counts.groupsCompleted++;
    this.signal.notify();
    return 0;
  }

  /**
   * read() on the fault fd: fills `buf` with whole groups, oldest first, as
   * 40-byte `iommu_hwpt_pgfault` records sharing one cookie per group, and
   * returns the bytes written. A group that does not fit in what is left stays
   * queued; nothing waiting returns 0 at once. A length that is not a multiple
   * of 40, or a nonzero file position, gives -ESPIPE.
   */
  read(buf: Uint8Array, position = 0): number {
    if (!(buf instanceof Uint8Array)) return -EINVAL;
    const count = buf.length;
    if (position !== 0 || count % RECORD_SIZE !== 0) return -ESPIPE;
    let done = 0;
    let rc = 0;
    let view: DataView | undefined;
    while (this.deliverHead < this.deliver.length) {
      const group = this.deliver[this.deliverHead] as FaultGroup;
      if (done >= count || group.requests.length * RECORD_SIZE > count - done) break;
      const cookie = this.cookies.allocate();
      if (cookie < 0) {
        rc = -EBUSY; // every 32-bit cookie is out: the kernel's xa_alloc fails the same way
        break;
      }
      this.deliverHead++;
      group.cookie = cookie;
      this.awaiting.set(cookie, group);
      view ??= new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      for (const request of group.requests) {
        writeFaultRecord(view, done, group.deviceId, request, cookie);
        done += RECORD_SIZE;
      }
      this.counts.groupsRead++;
      this.counts.recordsRead += group.requests.length;
    }
    this.compactDeliver();
    return done === 0 ? rc : done;
  }

  /**
   * write() on the fault fd: takes 8-byte `iommu_hwpt_page_response` records
   * ({cookie, code}), answers each group and returns the bytes consumed. A
   * length that is not a multiple of 8, or a nonzero position, gives -ESPIPE;
   * a code other than SUCCESS (0) or INVALID (1), or a cookie no read group
   * holds, stops there: -EINVAL if it was the first response, else the bytes
   * of the responses before it (which were answered), as the kernel does.
   */
  write(bytes: Uint8Array, position = 0): number {
    if (!(bytes instanceof Uint8Array)) return -EINVAL;
    const count = bytes.length;
    if (position !== 0 || count % RESPONSE_SIZE !== 0) return -ESPIPE;
    let done = 0;
    let rc = 0;
    while (done < count) {
      const cookie = readU32(bytes, done + R.cookie.offset);
      const code = readU32(bytes, done + R.code.offset);
      if (code !== IOMMUFD_PAGE_RESP_SUCCESS && code !== IOMMUFD_PAGE_RESP_INVALID) {
        rc = -EINVAL;
        break;
      }
      const group = this.awaiting.get(cookie);
      if (group === undefined) {
        rc = -EINVAL;
        break;
      }
      this.awaiting.delete(cookie);
      this.cookies.free(cookie);
      done += RESPONSE_SIZE;
      this.counts.responsesWritten++;
      this.respond(group, code, 'write');
    }
    return done === 0 ? rc : done;
  }

  /**
   * Answers INVALID every selected group still pending, read or not (a device
   * detaching, or the FAULT object being destroyed), and returns how many it
   * answered: first the unread ones in queue order, then the read ones in
   * cookie order, as the kernel walks them.
   */
  answerPending(select?: FaultGroupSelector): number {
    const picks = selectorOf(select);
    const answered: FaultGroup[] = [];
    const kept: FaultGroup[] = [];
    for (let i = this.deliverHead; i < this.deliver.length; i++) {
      const group = this.deliver[i] as FaultGroup;
      (picks(group) ? answered : kept).push(group);
    }
    this.deliver = kept;
    this.deliverHead = 0;
    for (const cookie of [...this.awaiting.keys()].sort((a, b) => a - b)) {
      const group = this.awaiting.get(cookie) as FaultGroup;
      if (!picks(group)) continue;
      this.awaiting.delete(cookie);
      this.cookies.free(cookie);
      answered.push(group);
    }
    this.counts.answeredOnTeardown += answered.length;
    for (const group of answered) this.respond(group, IOMMUFD_PAGE_RESP_INVALID, 'teardown');
    return answered.length;
  }

  /**
   * Throws away requests still waiting for their LAST_PAGE (of one device, or
   * of all), with no response, as the IOMMU core does when a device leaves
   * its IOPF queue; returns how many.
   */
  discardPartial(deviceId?: number): number {
    let dropped = 0;
    for (const [id, waiting] of this.partial) {
      if (deviceId !== undefined && id !== deviceId) continue;
      dropped += waiting.length;
      this.partial.delete(id);
    }
    this.counts.partial -= dropped;
    this.counts.partialDiscarded += dropped;
    return dropped;
  }

  /** Destroy: answers every pending group INVALID and discards partial requests; returns the groups answered. */
  drainAll(): number {
    const answered = this.answerPending();
    this.discardPartial();
    return answered;
  }

  /** True when a whole group waits to be read. */
  readable(): boolean {
    return this.deliverHead < this.deliver.length;
  }

  /** poll(2) on the fault fd: always POLLOUT, plus POLLIN | POLLRDNORM when a group waits. */
  poll(): number {
    return POLLOUT | (this.readable() ? POLLIN | POLLRDNORM : 0);
  }

  /** Resolves true when a group waits (at once if one does), false after `timeoutMs`. */
  waitReadable(timeoutMs?: number): Promise<boolean> {
    return this.signal.wait(() => this.readable(), timeoutMs);
  }

  /** The groups waiting to be read and waiting for a response, as a teardown selector sees them. */
  pendingGroups(): FaultGroupInfo[] {
    const groups = this.deliver.slice(this.deliverHead);
    for (const cookie of [...this.awaiting.keys()].sort((a, b) => a - b)) {
      groups.push(this.awaiting.get(cookie) as FaultGroup);
    }
    return groups.map(infoOf);
  }

  /** The counters. */
  stats(): IopfQueueStats {
    return {
      ...this.counts,
      groupsQueued: this.deliver.length - this.deliverHead,
      groupsAwaitingResponse: this.awaiting.size,
    };
  }

  private respond(group: FaultGroup, code: number, cause: PageResponseCause): void {
    const last = group.requests[group.requests.length - 1] as IopfRequest;
    this.onResponse?.({
      deviceId: group.deviceId,
      pasid: last.pasid,
      grpid: last.grpid,
      flags: last.flags,
      code,
      cookie: group.cookie,
      requests: group.requests,
      cause,
      context: group.context,
    });
  }

  // Drops read groups from the front of the array once they are a good part of it.
  private compactDeliver(): void {
    if (this.deliverHead === this.deliver.length) {
      this.deliver = [];
      this.deliverHead = 0;
    } else if (this.deliverHead > 1024 && this.deliverHead * 2 > this.deliver.length) {
      this.deliver = this.deliver.slice(this.deliverHead);
      this.deliverHead = 0;
    }
  }
}

function infoOf(group: FaultGroup): FaultGroupInfo {
  const last = group.requests[group.requests.length - 1] as IopfRequest;
  return {
    deviceId: group.deviceId,
    pasid: last.pasid,
    flags: last.flags,
    grpid: last.grpid,
    cookie: group.cookie,
    requestCount: group.requests.length,
    context: group.context,
  };
}

function selectorOf(select: FaultGroupSelector): (group: FaultGroup) => boolean {
  if (select === undefined) return () => true;
  if (typeof select === 'number') return (group) => group.deviceId === select;
  return (group) => select(infoOf(group));
}

/** The record the kernel composes: the request's fields, the device id, length 0, the cookie. */
function writeFaultRecord(
  view: DataView,
  at: number,
  deviceId: number,
  request: IopfRequest,
  cookie: number,
): void {
  view.setUint32(at + F.flags.offset, request.flags, true);
  view.setUint32(at + F.dev_id.offset, deviceId, true);
  view.setUint32(at + F.pasid.offset, request.pasid, true);
  view.setUint32(at + F.grpid.offset, request.grpid, true);
  view.setUint32(at + F.perm.offset, request.perm, true);
  view.setUint32(at + F.__reserved.offset, 0, true);
  view.setBigUint64(at + F.addr.offset, request.addr, true);
  view.setUint32(at + F.length.offset, 0, true);
  view.setUint32(at + F.cookie.offset, cookie, true);
}

function readU32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) |
      ((bytes[at + 1] as number) << 8) |
      ((bytes[at + 2] as number) << 16) |
      ((bytes[at + 3] as number) << 24)) >>>
    0
  );
}
