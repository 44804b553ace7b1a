/**
 * Property: random sequences of TRIGGER_IOPF, fault fd reads and writes
 * (good and bad cookies and codes), RID replaces and PASID attach / detach
 * on two PASID-capable mock devices never throw, never count an internal
 * error, and by the end (after the process exits) every page request the
 * mock IOMMU raised has been answered exactly once.
 */
import type { MockIommu, PageRequest } from '@iommufd-sim/hw-models';
import {
  EBUSY,
  EINVAL,
  ENOENT,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  MOCK_FLAGS_DEVICE_PASID,
} from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ioasAlloc, mockDomain, mockReplace, setup } from './helpers.js';
import {
  faultAlloc,
  hwptAlloc,
  IOTLB_DEFAULT,
  pasidAttach,
  pasidDetach,
  readFaults,
  respond,
  triggerIopf,
} from './helpers-fault.js';

type Cmd =
  | { readonly op: 'trigger'; readonly dev: number; readonly pasid: number; readonly grpid: number }
  | { readonly op: 'read'; readonly slots: number }
  | { readonly op: 'write'; readonly pairs: readonly (readonly [number, number])[] }
  | { readonly op: 'replace'; readonly dev: number; readonly target: number }
  | {
      readonly op: 'pasid-attach';
      readonly dev: number;
      readonly pasid: number;
      readonly target: number;
    }
  | { readonly op: 'pasid-detach'; readonly dev: number; readonly pasid: number };

const PASIDS = [0, 3, 7, 9];
const dev = fc.integer({ min: 0, max: 1 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('trigger' as const),
      dev,
      pasid: fc.constantFrom(...PASIDS),
      grpid: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('read' as const),
      slots: fc.integer({ min: 0, max: 4 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('write' as const),
      pairs: fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.constantFrom(0, 0, 1, 2)), {
        minLength: 1,
        maxLength: 3,
      }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('replace' as const),
      dev,
      target: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('pasid-attach' as const),
      dev,
      pasid: fc.constantFrom(3, 7),
      target: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('pasid-detach' as const),
      dev,
      pasid: fc.constantFrom(3, 7),
    }),
  },
);

/** Totals over every run, so the test can tell the property was not met vacuously. */
const totals = { delivered: 0, read: 0, answeredBeforeExit: 0 };

function run(cmds: readonly Cmd[]): void {
  const { host, proc, fd } = setup();
  const mock = host.mockIommu as MockIommu;
  const raised: PageRequest[] = [];
  const deliver = mock.onPageRequest;
  mock.onPageRequest = (r) => {
    raised.push(r);
    deliver?.(r);
  };
  const ioas = ioasAlloc(proc, fd);
  const devices = [0, 1].map(() => {
    const md = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_PASID);
    expect(md.rc).toBe(0);
    return md;
  });
  const first = devices[0] as (typeof devices)[number];
  const fault = faultAlloc(proc, fd);
  const parent = hwptAlloc(proc, fd, {
    devId: first.idevId,
    ptId: ioas,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID,
  });
  const nested = (flags: number) =>
    hwptAlloc(proc, fd, {
      devId: first.idevId,
      ptId: parent.id,
      flags,
      faultId: fault.id,
      selftestIotlb: IOTLB_DEFAULT,
    }).id;
  // Targets: a nested fault HWPT, a second one, a paging fault HWPT, and the IOAS (an automatic HWPT, no fault).
  const targets = [
    nested(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID),
    nested(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID),
    hwptAlloc(proc, fd, {
      devId: first.idevId,
      ptId: ioas,
      flags: IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID,
      faultId: fault.id,
    }).id,
    ioas,
  ];
  expect(targets.every((t) => t > 0)).toBe(true);
  const idevIds = new Set(devices.map((d) => d.idevId));
  // The first device starts on a fault HWPT, the second on its automatic one.
  expect(mockReplace(proc, fd, first.stdevId, targets[0] as number).rc).toBe(0);

  for (const c of cmds) {
    const d = devices[c.op === 'read' || c.op === 'write' ? 0 : c.dev] as (typeof devices)[number];
    switch (c.op) {
      case 'trigger':
        expect(triggerIopf(proc, fd, d.idevId, { pasid: c.pasid, grpid: c.grpid })).toBe(0);
        break;
      case 'read': {
        const { rc, records } = readFaults(proc, fault.faultFd, c.slots);
        totals.read += records.length;
        expect(rc >= 0 && rc % 40 === 0 && rc <= 40 * c.slots).toBe(true);
        for (const r of records) {
          expect(idevIds.has(r.dev_id)).toBe(true);
          expect(r.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE).toBe(IOMMU_PGFAULT_FLAGS_LAST_PAGE);
          expect(r.cookie).toBeGreaterThanOrEqual(1);
        }
        break;
      }
      case 'write': {
        const rc = respond(proc, fault.faultFd, ...c.pairs);
        expect(rc === -EINVAL || (rc > 0 && rc % 8 === 0 && rc <= 8 * c.pairs.length)).toBe(true);
        break;
      }
      case 'replace':
        expect([0, -EINVAL]).toContain(
          mockReplace(proc, fd, d.stdevId, targets[c.target] as number).rc,
        );
        break;
      case 'pasid-attach':
        expect([0, -EINVAL, -EBUSY, -ENOENT]).toContain(
          pasidAttach(proc, fd, d.stdevId, c.pasid, targets[c.target] as number),
        );
        break;
      case 'pasid-detach':
        expect(pasidDetach(proc, fd, d.stdevId, c.pasid)).toBe(0);
        break;
    }
    expect(host.internalErrors).toBe(0);
  }

  totals.delivered += host.iopf.stats().groupsDelivered;
  totals.answeredBeforeExit += mock.pageResponses.length;
  proc.exit();
  expect(host.internalErrors).toBe(0);
  const answered = new Map<PageRequest, number>();
  for (const { request } of mock.pageResponses)
    answered.set(request, (answered.get(request) ?? 0) + 1);
  expect(answered.size).toBe(raised.length);
  for (const r of raised) expect(answered.get(r)).toBe(1);
  expect(host.pinnedPages()).toBe(0);
}

describe('IOPF property', () => {
  it('random triggers, reads, writes, replaces and PASID attach/detach: no throw, no internal error, every request answered exactly once', () => {
    fc.assert(
      fc.property(fc.array(cmd, { minLength: 1, maxLength: 60 }), (cmds) => {
        run(cmds);
      }),
      { numRuns: 200 },
    );
    // The sequences did reach the fault fd, were read and were answered.
    expect(totals.delivered).toBeGreaterThan(50);
    expect(totals.read).toBeGreaterThan(20);
    expect(totals.answeredBeforeExit).toBeGreaterThan(20);
  }, 120_000);
});
