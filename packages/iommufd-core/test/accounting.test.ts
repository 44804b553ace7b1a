/**
 * Pinned-page accounting (kernel-semantics.md 1.7 and catalog 64): what
 * VFIO devices pinning guest RAM cost their process and user, seen through
 * proc.status() (VmLck, VmPin, the user's locked_vm) and MD_CHECK_REFS.
 */
import {
  EBUSY,
  ENOMEM,
  EPERM,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type Host, type HostConfig, type Process } from '../src/index.js';
import { checkRefs, ioasAlloc, iovaRanges, map, option, PAGE, U64_MAX } from './helpers.js';
import { filledBuffer, objectsOf, vfioAttach, vfioBind, vfioDetach } from './helpers-c.js';

const NICS = ['0000:01:00.0', '0000:02:00.0', '0000:03:00.0'];
const CONFIG: HostConfig = {
  selftest: true,
  iommus: [
    { name: 'vtd0', model: 'vtd' },
    { name: 'smmu0', model: 'smmuv3' },
  ],
  devices: [
    ...NICS.map((name) => ({ name, iommu: 'vtd0' })),
    { name: 'dma0', iommu: 'smmu0', streamIds: [0x100] },
  ],
};
const vfio = (i: number): string => `/dev/vfio/devices/vfio${i}`;
/** Guest RAM: 16 pages. */
const GUEST = 16n * PAGE;
const GUEST_IOVA = 0x100000n;

/** One VM: its own /dev/iommu, an IOAS and a bound device (not attached yet). */
interface Vm {
  readonly fd: number;
  readonly dev: number;
  readonly ioas: number;
}

function openVm(proc: Process, device: number): Vm {
  const fd = proc.open('/dev/iommu');
  const ioas = ioasAlloc(proc, fd);
  const dev = proc.open(vfio(device));
  expect(vfioBind(proc, dev, fd).rc).toBe(0);
  return { fd, dev, ioas };
}

function closeVm(proc: Process, vm: Vm): void {
  expect(proc.close(vm.dev)).toBe(0);
  expect(proc.close(vm.fd)).toBe(0);
}

/** status() in guest-RAM units, so expectations read as "1×", "2×". */
function charges(proc: Process): { user: bigint; vmLck: bigint; vmPin: bigint } {
  const s = proc.status();
  return {
    user: s.userLockedBytes / GUEST,
    vmLck: s.lockedBytes / GUEST,
    vmPin: s.pinnedBytes / GUEST,
  };
}

/** The pin count of every guest page, checked from a scratch /dev/iommu. */
function refs(proc: Process, guest: bigint, count: number): number {
  const fd = proc.open('/dev/iommu');
  const rc = checkRefs(proc, fd, guest, GUEST, count);
  expect(proc.close(fd)).toBe(0);
  return rc;
}

function finish(host: Host, ...procs: Process[]): void {
  for (const p of procs) {
    expect(p.openFiles()).toEqual([]);
    expect(p.status()).toMatchObject({ lockedBytes: 0n, pinnedBytes: 0n, userLockedBytes: 0n });
  }
  expect(host.pinnedPages()).toBe(0);
  expect(host.internalErrors).toBe(0);
}

describe('pinned-page accounting', () => {
  it('N devices, each with its own /dev/iommu, mapping the same guest RAM lock it N times (per-user charge and VmPin); closing each gives its share back', () => {
    const host = createHost(CONFIG);
    const proc = host.createProcess({ privileged: false, memlockLimitBytes: 1 << 20 });
    const guest = filledBuffer(proc, Number(GUEST), 1);
    const vms: Vm[] = [];
    for (let i = 0; i < NICS.length; i++) {
      const vm = openVm(proc, i);
      expect(map(proc, vm.fd, vm.ioas, guest, GUEST, GUEST_IOVA).rc).toBe(0);
      // A map without a domain pins nothing yet.
      expect(charges(proc)).toEqual({ user: BigInt(i), vmLck: 0n, vmPin: BigInt(i) });
      expect(vfioAttach(proc, vm.dev, vm.ioas).rc).toBe(0);
      expect(charges(proc)).toEqual({ user: BigInt(i + 1), vmLck: 0n, vmPin: BigInt(i + 1) });
      expect(refs(proc, guest, i + 1)).toBe(0);
      vms.push(vm);
    }
    // The pages are the same 16: pinned N times, not N × 16 pages.
    expect(host.pinnedPages()).toBe(16);
    for (let i = vms.length - 1; i >= 0; i--) {
      closeVm(proc, vms[i] as Vm);
      expect(charges(proc)).toEqual({ user: BigInt(i), vmLck: 0n, vmPin: BigInt(i) });
      expect(refs(proc, guest, i)).toBe(0);
    }
    finish(host, proc);
  });

  it('N devices on one IOAS lock the guest RAM once, whichever IOMMUs they sit behind and whenever they attach', () => {
    const host = createHost(CONFIG);
    const proc = host.createProcess({ privileged: false, memlockLimitBytes: 1 << 20 });
    const guest = filledBuffer(proc, Number(GUEST), 2);
    const fd = proc.open('/dev/iommu');
    const ioas = ioasAlloc(proc, fd);
    const devs: number[] = [];
    for (let i = 0; i < 4; i++) {
      const dev = proc.open(vfio(i));
      expect(vfioBind(proc, dev, fd).rc).toBe(0);
      devs.push(dev);
    }
    expect(vfioAttach(proc, devs[0] as number, ioas).rc).toBe(0);
    expect(map(proc, fd, ioas, guest, GUEST, GUEST_IOVA).rc).toBe(0);
    expect(charges(proc)).toEqual({ user: 1n, vmLck: 0n, vmPin: 1n });
    for (const dev of devs.slice(1)) {
      expect(vfioAttach(proc, dev, ioas).rc).toBe(0);
      expect(charges(proc)).toEqual({ user: 1n, vmLck: 0n, vmPin: 1n });
      expect(refs(proc, guest, 1)).toBe(0);
    }
    // Two HWPTs (VT-d and SMMUv3), one pin of each page.
    expect(proc.inspect(fd)?.ioas[0]?.hwpts.map((h) => h.iommu)).toEqual(['vtd0', 'smmu0']);
    // The pages stay pinned until the last domain leaves.
    for (const dev of devs.slice(0, 3)) {
      expect(vfioDetach(proc, dev)).toBe(0);
      expect(charges(proc)).toEqual({ user: 1n, vmLck: 0n, vmPin: 1n });
    }
    expect(vfioDetach(proc, devs[3] as number)).toBe(0);
    expect(charges(proc)).toEqual({ user: 0n, vmLck: 0n, vmPin: 0n });
    expect(refs(proc, guest, 0)).toBe(0);
    for (const dev of devs) expect(proc.close(dev)).toBe(0);
    expect(proc.close(fd)).toBe(0);
    finish(host, proc);
  });

  it('64: over RLIMIT_MEMLOCK → ENOMEM with rollback, whether the attach or the map is the pin that goes over', () => {
    const host = createHost(CONFIG);
    const proc = host.createProcess({
      privileged: false,
      memlockLimitBytes: (GUEST * 5n) / 2n,
    });
    const guest = filledBuffer(proc, Number(GUEST), 3);
    const vms = [openVm(proc, 0), openVm(proc, 1)];
    for (const vm of vms) {
      expect(map(proc, vm.fd, vm.ioas, guest, GUEST, GUEST_IOVA).rc).toBe(0);
      expect(vfioAttach(proc, vm.dev, vm.ioas).rc).toBe(0);
    }
    expect(charges(proc)).toEqual({ user: 2n, vmLck: 0n, vmPin: 2n });

    // The third VM: map first, then the attach has to pin and goes over.
    const third = openVm(proc, 2);
    expect(map(proc, third.fd, third.ioas, guest, GUEST, GUEST_IOVA).rc).toBe(0);
    expect(vfioAttach(proc, third.dev, third.ioas).rc).toBe(-ENOMEM);
    expect(proc.lastError()?.name).toBe('ENOMEM');
    expect(objectsOf(proc, third.fd)).toEqual([`${third.ioas}:IOAS`, `${third.ioas + 1}:DEVICE`]);
    expect(iovaRanges(proc, third.fd, third.ioas).ranges).toEqual([{ start: 0n, last: U64_MAX }]);
    expect(charges(proc)).toEqual({ user: 2n, vmLck: 0n, vmPin: 2n });
    expect(refs(proc, guest, 2)).toBe(0);
    expect(host.deviceDma(NICS[2] as string, { iova: GUEST_IOVA, length: 4 })?.status).toBe(
      'fault',
    );

    // Attach first (nothing to pin), then the map goes over and leaves no area.
    const empty = ioasAlloc(proc, third.fd);
    expect(vfioAttach(proc, third.dev, empty).rc).toBe(0);
    expect(map(proc, third.fd, empty, guest, GUEST, GUEST_IOVA).rc).toBe(-ENOMEM);
    expect(proc.inspect(third.fd)?.ioas.find((i) => i.id === empty)?.areas).toEqual([]);
    expect(charges(proc)).toEqual({ user: 2n, vmLck: 0n, vmPin: 2n });
    expect(refs(proc, guest, 2)).toBe(0);
    // A map that fits (half the RAM) still works.
    expect(map(proc, third.fd, empty, guest, GUEST / 2n, GUEST_IOVA).rc).toBe(0);
    expect(proc.status().userLockedBytes).toBe((GUEST * 5n) / 2n);

    // Once a VM goes away the room is back.
    closeVm(proc, vms[0] as Vm);
    expect(map(proc, third.fd, empty, guest + GUEST / 2n, GUEST / 2n).rc).toBe(0);
    expect(charges(proc)).toEqual({ user: 2n, vmLck: 0n, vmPin: 2n });
    closeVm(proc, vms[1] as Vm);
    closeVm(proc, third);
    finish(host, proc);
  });

  it("the per-user charge is shared by the user's processes: another process of the same user hits the limit, one of another user does not", () => {
    const host = createHost(CONFIG);
    const limit = (GUEST * 5n) / 2n;
    const a = host.createProcess({ privileged: false, uid: 1000, memlockLimitBytes: limit });
    const b = host.createProcess({ privileged: false, uid: 1000, memlockLimitBytes: limit });
    const c = host.createProcess({ privileged: false, uid: 1001, memlockLimitBytes: limit });
    const guestA = filledBuffer(a, Number(GUEST * 2n), 4);
    const vmA = openVm(a, 0);
    expect(vfioAttach(a, vmA.dev, vmA.ioas).rc).toBe(0);
    expect(map(a, vmA.fd, vmA.ioas, guestA, GUEST * 2n, GUEST_IOVA).rc).toBe(0);
    expect(charges(a)).toEqual({ user: 2n, vmLck: 0n, vmPin: 2n });
    // b pinned nothing, yet its user has 2× locked already.
    expect(charges(b)).toEqual({ user: 2n, vmLck: 0n, vmPin: 0n });

    const guestB = filledBuffer(b, Number(GUEST), 5);
    const vmB = openVm(b, 1);
    expect(vfioAttach(b, vmB.dev, vmB.ioas).rc).toBe(0);
    expect(map(b, vmB.fd, vmB.ioas, guestB, GUEST, GUEST_IOVA).rc).toBe(-ENOMEM);
    expect(charges(b)).toEqual({ user: 2n, vmLck: 0n, vmPin: 0n });

    const guestC = filledBuffer(c, Number(GUEST), 6);
    const vmC = openVm(c, 2);
    expect(vfioAttach(c, vmC.dev, vmC.ioas).rc).toBe(0);
    expect(map(c, vmC.fd, vmC.ioas, guestC, GUEST, GUEST_IOVA).rc).toBe(0);
    expect(charges(c)).toEqual({ user: 1n, vmLck: 0n, vmPin: 1n });
    expect(charges(a)).toEqual({ user: 2n, vmLck: 0n, vmPin: 2n });

    // When a lets go, b fits.
    closeVm(a, vmA);
    expect(map(b, vmB.fd, vmB.ioas, guestB, GUEST, GUEST_IOVA).rc).toBe(0);
    expect(charges(b)).toEqual({ user: 1n, vmLck: 0n, vmPin: 1n });
    closeVm(b, vmB);
    closeVm(c, vmC);
    finish(host, a, b, c);
  });

  it('RLIMIT_MODE 1 charges VmLck of the process instead of the user, with ENOMEM and rollback at its own limit', () => {
    const host = createHost(CONFIG);
    const limit = (GUEST * 3n) / 2n;
    // Root without CAP_IPC_LOCK, as the selftests run after drop_cap_ipc_lock.
    const proc = host.createProcess({ ipcLock: false, memlockLimitBytes: limit });
    const other = host.createProcess({ ipcLock: false, memlockLimitBytes: limit });
    expect(proc.status().ipcLock).toBe(false);
    const guest = filledBuffer(proc, Number(GUEST * 2n), 7);

    const vm: Vm = (() => {
      const fd = proc.open('/dev/iommu');
      expect(option(proc, fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 1n).rc).toBe(0);
      expect(option(proc, fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0)).toEqual({
        rc: 0,
        val64: 1n,
      });
      const ioas = ioasAlloc(proc, fd);
      // The mode is fixed once objects exist.
      expect(option(proc, fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 0n).rc).toBe(
        -EBUSY,
      );
      const dev = proc.open(vfio(0));
      expect(vfioBind(proc, dev, fd).rc).toBe(0);
      return { fd, dev, ioas };
    })();
    expect(vfioAttach(proc, vm.dev, vm.ioas).rc).toBe(0);
    expect(map(proc, vm.fd, vm.ioas, guest, GUEST, GUEST_IOVA).rc).toBe(0);
    expect(charges(proc)).toEqual({ user: 0n, vmLck: 1n, vmPin: 1n });
    expect(proc.inspect(vm.fd)?.accountMode).toBe('mm');
    // Another 1× would pass 1.5× of VmLck: ENOMEM, nothing mapped or charged.
    expect(map(proc, vm.fd, vm.ioas, guest + GUEST, GUEST, GUEST_IOVA + GUEST).rc).toBe(-ENOMEM);
    expect(proc.inspect(vm.fd)?.ioas[0]?.areas).toHaveLength(1);
    expect(charges(proc)).toEqual({ user: 0n, vmLck: 1n, vmPin: 1n });

    // The same process in a default-mode context charges its user instead.
    const userVm = openVm(proc, 1);
    expect(vfioAttach(proc, userVm.dev, userVm.ioas).rc).toBe(0);
    expect(map(proc, userVm.fd, userVm.ioas, guest + GUEST, GUEST, GUEST_IOVA).rc).toBe(0);
    expect(charges(proc)).toEqual({ user: 1n, vmLck: 1n, vmPin: 2n });

    // VmLck is per process: another process of the same user has room of its own.
    const otherGuest = filledBuffer(other, Number(GUEST), 8);
    const fd = other.open('/dev/iommu');
    expect(option(other, fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 1n).rc).toBe(0);
    const ioas = ioasAlloc(other, fd);
    const dev = other.open(vfio(2));
    expect(vfioBind(other, dev, fd).rc).toBe(0);
    expect(vfioAttach(other, dev, ioas).rc).toBe(0);
    expect(map(other, fd, ioas, otherGuest, GUEST, GUEST_IOVA).rc).toBe(0);
    expect(charges(other)).toEqual({ user: 1n, vmLck: 1n, vmPin: 1n });
    expect(charges(proc)).toEqual({ user: 1n, vmLck: 1n, vmPin: 2n });
    expect(other.close(dev)).toBe(0);
    expect(other.close(fd)).toBe(0);

    closeVm(proc, vm);
    expect(charges(proc)).toEqual({ user: 1n, vmLck: 0n, vmPin: 1n });
    closeVm(proc, userVm);
    finish(host, proc, other);
  });

  it('97: an unprivileged process cannot choose RLIMIT_MODE 1 (EPERM); with CAP_IPC_LOCK nothing is charged against the limit, only VmPin grows', () => {
    const host = createHost(CONFIG);
    const user = host.createProcess({ privileged: false, memlockLimitBytes: 0 });
    const ufd = user.open('/dev/iommu');
    expect(option(user, ufd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 1n).rc).toBe(-EPERM);
    expect(option(user, ufd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0).val64).toBe(0n);
    // A zero limit refuses the first pin.
    const uguest = filledBuffer(user, Number(GUEST), 9);
    const uioas = ioasAlloc(user, ufd);
    const udev = user.open(vfio(0));
    expect(vfioBind(user, udev, ufd).rc).toBe(0);
    expect(vfioAttach(user, udev, uioas).rc).toBe(0);
    expect(map(user, ufd, uioas, uguest, PAGE, GUEST_IOVA).rc).toBe(-ENOMEM);
    expect(charges(user)).toEqual({ user: 0n, vmLck: 0n, vmPin: 0n });
    expect(user.close(udev)).toBe(0);
    expect(user.close(ufd)).toBe(0);

    const root = host.createProcess({ memlockLimitBytes: 0 });
    expect(root.status().ipcLock).toBe(true);
    const guest = filledBuffer(root, Number(GUEST), 10);
    const vm = openVm(root, 1);
    expect(option(root, vm.fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0).val64).toBe(0n);
    expect(vfioAttach(root, vm.dev, vm.ioas).rc).toBe(0);
    expect(map(root, vm.fd, vm.ioas, guest, GUEST, GUEST_IOVA).rc).toBe(0);
    expect(charges(root)).toEqual({ user: 0n, vmLck: 0n, vmPin: 1n });
    expect(refs(root, guest, 1)).toBe(0);
    closeVm(root, vm);
    finish(host, user, root);
  });
});
