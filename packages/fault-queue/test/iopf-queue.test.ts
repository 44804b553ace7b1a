import {
  EINVAL,
  ESPIPE,
  faultRecord,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE as LAST,
  IOMMU_PGFAULT_FLAGS_PASID_VALID as PASID,
  pageResponseRecord,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import {
  IopfQueue,
  type IopfRequest,
  type PageResponse,
  POLLIN,
  POLLOUT,
  POLLRDNORM,
} from '../src/index.js';

const req = (grpid: number, addr: bigint, flags = 0, pasid = 0): IopfRequest => ({
  flags,
  pasid,
  grpid,
  perm: IOMMU_PGFAULT_PERM_READ,
  addr,
});

function records(buf: Uint8Array, bytes: number) {
  const out = [];
  for (let at = 0; at < bytes; at += 40) out.push(faultRecord.decode(buf, at));
  return out;
}

const respond = (...pairs: Array<[number, number]>): Uint8Array => {
  const bytes = new Uint8Array(8 * pairs.length);
  pairs.forEach(([cookie, code], i) => {
    pageResponseRecord.encode({ cookie, code }, bytes, 8 * i);
  });
  return bytes;
};

function queueWithLog() {
  const responses: PageResponse[] = [];
  const queue = new IopfQueue({ onResponse: (r) => responses.push(r) });
  return { queue, responses };
}

describe('IopfQueue: group assembly', () => {
  it('one LAST_PAGE request is a group of one, read as one 40-byte record', () => {
    const { queue } = queueWithLog();
    expect(queue.readable()).toBe(false);
    expect(queue.enqueue(7, req(3, 0x1000n, LAST | PASID, 5))).toBe(0);
    const buf = new Uint8Array(80);
    expect(queue.read(buf)).toBe(40);
    expect(records(buf, 40)).toEqual([
      {
        flags: LAST | PASID,
        dev_id: 7,
        pasid: 5,
        grpid: 3,
        perm: IOMMU_PGFAULT_PERM_READ,
        __reserved: 0,
        addr: 0x1000n,
        length: 0,
        cookie: 1,
      },
    ]);
  });

  it('requests wait until their LAST_PAGE and come out in arrival order, last page last', () => {
    const { queue } = queueWithLog();
    queue.enqueue(1, req(9, 0x1000n));
    queue.enqueue(1, req(9, 0x2000n));
    expect(queue.readable()).toBe(false);
    expect(queue.read(new Uint8Array(400))).toBe(0);
    queue.enqueue(1, req(9, 0x3000n, LAST));
    const buf = new Uint8Array(400);
    expect(queue.read(buf)).toBe(120);
    const got = records(buf, 120);
    expect(got.map((r) => r.addr)).toEqual([0x1000n, 0x2000n, 0x3000n]);
    expect(new Set(got.map((r) => r.cookie))).toEqual(new Set([1]));
  });

  it('groups are per device and per grpid; the PASID is not part of the key', () => {
    const { queue } = queueWithLog();
    queue.enqueue(1, req(4, 0xa000n, PASID, 1));
    queue.enqueue(2, req(4, 0xb000n)); // other device, same grpid
    queue.enqueue(1, req(5, 0xc000n)); // same device, other grpid
    queue.enqueue(1, req(4, 0xd000n, PASID | LAST, 2)); // other pasid, same grpid
    const buf = new Uint8Array(400);
    expect(queue.read(buf)).toBe(80);
    expect(records(buf, 80).map((r) => [r.dev_id, r.pasid, r.addr])).toEqual([
      [1, 1, 0xa000n],
      [1, 2, 0xd000n],
    ]);
    expect(queue.stats().partial).toBe(2);
    queue.enqueue(2, req(4, 0xe000n, LAST));
    queue.enqueue(1, req(5, 0xf000n, LAST));
    expect(queue.read(buf)).toBe(160);
    const r = records(buf, 160);
    expect(r.map((x) => [x.dev_id, x.addr, x.cookie])).toEqual([
      [2, 0xb000n, 2],
      [2, 0xe000n, 2],
      [1, 0xc000n, 3],
      [1, 0xf000n, 3],
    ]);
  });

  it('assembles the same groups whatever the interleaving of the partial requests', () => {
    // Three groups of 3 on one device, interleaved in every order that keeps
    // each group's LAST_PAGE after its own partial requests.
    const groups = [1, 2, 3].map((g) =>
      [0, 1, 2].map((i) => req(g, BigInt(g * 0x10000 + i * 0x1000), i === 2 ? LAST : 0)),
    );
    const orders: IopfRequest[][] = [];
    const walk = (cursors: number[], acc: IopfRequest[]): void => {
      if (acc.length === 9) {
        orders.push(acc);
        return;
      }
      cursors.forEach((c, g) => {
        if (c < 3) {
          const next = [...cursors];
          next[g] = c + 1;
          walk(next, [...acc, groups[g]![c]!]);
        }
      });
    };
    walk([0, 0, 0], []);
    expect(orders.length).toBe(1680); // 9! / (3!)^3
    for (const order of orders) {
      const { queue } = queueWithLog();
      for (const r of order) queue.enqueue(1, r);
      const buf = new Uint8Array(9 * 40);
      expect(queue.read(buf)).toBe(360);
      const got = records(buf, 360);
      const completion = order.filter((r) => r.flags & LAST).map((r) => r.grpid);
      const expected = completion.flatMap((g) => groups[g - 1]!.map((r) => r.addr));
      expect(got.map((r) => r.addr)).toEqual(expected);
      expect(got.map((r) => r.cookie)).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3]);
    }
  });
});

describe('IopfQueue: read', () => {
  it('a length that is not a multiple of 40, or a nonzero position, is ESPIPE and changes nothing', () => {
    const { queue } = queueWithLog();
    queue.enqueue(1, req(1, 0n, LAST));
    for (const n of [1, 39, 41, 79]) expect(queue.read(new Uint8Array(n))).toBe(-ESPIPE);
    expect(queue.read(new Uint8Array(40), 40)).toBe(-ESPIPE);
    expect(queue.stats().groupsQueued).toBe(1);
    expect(queue.read(new Uint8Array(40))).toBe(40);
  });

  it('nothing queued, or a zero-length read, returns 0 without blocking', () => {
    const { queue } = queueWithLog();
    expect(queue.read(new Uint8Array(40))).toBe(0);
    queue.enqueue(1, req(1, 0n, LAST));
    expect(queue.read(new Uint8Array(0))).toBe(0);
    expect(queue.stats().groupsQueued).toBe(1);
  });

  it('a group that does not fit in what is left stays queued for the next read', () => {
    const { queue } = queueWithLog();
    queue.enqueue(1, req(1, 0x1000n, LAST));
    queue.enqueue(1, req(2, 0x2000n));
    queue.enqueue(1, req(2, 0x3000n, LAST));
    const buf = new Uint8Array(80);
    expect(queue.read(buf)).toBe(40); // group 2 needs 80, only 40 left
    expect(queue.stats().groupsQueued).toBe(1);
    expect(queue.read(new Uint8Array(40))).toBe(0); // never split
    expect(queue.read(buf)).toBe(80);
    expect(records(buf, 80).map((r) => r.cookie)).toEqual([2, 2]);
  });

  it('cookies are the lowest free id from 1 and are reused once answered', () => {
    const { queue } = queueWithLog();
    for (let g = 0; g < 4; g++) queue.enqueue(1, req(g, 0n, LAST));
    const buf = new Uint8Array(160);
    queue.read(buf);
    expect(records(buf, 160).map((r) => r.cookie)).toEqual([1, 2, 3, 4]);
    expect(queue.write(respond([2, 0], [4, 1]))).toBe(16);
    for (let g = 0; g < 3; g++) queue.enqueue(1, req(g, 0n, LAST));
    queue.read(buf);
    expect(records(buf, 120).map((r) => r.cookie)).toEqual([2, 4, 5]);
  });

  it('the reserved and length fields are 0 and dev_id is the device object id given', () => {
    const { queue } = queueWithLog();
    queue.enqueue(0xffff_ffff, {
      flags: LAST,
      pasid: 0xfffff,
      grpid: 0x1ff,
      perm: IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE,
      addr: 0xffff_ffff_ffff_f000n,
    });
    const buf = new Uint8Array(40).fill(0xaa);
    queue.read(buf);
    expect(faultRecord.decode(buf)).toMatchObject({
      dev_id: 0xffff_ffff,
      pasid: 0xfffff,
      grpid: 0x1ff,
      perm: 3,
      __reserved: 0,
      length: 0,
      addr: 0xffff_ffff_ffff_f000n,
    });
  });

  it('poll: always POLLOUT, POLLIN | POLLRDNORM when a whole group waits', async () => {
    const { queue } = queueWithLog();
    expect(queue.poll()).toBe(POLLOUT);
    queue.enqueue(1, req(1, 0n));
    expect(queue.poll()).toBe(POLLOUT);
    const ready = queue.waitReadable();
    queue.enqueue(1, req(1, 0n, LAST));
    await expect(ready).resolves.toBe(true);
    expect(queue.poll()).toBe(POLLOUT | POLLIN | POLLRDNORM);
    await expect(queue.waitReadable(0)).resolves.toBe(true);
    queue.read(new Uint8Array(80));
    await expect(queue.waitReadable(5)).resolves.toBe(false);
  });
});

describe('IopfQueue: write', () => {
  function readOne(queue: IopfQueue): number {
    const buf = new Uint8Array(4000);
    const n = queue.read(buf);
    return faultRecord.decode(buf, n - 40).cookie;
  }

  it('a response goes to the device side with the last request’s pasid and grpid', () => {
    const { queue, responses } = queueWithLog();
    queue.enqueue(3, req(6, 0x1000n, PASID, 8));
    queue.enqueue(3, req(6, 0x2000n, PASID | LAST, 9));
    const cookie = readOne(queue);
    expect(queue.write(respond([cookie, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    expect(responses).toHaveLength(1);
    expect(responses[0]).toMatchObject({
      deviceId: 3,
      pasid: 9,
      grpid: 6,
      flags: PASID | LAST,
      code: IOMMUFD_PAGE_RESP_SUCCESS,
      cookie,
      cause: 'write',
    });
    expect(responses[0]?.requests.map((r) => r.addr)).toEqual([0x1000n, 0x2000n]);
    expect(queue.stats().groupsAwaitingResponse).toBe(0);
  });

  it('a length that is not a multiple of 8 or a nonzero position is ESPIPE', () => {
    const { queue, responses } = queueWithLog();
    queue.enqueue(1, req(1, 0n, LAST));
    const cookie = readOne(queue);
    const ok = respond([cookie, 0]);
    for (const n of [1, 7, 9, 15]) {
      const bytes = new Uint8Array(n);
      bytes.set(ok.subarray(0, Math.min(8, n)));
      expect(queue.write(bytes)).toBe(-ESPIPE);
    }
    expect(queue.write(ok, 8)).toBe(-ESPIPE);
    expect(responses).toEqual([]);
    expect(queue.write(new Uint8Array(0))).toBe(0);
    expect(queue.write(ok)).toBe(8);
  });

  it('an unknown cookie or a code other than 0/1 is EINVAL and changes nothing', () => {
    const { queue, responses } = queueWithLog();
    queue.enqueue(1, req(1, 0n, LAST));
    const cookie = readOne(queue);
    expect(queue.write(respond([cookie + 1, 0]))).toBe(-EINVAL);
    expect(queue.write(respond([0, 0]))).toBe(-EINVAL);
    for (const code of [2, 3, 0xffff_ffff])
      expect(queue.write(respond([cookie, code]))).toBe(-EINVAL);
    expect(responses).toEqual([]);
    expect(queue.stats().groupsAwaitingResponse).toBe(1);
    // a group queued but not read has no cookie yet
    queue.enqueue(1, req(2, 0n, LAST));
    expect(queue.write(respond([cookie + 1, 0]))).toBe(-EINVAL);
  });

  it('a bad response after good ones: the good ones are answered and their bytes returned', () => {
    const { queue, responses } = queueWithLog();
    queue.enqueue(1, req(1, 0n, LAST));
    queue.enqueue(1, req(2, 0n, LAST));
    queue.read(new Uint8Array(80));
    expect(queue.write(respond([1, 0], [2, 7], [2, 0]))).toBe(8);
    expect(responses.map((r) => r.cookie)).toEqual([1]);
    expect(queue.write(respond([1, 0]))).toBe(-EINVAL); // answered already
    expect(queue.write(respond([2, 1]))).toBe(8);
    expect(responses.map((r) => [r.cookie, r.code])).toEqual([
      [1, 0],
      [2, 1],
    ]);
  });

  it('read and write never throw for bad arguments', () => {
    const { queue } = queueWithLog();
    expect(queue.read(null as unknown as Uint8Array)).toBe(-EINVAL);
    expect(queue.write('x' as unknown as Uint8Array)).toBe(-EINVAL);
    expect(queue.enqueue(-1, req(1, 0n, LAST))).toBe(-EINVAL);
    expect(queue.enqueue(1, { ...req(1, 0n, LAST), addr: -1n })).toBe(-EINVAL);
    expect(queue.enqueue(1, { ...req(1, 0n, LAST), addr: 1n << 64n })).toBe(-EINVAL);
    expect(queue.enqueue(1, { ...req(1, 0n, LAST), grpid: 1.5 })).toBe(-EINVAL);
    expect(queue.enqueue(1, null as unknown as IopfRequest)).toBe(-EINVAL);
    expect(queue.stats().requests).toBe(0);
  });
});

describe('IopfQueue: teardown', () => {
  it('detach answers INVALID the device’s groups, read or not, unread first then by cookie', () => {
    const { queue, responses } = queueWithLog();
    queue.enqueue(1, req(1, 0x1000n, LAST));
    queue.enqueue(2, req(1, 0x2000n, LAST));
    queue.enqueue(1, req(2, 0x3000n, LAST));
    queue.read(new Uint8Array(120)); // cookies 1, 2, 3
    queue.enqueue(1, req(3, 0x4000n, LAST)); // unread
    queue.enqueue(1, req(4, 0x5000n)); // partial: not a group, no response
    expect(queue.answerPending(1)).toBe(3);
    expect(responses.map((r) => [r.deviceId, r.grpid, r.code, r.cookie, r.cause])).toEqual([
      [1, 3, IOMMUFD_PAGE_RESP_INVALID, 0, 'teardown'],
      [1, 1, IOMMUFD_PAGE_RESP_INVALID, 1, 'teardown'],
      [1, 2, IOMMUFD_PAGE_RESP_INVALID, 3, 'teardown'],
    ]);
    expect(queue.write(respond([1, 0]))).toBe(-EINVAL); // its cookie is gone
    expect(queue.write(respond([2, 0]))).toBe(8); // device 2 untouched
    expect(queue.stats().partial).toBe(1);
  });

  it('a selector picks groups by what the kernel knows of them (a PASID detach)', () => {
    const { queue, responses } = queueWithLog();
    queue.enqueue(1, req(1, 0n, LAST | PASID, 10));
    queue.enqueue(1, req(2, 0n, LAST | PASID, 11));
    expect(queue.answerPending((g) => g.pasid === 11)).toBe(1);
    expect(responses.map((r) => r.pasid)).toEqual([11]);
    expect(queue.pendingGroups()).toEqual([
      { deviceId: 1, pasid: 10, flags: LAST | PASID, grpid: 1, cookie: 0, requestCount: 1 },
    ]);
  });

  it('destroy answers every pending group INVALID and drops partial requests', () => {
    const { queue, responses } = queueWithLog();
    queue.enqueue(1, req(1, 0n, LAST));
    queue.enqueue(2, req(1, 0n, LAST));
    queue.read(new Uint8Array(40));
    queue.enqueue(3, req(1, 0n));
    expect(queue.drainAll()).toBe(2);
    expect(responses.map((r) => r.code)).toEqual([1, 1]);
    expect(queue.stats()).toMatchObject({
      partial: 0,
      groupsQueued: 0,
      groupsAwaitingResponse: 0,
      answeredOnTeardown: 2,
      partialDiscarded: 1,
    });
    expect(queue.readable()).toBe(false);
  });

  it('discardPartial of one device leaves the others', () => {
    const { queue } = queueWithLog();
    queue.enqueue(1, req(1, 0n));
    queue.enqueue(2, req(1, 0n));
    expect(queue.discardPartial(1)).toBe(1);
    queue.enqueue(2, req(1, 0n, LAST));
    expect(queue.read(new Uint8Array(400))).toBe(80);
  });
});
