/**
 * End to end: a device DMAs to an IOVA nothing is mapped at; the hardware
 * raises a recoverable fault (a PRI page request on VT-d, a stall on
 * SMMUv3); it reaches the fault fd; user space maps the page and answers
 * SUCCESS; the device retries and the bytes land in the process's memory.
 * INVALID aborts the transfer instead. A PCI PRI request on SMMUv3 is denied
 * by the hardware side, as 6.17 does, and never reaches the fault fd.
 * Devices go through VFIO: BIND_IOMMUFD, HWPT_ALLOC with FAULT_ID_VALID,
 * ATTACH_IOMMUFD_PT.
 */
import type { Smmuv3Iommu, VtdIommu } from '@iommufd-sim/hw-models';
import {
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE as LAST,
  IOMMU_PGFAULT_FLAGS_PASID_VALID as PASID_VALID,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type DmaTransfer, type HostConfig } from '../src/index.js';
import { ioasAlloc, map, PAGE } from './helpers.js';
import { pattern, vfioAttach, vfioBind, vfioDetach } from './helpers-c.js';
import { faultAlloc, hwptAlloc, readFaults, respond, vfioAttachPasid } from './helpers-fault.js';

const SUCCESS = 0;
const INVALID = 1;
const IOVA = 0x40000000n;

const PRI_NIC = '0000:00:10.0';
const STALL_DEV = 'accel0';
const PRI_ON_SMMU = '0000:0b:00.0';

const VTD_HOST: HostConfig = {
  iommus: [{ name: 'vtd0', model: 'vtd' }],
  devices: [{ name: PRI_NIC, iommu: 'vtd0', ats: true, pri: true, pasidBits: 8 }],
};
const SMMU_HOST: HostConfig = {
  iommus: [{ name: 'smmu0', model: 'smmuv3' }],
  devices: [
    { name: STALL_DEV, iommu: 'smmu0', streamIds: [0x40], stall: true },
    { name: PRI_ON_SMMU, iommu: 'smmu0', ats: true, pri: true, pasidBits: 4 },
  ],
};

/**
 * A process with /dev/iommu, device `name` (vfioN) bound, an IOAS, a fault
 * object and a fault-capable HWPT on the IOAS that the device is attached to.
 */
function boot(config: HostConfig, name: string, hwptFlags = 0) {
  const host = createHost(config);
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const node = host.device(name)?.path ?? '';
  const dev = proc.open(node);
  expect(dev).toBeGreaterThanOrEqual(3);
  const bound = vfioBind(proc, dev, fd);
  expect(bound.rc).toBe(0);
  const ioas = ioasAlloc(proc, fd);
  const fault = faultAlloc(proc, fd);
  expect(fault.rc).toBe(0);
  const hwpt = hwptAlloc(proc, fd, {
    devId: bound.devid,
    ptId: ioas,
    flags: IOMMU_HWPT_FAULT_ID_VALID | hwptFlags,
    faultId: fault.id,
  });
  expect(hwpt.rc, proc.lastError()?.reason).toBe(0);
  expect(vfioAttach(proc, dev, hwpt.id).rc).toBe(0);
  const done: DmaTransfer[] = [];
  host.onDmaComplete = (t) => done.push(t);
  return { host, proc, fd, dev, devid: bound.devid, ioas, fault, hwpt: hwpt.id, done };
}

type Booted = ReturnType<typeof boot>;

/** Map `pages` pages of fresh process memory at `iova`; returns their address. */
function mapPages(b: Booted, iova: bigint, pages: bigint): bigint {
  const va = b.proc.mmap(pages * PAGE);
  expect(map(b.proc, b.fd, b.ioas, va, pages * PAGE, iova).rc).toBe(0);
  return va;
}

describe('end to end: a PRI-capable PCI device on VT-d', () => {
  it('DMA write to an unmapped IOVA -> page request on the fault fd -> map + SUCCESS -> the retried write lands in memory', () => {
    const b = boot(VTD_HOST, PRI_NIC);
    const data = pattern(64, 7);
    const out = b.host.deviceDma(PRI_NIC, { iova: IOVA + 0x100n, data });
    expect(out?.status).toBe('page-request');
    expect(b.host.pendingDma()).toHaveLength(1);
    expect(b.host.pendingDma()[0]).toMatchObject({ device: PRI_NIC, state: 'waiting' });
    expect(b.proc.poll(b.fault.faultFd) & 0x1).toBe(0x1);

    const { rc, records } = readFaults(b.proc, b.fault.faultFd);
    expect(rc).toBe(40);
    expect(records[0]).toMatchObject({
      flags: LAST,
      dev_id: b.devid,
      pasid: 0,
      perm: IOMMU_PGFAULT_PERM_WRITE,
      addr: IOVA,
      length: 0,
      cookie: 1,
    });

    // User space resolves the fault: maps the page, then answers SUCCESS.
    const va = mapPages(b, IOVA, 1n);
    const vtd = b.host.iommus.get('vtd0') as VtdIommu;
    expect(vtd.pendingPageRequests()).toHaveLength(1);
    expect(respond(b.proc, b.fault.faultFd, [1, SUCCESS])).toBe(8);
    expect(vtd.pendingPageRequests()).toHaveLength(0);
    expect(vtd.responses.at(-1)).toMatchObject({ code: 0, prgIndex: records[0]?.grpid });
    expect(b.host.pendingDma()).toHaveLength(0);
    expect(b.done.map((t) => t.state)).toEqual(['done']);
    expect(b.host.dmaLog[0]).toMatchObject({ state: 'done', pageRequests: 1 });
    expect(b.proc.readMemory(va + 0x100n, data.length)).toEqual(data);
    expect(b.host.internalErrors).toBe(0);
  });

  it('a retried transfer that reaches another unmapped page raises a new request; reads come back with the data', () => {
    const b = boot(VTD_HOST, PRI_NIC);
    const va = b.proc.mmap(2n * PAGE);
    const data = pattern(Number(2n * PAGE), 3);
    expect(b.proc.writeMemory(va, data)).toBe(0);
    const out = b.host.deviceDma(PRI_NIC, { iova: IOVA, length: data.length });
    expect(out?.status).toBe('page-request');
    // Map only the first page and answer: the retry stops at the second.
    expect(map(b.proc, b.fd, b.ioas, va, PAGE, IOVA).rc).toBe(0);
    const first = readFaults(b.proc, b.fault.faultFd).records;
    expect(first.map((r) => [r.addr, r.perm])).toEqual([[IOVA, IOMMU_PGFAULT_PERM_READ]]);
    expect(respond(b.proc, b.fault.faultFd, [first[0]?.cookie ?? 0, SUCCESS])).toBe(8);
    expect(b.host.pendingDma()).toHaveLength(1);
    const second = readFaults(b.proc, b.fault.faultFd).records;
    expect(second.map((r) => r.addr)).toEqual([IOVA + PAGE]);
    expect(second[0]?.cookie).toBe(1); // the first cookie was freed and is the lowest again
    expect(map(b.proc, b.fd, b.ioas, va + PAGE, PAGE, IOVA + PAGE).rc).toBe(0);
    expect(respond(b.proc, b.fault.faultFd, [1, SUCCESS])).toBe(8);
    const t = b.host.dmaLog[0];
    expect(t).toMatchObject({ state: 'done', pageRequests: 2 });
    expect(t?.outcome.status).toBe('done');
    expect(t?.outcome.data).toEqual(data);
    expect(b.done).toHaveLength(1);
  });

  it('INVALID aborts the transfer: memory is unchanged even with the page mapped', () => {
    const b = boot(VTD_HOST, PRI_NIC);
    const va = b.proc.mmap(PAGE);
    const before = b.proc.readMemory(va, 64);
    const out = b.host.deviceDma(PRI_NIC, { iova: IOVA, data: pattern(64, 9) });
    expect(out?.status).toBe('page-request');
    expect(map(b.proc, b.fd, b.ioas, va, PAGE, IOVA).rc).toBe(0);
    const { records } = readFaults(b.proc, b.fault.faultFd);
    expect(respond(b.proc, b.fault.faultFd, [records[0]?.cookie ?? 0, INVALID])).toBe(8);
    expect(b.done.map((t) => [t.state, t.outcome.status, t.outcome.bytes])).toEqual([
      ['aborted', 'fault', 0],
    ]);
    expect(b.proc.readMemory(va, 64)).toEqual(before);
    const vtd = b.host.iommus.get('vtd0') as VtdIommu;
    expect(vtd.responses.at(-1)?.code).toBe(1);
  });

  it("a request on a PASID goes to that PASID's fault HWPT and carries it", () => {
    const b = boot(VTD_HOST, PRI_NIC, IOMMU_HWPT_ALLOC_PASID);
    // The RID stays on the PASID-compatible fault HWPT; PASID 3 gets one too.
    const pasidHwpt = hwptAlloc(b.proc, b.fd, {
      devId: b.devid,
      ptId: b.ioas,
      flags: IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID,
      faultId: b.fault.id,
    });
    expect(pasidHwpt.rc).toBe(0);
    expect(vfioAttachPasid(b.proc, b.dev, pasidHwpt.id, 3), b.proc.lastError()?.reason).toBe(0);
    const out = b.host.deviceDma(PRI_NIC, { iova: IOVA, data: pattern(8, 1), pasid: 3 });
    expect(out?.status).toBe('page-request');
    const { records } = readFaults(b.proc, b.fault.faultFd);
    expect(records[0]).toMatchObject({ flags: PASID_VALID | LAST, pasid: 3, dev_id: b.devid });
    const va = mapPages(b, IOVA, 1n);
    expect(respond(b.proc, b.fault.faultFd, [records[0]?.cookie ?? 0, SUCCESS])).toBe(8);
    expect(b.proc.readMemory(va, 8)).toEqual(pattern(8, 1));
  });

  it('detaching the device aborts a transfer waiting for its answer', () => {
    const b = boot(VTD_HOST, PRI_NIC);
    expect(b.host.deviceDma(PRI_NIC, { iova: IOVA, length: 8 })?.status).toBe('page-request');
    expect(readFaults(b.proc, b.fault.faultFd).rc).toBe(40);
    expect(vfioDetach(b.proc, b.dev)).toBe(0);
    expect(b.host.pendingDma()).toHaveLength(0);
    expect(b.done.map((t) => t.state)).toEqual(['aborted']);
    expect(respond(b.proc, b.fault.faultFd, [1, SUCCESS])).toBe(-22);
  });

  it('closing everything answers and aborts what is left; nothing stays pinned', () => {
    const b = boot(VTD_HOST, PRI_NIC);
    expect(b.host.deviceDma(PRI_NIC, { iova: IOVA, length: 8 })?.status).toBe('page-request');
    mapPages(b, IOVA + 0x100000n, 4n);
    b.proc.exit();
    expect(b.done.map((t) => t.state)).toEqual(['aborted']);
    expect(b.host.pinnedPages()).toBe(0);
    expect(b.host.internalErrors).toBe(0);
  });
});

describe('end to end: a stall-capable platform device on SMMUv3', () => {
  it('DMA write to an unmapped IOVA stalls -> fault fd -> map + SUCCESS -> RESUME retry -> the bytes land', () => {
    const b = boot(SMMU_HOST, STALL_DEV);
    const smmu = b.host.iommus.get('smmu0') as Smmuv3Iommu;
    const data = pattern(100, 5);
    const out = b.host.deviceDma(STALL_DEV, { iova: IOVA + 0x10n, data });
    expect(out?.status).toBe('page-request');
    expect(smmu.pendingStallTags()).toHaveLength(1);
    const { records } = readFaults(b.proc, b.fault.faultFd);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      flags: LAST,
      dev_id: b.devid,
      perm: IOMMU_PGFAULT_PERM_WRITE,
      addr: IOVA + 0x10n, // a stall reports the input address itself
      grpid: smmu.pendingStallTags()[0],
    });
    const va = mapPages(b, IOVA, 1n);
    expect(respond(b.proc, b.fault.faultFd, [records[0]?.cookie ?? 0, SUCCESS])).toBe(8);
    expect(smmu.pendingStallTags()).toEqual([]);
    expect(smmu.recentCommands().some((c) => c.name === 'RESUME' && c.fields.Resp === 1)).toBe(
      true,
    );
    expect(b.done.map((t) => t.state)).toEqual(['done']);
    expect(b.proc.readMemory(va + 0x10n, data.length)).toEqual(data);
  });

  it('INVALID terminates the stalled transaction (RESUME abort) and memory is unchanged', () => {
    const b = boot(SMMU_HOST, STALL_DEV);
    const smmu = b.host.iommus.get('smmu0') as Smmuv3Iommu;
    const va = b.proc.mmap(PAGE);
    const out = b.host.deviceDma(STALL_DEV, { iova: IOVA, data: pattern(16, 2) });
    expect(out?.status).toBe('page-request');
    expect(map(b.proc, b.fd, b.ioas, va, PAGE, IOVA).rc).toBe(0);
    const { records } = readFaults(b.proc, b.fault.faultFd);
    expect(respond(b.proc, b.fault.faultFd, [records[0]?.cookie ?? 0, INVALID])).toBe(8);
    expect(smmu.recentCommands().at(-1)).toMatchObject({ name: 'RESUME', fields: { Resp: 2 } });
    expect(b.done.map((t) => t.state)).toEqual(['aborted']);
    expect(b.proc.readMemory(va, 16)).toEqual(new Uint8Array(16));
  });

  it('a PRI request from a PCI device on SMMUv3 is denied by the hardware side and never reaches the fault fd', () => {
    const b = boot(SMMU_HOST, PRI_ON_SMMU, IOMMU_HWPT_ALLOC_PASID);
    const smmu = b.host.iommus.get('smmu0') as Smmuv3Iommu;
    const reported = b.host.iopf.stats().reported;
    const out = b.host.deviceDma(PRI_ON_SMMU, { iova: IOVA, length: 4 });
    expect(out?.status).toBe('fault');
    expect(b.host.iopf.stats().reported).toBe(reported);
    expect(readFaults(b.proc, b.fault.faultFd).rc).toBe(0);
    expect(b.proc.poll(b.fault.faultFd)).toBe(0x4); // POLLOUT only
    expect(b.host.pendingDma()).toHaveLength(0);
    expect(b.host.dmaLog).toHaveLength(0);
    expect(smmu.recentCommands().at(-1)?.name).toBe('PRI_RESP');
  });
});
