/**
 * The VFIO device cdev (/dev/vfio/devices/vfioN) on a host with a VT-d and
 * an SMMUv3: BIND_IOMMUFD, ATTACH_IOMMUFD_PT (automatic HWPTs, reuse,
 * replace), DETACH, the reserved regions each IOMMU puts into the IOAS, the
 * lifetime of the binding and of the context, and device DMA through it.
 */
import {
  EADDRINUSE,
  EBADF,
  EBADFD,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOENT,
  structs,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type Host, type HostConfig, type Process } from '../src/index.js';
import { destroy, ioasAlloc, iovaRanges, map, PAGE, U64_MAX, unmap } from './helpers.js';
import {
  filledBuffer,
  firstDifference,
  objectsOf,
  pattern,
  vfioAttach,
  vfioBind,
  vfioDetach,
} from './helpers-c.js';

const NIC = '0000:01:00.0';
const DMA0 = 'dma0';
const NIC2 = '0000:02:00.0';
const CONFIG: HostConfig = {
  iommus: [
    { name: 'vtd0', model: 'vtd' },
    { name: 'smmu0', model: 'smmuv3' },
  ],
  devices: [
    { name: NIC, iommu: 'vtd0' },
    { name: DMA0, iommu: 'smmu0', streamIds: [0x100] },
    { name: NIC2, iommu: 'vtd0' },
  ],
};
const VFIO_NIC = '/dev/vfio/devices/vfio0';
const VFIO_DMA0 = '/dev/vfio/devices/vfio1';
const VFIO_NIC2 = '/dev/vfio/devices/vfio2';
/** The interrupt window VT-d reserves for every device. */
const VTD_MSI = { start: 0xfee00000n, last: 0xfeefffffn };
/** The software MSI window the SMMUv3 driver reserves. */
const SMMU_SW_MSI = { start: 0x8000000n, last: 0x80fffffn };
const IOVA = 0x100000n;
const SIZE = 8n * PAGE;

function boot() {
  const host = createHost(CONFIG);
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  expect(fd).toBeGreaterThanOrEqual(3);
  return { host, proc, fd };
}

/** The last IOVA of a paging domain of `iommu` (from the hardware model, not the iommufd model). */
function apertureLast(host: Host, iommu: string): bigint {
  const instance = host.iommus.get(iommu);
  if (instance === undefined) throw new Error(`no IOMMU ${iommu}`);
  return BigInt(instance.domainGeometry().apertureLast);
}

function openBound(proc: Process, fd: number, path: string): { dev: number; devid: number } {
  const dev = proc.open(path);
  expect(dev).toBeGreaterThanOrEqual(3);
  const bound = vfioBind(proc, dev, fd);
  expect(bound.rc).toBe(0);
  return { dev, devid: bound.devid };
}

function hwptsOf(proc: Process, fd: number, ioas: number): { id: number; iommu: string }[] {
  return (proc.inspect(fd)?.ioas.find((i) => i.id === ioas)?.hwpts ?? []).map((h) => ({
    id: h.id,
    iommu: h.iommu,
  }));
}

function finish(host: Host, proc: Process, ...fds: number[]): void {
  for (const f of fds) expect(proc.close(f)).toBe(0);
  expect(proc.openFiles()).toEqual([]);
  expect(host.pinnedPages()).toBe(0);
  expect(host.internalErrors).toBe(0);
}

describe('VFIO cdev: open and bind', () => {
  it('each configured device has a node in configuration order; an unknown node → ENOENT', () => {
    const { host, proc, fd } = boot();
    expect(host.devices.map((d) => [d.name, d.path])).toEqual([
      [NIC, VFIO_NIC],
      [DMA0, VFIO_DMA0],
      [NIC2, VFIO_NIC2],
    ]);
    expect(proc.open('/dev/vfio/devices/vfio3')).toBe(-ENOENT);
    expect(proc.lastError()?.name).toBe('ENOENT');
    expect(proc.open('/dev/vfio/devices/')).toBe(-ENOENT);
    finish(host, proc, fd);
  });

  it('before BIND every device ioctl → EINVAL and nothing is bound', () => {
    const { host, proc, fd } = boot();
    const dev = proc.open(VFIO_NIC);
    const ioas = ioasAlloc(proc, fd);
    expect(vfioAttach(proc, dev, ioas).rc).toBe(-EINVAL);
    expect(vfioDetach(proc, dev)).toBe(-EINVAL);
    // Any other number too (VFIO_DEVICE_GET_INFO is ';' 107).
    expect(proc.ioctl(dev, 0x3b6b, new Uint8Array(16))).toBe(-EINVAL);
    expect(proc.lastError()?.name).toBe('EINVAL');
    expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`]);
    expect(host.deviceDma(NIC, { iova: 0, length: 4 })?.status).toBe('fault');
    finish(host, proc, dev, fd);
  });

  it('BIND returns the new device object id; it cannot be destroyed while bound (20)', () => {
    const { host, proc, fd } = boot();
    const ioas = ioasAlloc(proc, fd);
    const { dev, devid } = openBound(proc, fd, VFIO_NIC);
    expect(devid).toBe(ioas + 1);
    expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`, `${devid}:DEVICE`]);
    expect(destroy(proc, fd, devid)).toBe(-EBUSY);
    expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`, `${devid}:DEVICE`]);
    // A bound device is blocked until it attaches.
    expect(host.deviceDma(NIC, { iova: 0, length: 4 })?.status).toBe('fault');
    finish(host, proc, dev, fd);
  });

  it('BIND errors: NULL → EFAULT, argsz too small or unknown flags → EINVAL, a closed fd → EBADF, not /dev/iommu → EBADFD; nothing bound', () => {
    const { host, proc, fd } = boot();
    const dev = proc.open(VFIO_NIC);
    const other = proc.open(VFIO_DMA0);
    expect(proc.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, 0n)).toBe(-EFAULT);
    const short = structs.vfio_device_bind_iommufd.encode({ argsz: 12, flags: 0, iommufd: fd });
    expect(proc.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, short)).toBe(-EINVAL);
    expect(vfioBind(proc, dev, fd, 2).rc).toBe(-EINVAL);
    expect(vfioBind(proc, dev, 77).rc).toBe(-EBADF);
    expect(vfioBind(proc, dev, other).rc).toBe(-EBADFD);
    expect(proc.lastError()?.name).toBe('EBADFD');
    expect(objectsOf(proc, fd)).toEqual([]);
    // The failures left the fd unbound: a good BIND still works.
    expect(vfioBind(proc, dev, fd).rc).toBe(0);
    finish(host, proc, dev, other, fd);
  });

  it('binding twice → EINVAL, on the same fd or on a second fd of the same device (the cdev allows one open)', () => {
    const { host, proc, fd } = boot();
    const { dev, devid } = openBound(proc, fd, VFIO_NIC);
    expect(vfioBind(proc, dev, fd).rc).toBe(-EINVAL);
    const fd2 = proc.open('/dev/iommu');
    expect(vfioBind(proc, dev, fd2).rc).toBe(-EINVAL);
    const again = proc.open(VFIO_NIC);
    expect(again).toBeGreaterThanOrEqual(3);
    expect(vfioBind(proc, again, fd).rc).toBe(-EINVAL);
    expect(vfioBind(proc, again, fd2).rc).toBe(-EINVAL);
    expect(proc.lastError()?.name).toBe('EINVAL');
    expect(objectsOf(proc, fd)).toEqual([`${devid}:DEVICE`]);
    expect(objectsOf(proc, fd2)).toEqual([]);
    // The unbound second fd is still refused everything else.
    expect(vfioDetach(proc, again)).toBe(-EINVAL);
    finish(host, proc, again, dev, fd2, fd);
  });
});

describe('VFIO cdev: attach, replace, detach', () => {
  it('ATTACH to an IOAS makes an automatic HWPT (pt_id written back); a second VT-d device reuses it, the SMMU device gets its own; the ranges narrow', () => {
    const { host, proc, fd } = boot();
    const ioas = ioasAlloc(proc, fd);
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual([{ start: 0n, last: U64_MAX }]);
    const nic = openBound(proc, fd, VFIO_NIC);
    const vtd = vfioAttach(proc, nic.dev, ioas);
    expect(vtd.rc).toBe(0);
    expect(vtd.ptId).not.toBe(ioas);
    expect(objectsOf(proc, fd)).toContain(`${vtd.ptId}:HWPT_PAGING`);
    expect(hwptsOf(proc, fd, ioas)).toEqual([{ id: vtd.ptId, iommu: 'vtd0' }]);
    const vtdLast = apertureLast(host, 'vtd0');
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual([
      { start: 0n, last: VTD_MSI.start - 1n },
      { start: VTD_MSI.last + 1n, last: vtdLast },
    ]);
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(PAGE);

    const nic2 = openBound(proc, fd, VFIO_NIC2);
    const reused = vfioAttach(proc, nic2.dev, ioas);
    expect(reused).toEqual({ rc: 0, ptId: vtd.ptId });
    expect(hwptsOf(proc, fd, ioas)).toHaveLength(1);

    const dma0 = openBound(proc, fd, VFIO_DMA0);
    const smmu = vfioAttach(proc, dma0.dev, ioas);
    expect(smmu.rc).toBe(0);
    expect(smmu.ptId).not.toBe(vtd.ptId);
    expect(hwptsOf(proc, fd, ioas)).toEqual([
      { id: vtd.ptId, iommu: 'vtd0' },
      { id: smmu.ptId, iommu: 'smmu0' },
    ]);
    const last = vtdLast < apertureLast(host, 'smmu0') ? vtdLast : apertureLast(host, 'smmu0');
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual([
      { start: 0n, last: SMMU_SW_MSI.start - 1n },
      { start: SMMU_SW_MSI.last + 1n, last: VTD_MSI.start - 1n },
      { start: VTD_MSI.last + 1n, last },
    ]);
    // The HWPTs and the IOAS are held by the attachments.
    expect(destroy(proc, fd, vtd.ptId)).toBe(-EBUSY);
    expect(destroy(proc, fd, ioas)).toBe(-EBUSY);
    finish(host, proc, nic.dev, nic2.dev, dma0.dev, fd);
  });

  it('ATTACH with a HWPT id uses that HWPT; another IOMMU cannot use it (EINVAL); an unknown id → ENOENT; an object of another type → EINVAL', () => {
    const { host, proc, fd } = boot();
    const ioas = ioasAlloc(proc, fd);
    const nic = openBound(proc, fd, VFIO_NIC);
    const vtd = vfioAttach(proc, nic.dev, ioas);
    const nic2 = openBound(proc, fd, VFIO_NIC2);
    expect(vfioAttach(proc, nic2.dev, 99).rc).toBe(-ENOENT);
    expect(vfioAttach(proc, nic2.dev, nic.devid).rc).toBe(-EINVAL);
    expect(vfioAttach(proc, nic2.dev, vtd.ptId)).toEqual({ rc: 0, ptId: vtd.ptId });
    const dma0 = openBound(proc, fd, VFIO_DMA0);
    expect(vfioAttach(proc, dma0.dev, vtd.ptId).rc).toBe(-EINVAL);
    expect(proc.lastError()?.name).toBe('EINVAL');
    // The failed attach left the SMMU device blocked and the IOAS as it was.
    expect(hwptsOf(proc, fd, ioas)).toEqual([{ id: vtd.ptId, iommu: 'vtd0' }]);
    expect(iovaRanges(proc, fd, ioas).ranges).toHaveLength(2);
    expect(host.deviceDma(DMA0, { iova: 0, length: 4 })?.status).toBe('fault');
    // ATTACH argument checks.
    const badFlags = structs.vfio_device_attach_iommufd_pt.encode({
      argsz: 16,
      flags: 2,
      pt_id: ioas,
    });
    expect(proc.ioctl(dma0.dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, badFlags)).toBe(-EINVAL);
    const short = structs.vfio_device_attach_iommufd_pt.encode({ argsz: 8, flags: 0, pt_id: ioas });
    expect(proc.ioctl(dma0.dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, short)).toBe(-EINVAL);
    expect(proc.ioctl(dma0.dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, 0n)).toBe(-EFAULT);
    expect(hwptsOf(proc, fd, ioas)).toHaveLength(1);
    finish(host, proc, nic.dev, nic2.dev, dma0.dev, fd);
  });

  it('ATTACH → EADDRINUSE when an area lies in a reserved region of the device or outside the aperture; nothing changes and the device stays blocked', () => {
    const cases: { path: string; name: string; iova: (h: Host) => bigint }[] = [
      { path: VFIO_NIC, name: NIC, iova: () => VTD_MSI.start },
      { path: VFIO_NIC, name: NIC, iova: () => VTD_MSI.last + 1n - PAGE },
      { path: VFIO_NIC, name: NIC, iova: (h) => apertureLast(h, 'vtd0') + 1n },
      { path: VFIO_DMA0, name: DMA0, iova: () => SMMU_SW_MSI.start + PAGE },
      { path: VFIO_DMA0, name: DMA0, iova: (h) => apertureLast(h, 'smmu0') + 1n },
    ];
    for (const c of cases) {
      const { host, proc, fd } = boot();
      const ioas = ioasAlloc(proc, fd);
      const buf = filledBuffer(proc, Number(PAGE), 1);
      const at = c.iova(host);
      expect(map(proc, fd, ioas, buf, PAGE, at).rc).toBe(0);
      const { dev, devid } = openBound(proc, fd, c.path);
      expect(vfioAttach(proc, dev, ioas).rc).toBe(-EADDRINUSE);
      expect(proc.lastError()?.name).toBe('EADDRINUSE');
      expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`, `${devid}:DEVICE`]);
      expect(iovaRanges(proc, fd, ioas)).toMatchObject({
        ranges: [{ start: 0n, last: U64_MAX }],
        alignment: 1n,
      });
      expect(host.pinnedPages()).toBe(0);
      expect(host.deviceDma(c.name, { iova: at, length: 4 })?.status).toBe('fault');
      // Without the area the same attach works.
      expect(unmap(proc, fd, ioas, at, PAGE).rc).toBe(0);
      expect(vfioAttach(proc, dev, ioas).rc).toBe(0);
      finish(host, proc, dev, fd);
    }
  });

  it('ATTACH again replaces: a new IOAS gets a new HWPT, the old one is freed and the old IOAS gets its ranges back; the same IOAS again is a no-op', () => {
    const { host, proc, fd } = boot();
    const first = ioasAlloc(proc, fd);
    const second = ioasAlloc(proc, fd);
    const nic = openBound(proc, fd, VFIO_NIC);
    const a = vfioAttach(proc, nic.dev, first);
    expect(a.rc).toBe(0);
    expect(vfioAttach(proc, nic.dev, first)).toEqual({ rc: 0, ptId: a.ptId });
    expect(vfioAttach(proc, nic.dev, a.ptId)).toEqual({ rc: 0, ptId: a.ptId });
    const b = vfioAttach(proc, nic.dev, second);
    expect(b.rc).toBe(0);
    expect(b.ptId).not.toBe(a.ptId);
    expect(objectsOf(proc, fd)).not.toContain(`${a.ptId}:HWPT_PAGING`);
    expect(hwptsOf(proc, fd, first)).toEqual([]);
    expect(iovaRanges(proc, fd, first).ranges).toEqual([{ start: 0n, last: U64_MAX }]);
    expect(iovaRanges(proc, fd, second).ranges).toHaveLength(2);
    // The freed HWPT id is gone.
    expect(vfioAttach(proc, nic.dev, a.ptId).rc).toBe(-ENOENT);
    expect(hwptsOf(proc, fd, second)).toEqual([{ id: b.ptId, iommu: 'vtd0' }]);
    expect(destroy(proc, fd, first)).toBe(0);
    expect(destroy(proc, fd, second)).toBe(-EBUSY);
    finish(host, proc, nic.dev, fd);
  });

  it('DETACH frees the automatic HWPT and gives the IOAS its ranges back; DETACH when not attached → 0', () => {
    const { host, proc, fd } = boot();
    const ioas = ioasAlloc(proc, fd);
    const nic = openBound(proc, fd, VFIO_NIC);
    expect(vfioDetach(proc, nic.dev)).toBe(0);
    const a = vfioAttach(proc, nic.dev, ioas);
    expect(a.rc).toBe(0);
    expect(vfioDetach(proc, nic.dev)).toBe(0);
    expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`, `${nic.devid}:DEVICE`]);
    expect(iovaRanges(proc, fd, ioas)).toMatchObject({
      ranges: [{ start: 0n, last: U64_MAX }],
      alignment: 1n,
    });
    expect(vfioDetach(proc, nic.dev)).toBe(0);
    // The freed HWPT id is handed out again (lowest free id).
    expect(ioasAlloc(proc, fd)).toBe(a.ptId);
    const bad = structs.vfio_device_detach_iommufd_pt.encode({ argsz: 12, flags: 2 });
    expect(proc.ioctl(nic.dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, bad)).toBe(-EINVAL);
    finish(host, proc, nic.dev, fd);
  });
});

describe('VFIO cdev: lifetime', () => {
  it('closing the device fd unbinds: the device object and its HWPT go, the id is reused, and the device can be bound again', () => {
    const { host, proc, fd } = boot();
    const ioas = ioasAlloc(proc, fd);
    const buf = filledBuffer(proc, Number(SIZE), 2);
    expect(map(proc, fd, ioas, buf, SIZE, IOVA).rc).toBe(0);
    const nic = openBound(proc, fd, VFIO_NIC);
    const a = vfioAttach(proc, nic.dev, ioas);
    expect(a.rc).toBe(0);
    expect(host.pinnedPages()).toBe(Number(SIZE / PAGE));
    expect(proc.close(nic.dev)).toBe(0);
    expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`]);
    expect(host.pinnedPages()).toBe(0);
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual([{ start: 0n, last: U64_MAX }]);
    expect(host.deviceDma(NIC, { iova: IOVA, length: 4 })?.status).toBe('fault');
    // Lowest free id first: the device's old id.
    const again = openBound(proc, fd, VFIO_NIC);
    expect(again.devid).toBe(nic.devid);
    expect(vfioAttach(proc, again.dev, ioas).rc).toBe(0);
    expect(host.deviceDma(NIC, { iova: IOVA, length: 4 })?.status).toBe('done');
    finish(host, proc, again.dev, fd);
  });

  it('closing /dev/iommu while a device is bound keeps the context (its IOAS, HWPT and pins) until the device fd closes', () => {
    const { host, proc, fd } = boot();
    const ioas = ioasAlloc(proc, fd);
    const buf = filledBuffer(proc, Number(SIZE), 3);
    expect(map(proc, fd, ioas, buf, SIZE, IOVA).rc).toBe(0);
    const nic = openBound(proc, fd, VFIO_NIC);
    expect(vfioAttach(proc, nic.dev, ioas).rc).toBe(0);
    expect(proc.close(fd)).toBe(0);
    expect(host.pinnedPages()).toBe(Number(SIZE / PAGE));
    // The device still translates through the live context.
    const read = host.deviceDma(NIC, { iova: IOVA + 5n, length: 16 });
    expect(read?.status).toBe('done');
    expect(read?.data).toEqual(pattern(Number(SIZE), 3).subarray(5, 21));
    expect(vfioDetach(proc, nic.dev)).toBe(0);
    expect(host.pinnedPages()).toBe(0);
    expect(vfioAttach(proc, nic.dev, ioas).rc).toBe(0);
    expect(host.pinnedPages()).toBe(Number(SIZE / PAGE));
    expect(proc.close(nic.dev)).toBe(0);
    expect(host.pinnedPages()).toBe(0);
    expect(host.deviceDma(NIC, { iova: IOVA, length: 4 })?.status).toBe('fault');
    finish(host, proc);
  });
});

describe('VFIO cdev: device DMA', () => {
  for (const [name, path] of [
    [NIC, VFIO_NIC],
    [DMA0, VFIO_DMA0],
  ] as const) {
    it(`${name}: after MAP and ATTACH a device write lands in process memory and a read returns it; unattached and detached devices are blocked`, () => {
      const { host, proc, fd } = boot();
      const ioas = ioasAlloc(proc, fd);
      const buf = filledBuffer(proc, Number(SIZE), 4);
      const original = proc.readMemory(buf, Number(SIZE)) as Uint8Array;
      const { dev } = openBound(proc, fd, path);
      const data = pattern(100, 99);
      // Bound but not attached: blocked, memory unchanged.
      expect(map(proc, fd, ioas, buf, SIZE, IOVA).rc).toBe(0);
      const blocked = host.deviceDma(name, { iova: IOVA + 10n, data });
      expect(blocked?.status).toBe('fault');
      expect(firstDifference(proc.readMemory(buf, Number(SIZE)), original)).toBe('');

      expect(vfioAttach(proc, dev, ioas).rc).toBe(0);
      // A write across a page boundary.
      const at = PAGE - 40n;
      const wrote = host.deviceDma(name, { iova: IOVA + at, data });
      expect(wrote).toMatchObject({ status: 'done', bytes: 100 });
      const expected = original.slice();
      expected.set(data, Number(at));
      expect(firstDifference(proc.readMemory(buf, Number(SIZE)), expected)).toBe('');
      // The CPU writes and the device reads it back.
      const cpu = pattern(32, 7);
      expect(proc.writeMemory(buf + 3n * PAGE, cpu)).toBe(0);
      expect(host.deviceDma(name, { iova: IOVA + 3n * PAGE, length: 32 })?.data).toEqual(cpu);
      // Outside the mapping the device faults.
      expect(host.deviceDma(name, { iova: IOVA + SIZE, length: 4 })?.status).toBe('fault');

      // Detached: blocked again, memory unchanged.
      expect(vfioDetach(proc, dev)).toBe(0);
      const now = proc.readMemory(buf, Number(SIZE)) as Uint8Array;
      expect(host.deviceDma(name, { iova: IOVA, data: pattern(16, 5) })?.status).toBe('fault');
      expect(host.deviceDma(name, { iova: IOVA, length: 16 })?.status).toBe('fault');
      expect(firstDifference(proc.readMemory(buf, Number(SIZE)), now)).toBe('');
      finish(host, proc, dev, fd);
    });
  }

  it('a device attached to an IOAS sees an unmap at once: DMA to the unmapped range faults', () => {
    const { host, proc, fd } = boot();
    const ioas = ioasAlloc(proc, fd);
    const buf = filledBuffer(proc, Number(SIZE), 6);
    expect(map(proc, fd, ioas, buf, SIZE, IOVA).rc).toBe(0);
    const nic = openBound(proc, fd, VFIO_NIC);
    expect(vfioAttach(proc, nic.dev, ioas).rc).toBe(0);
    expect(host.deviceDma(NIC, { iova: IOVA, length: 8 })?.status).toBe('done');
    expect(unmap(proc, fd, ioas, IOVA, SIZE).rc).toBe(0);
    const before = proc.readMemory(buf, Number(SIZE)) as Uint8Array;
    expect(host.deviceDma(NIC, { iova: IOVA, data: pattern(8, 1) })?.status).toBe('fault');
    expect(firstDifference(proc.readMemory(buf, Number(SIZE)), before)).toBe('');
    expect(host.pinnedPages()).toBe(0);
    finish(host, proc, nic.dev, fd);
  });
});
