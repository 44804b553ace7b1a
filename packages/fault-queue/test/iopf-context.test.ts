/**
 * The caller's context that rides with a group: given with the LAST_PAGE
 * request, handed back in the response and shown to teardown selectors.
 */
import {
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE as LAST,
  pageResponseRecord,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { IopfQueue, type IopfRequest, type PageResponse } from '../src/index.js';

const req = (grpid: number, flags = 0): IopfRequest => ({
  flags,
  pasid: 0,
  grpid,
  perm: IOMMU_PGFAULT_PERM_WRITE,
  addr: 0x1000n * BigInt(grpid + 1),
});

function answer(cookie: number, code: number): Uint8Array {
  const bytes = new Uint8Array(8);
  pageResponseRecord.encode({ cookie, code }, bytes);
  return bytes;
}

describe('IopfQueue: group context', () => {
  it('the LAST_PAGE request context comes back with the response; partial contexts are ignored', () => {
    const responses: PageResponse[] = [];
    const queue = new IopfQueue({ onResponse: (r) => responses.push(r) });
    const hw = { tag: 'hardware request' };
    expect(queue.enqueue(4, req(2), { tag: 'partial' })).toBe(0);
    expect(queue.enqueue(4, req(2, LAST), hw)).toBe(0);
    expect(queue.pendingGroups()[0]?.context).toBe(hw);
    expect(queue.read(new Uint8Array(80))).toBe(80);
    expect(queue.write(answer(1, 0))).toBe(8);
    expect(responses).toHaveLength(1);
    expect(responses[0]?.context).toBe(hw);
    expect(responses[0]?.requests).toHaveLength(2);
  });

  it('without a context the response carries undefined', () => {
    const responses: PageResponse[] = [];
    const queue = new IopfQueue({ onResponse: (r) => responses.push(r) });
    queue.enqueue(1, req(0, LAST));
    queue.drainAll();
    expect(responses[0]?.context).toBeUndefined();
    expect(responses[0]?.cause).toBe('teardown');
  });

  it('a selector can answer the groups of one context (one attachment) and leave the rest', () => {
    const responses: PageResponse[] = [];
    const queue = new IopfQueue({ onResponse: (r) => responses.push(r) });
    const ridSlot = { slot: 0 };
    const pasidSlot = { slot: 7 };
    queue.enqueue(1, req(1, LAST), ridSlot);
    queue.enqueue(1, req(2, LAST), pasidSlot);
    queue.enqueue(1, req(3, LAST), ridSlot);
    expect(queue.read(new Uint8Array(40))).toBe(40); // grpid 1 read, cookie 1
    expect(queue.answerPending((g) => g.context === ridSlot)).toBe(2);
    expect(responses.map((r) => [r.grpid, r.code, r.context])).toEqual([
      [3, 1, ridSlot],
      [1, 1, ridSlot],
    ]);
    expect(queue.pendingGroups().map((g) => g.context)).toEqual([pasidSlot]);
  });
  it('enqueueGroup queues a gathered group at once, records in order, with its context; a bad member queues nothing', () => {
    const responses: PageResponse[] = [];
    const queue = new IopfQueue({ onResponse: (r) => responses.push(r) });
    const route = { tag: 'route' };
    expect(queue.enqueueGroup(9, [])).toBe(-22);
    expect(queue.enqueueGroup(9, [req(3), { ...req(3, LAST), perm: -1 }])).toBe(-22);
    expect(queue.readable()).toBe(false);
    expect(queue.stats().requests).toBe(0);
    expect(queue.enqueueGroup(9, [req(3), req(3), req(3, LAST)], route)).toBe(0);
    expect(queue.stats()).toMatchObject({
      requests: 3,
      partial: 0,
      groupsCompleted: 1,
      groupsQueued: 1,
    });
    const buf = new Uint8Array(120);
    expect(queue.read(buf)).toBe(120);
    const view = new DataView(buf.buffer);
    expect([0, 40, 80].map((at) => view.getUint32(at, true))).toEqual([0, 0, LAST]); // flags as given
    expect([0, 40, 80].map((at) => view.getUint32(at + 4, true))).toEqual([9, 9, 9]); // dev_id
    expect(queue.write(answer(1, 1))).toBe(8);
    expect(responses[0]?.context).toBe(route);
    expect(responses[0]?.requests).toHaveLength(3);
  });
});
